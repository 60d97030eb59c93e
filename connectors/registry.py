"""The connector registry: one literal entry per channel kind.

A new channel is one folder in `connectors/` and one entry here. The entry declares
everything the core needs to know about the kind (what it can carry, how its messages
group into conversations, which identity a reply goes to), so no channel knowledge
lives in `timeline/`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from connectors.base import Capabilities, Connector, ConnectorContext, Grouping
from connectors.config import ChannelConfig
from connectors.email import connector as email
from connectors.email.config import EmailConfig
from connectors.sms import connector as sms
from connectors.sms.config import SmsConfig
from connectors.telegram import lazy as telegram
from connectors.telegram.capabilities import CAPABILITIES as TELEGRAM_CAPABILITIES
from connectors.telegram.config import TelegramConfig
from connectors.types import ChannelId, ChannelKind, IdentityKind, Inbound, RawPayload
from connectors.webform.config import WebformConfig

ConnectorFactory = Callable[[ChannelId, ChannelConfig, ConnectorContext], Connector]
RawParser = Callable[[ChannelId, RawPayload], Inbound]
# Checks a configuration against the provider (log in, find folders); answers field errors
# keyed by configuration key ({"imap_password": "the server refused ..."}), empty when all
# is well. Never raises for what the provider answers.
ConnectionCheck = Callable[[ChannelConfig], Awaitable[dict[str, str]]]


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """What the hub needs to know about one channel kind."""

    kind: ChannelKind
    config: type[ChannelConfig]
    # What every channel of the kind can carry, checked before a reply is accepted.
    capabilities: Capabilities = field(default_factory=Capabilities)
    # The contact identity a reply is addressed to; None when the kind cannot reply.
    recipient_kind: IdentityKind | None = None
    # The configuration key naming the region to read national phone numbers in.
    region_key: str | None = None
    # How long the outbox keeps retrying a reply through transient failures; None: the
    # installation's default (SWITCHBOARD_OUTBOX_RETRY_HOURS).
    retry_period: timedelta | None = None
    # None until the kind's connector is built: such channels are stored but not started.
    factory: ConnectorFactory | None = None
    # Re-parses a stored raw payload (for `switchboard reprocess`); None until built.
    parse_raw: RawParser | None = None
    # The "test connection" action; None when the kind has nothing to check.
    check_connection: ConnectionCheck | None = None
    # Run the check whenever the configuration is saved, refusing what the provider
    # refuses (a Telegram bot token is checked with getMe: one cheap call).
    check_on_save: bool = False


REGISTRY: dict[ChannelKind, ConnectorSpec] = {
    ChannelKind.EMAIL: ConnectorSpec(
        ChannelKind.EMAIL,
        EmailConfig,
        email.CAPABILITIES,
        recipient_kind=IdentityKind.EMAIL,
        # Mail servers keep retrying for days (Postfix: maximal_queue_lifetime = 5d).
        retry_period=timedelta(days=5),
        factory=email.build,
        parse_raw=email.parse_raw,
        check_connection=email.check_connection,
    ),
    ChannelKind.SMS: ConnectorSpec(
        ChannelKind.SMS,
        SmsConfig,
        # Twilio: a body of at most 1,600 characters, about one message a second from a
        # long-code number; MMS media must be public URLs, so replies carry text only.
        sms.CAPABILITIES,
        recipient_kind=IdentityKind.PHONE,
        region_key="default_region",
        factory=sms.build,
        parse_raw=sms.parse_raw,
        check_connection=sms.check_connection,
    ),
    ChannelKind.TELEGRAM: ConnectorSpec(
        ChannelKind.TELEGRAM,
        TelegramConfig,
        # Bot API: 4,096 characters a message (longer replies are split), files up to
        # 50 MB, about 30 messages a second per bot and one a second per chat.
        TELEGRAM_CAPABILITIES,
        # A private chat's id is the user's id, so the identity value is the chat id.
        recipient_kind=IdentityKind.TELEGRAM,
        factory=telegram.build,
        parse_raw=telegram.parse_raw,
        check_connection=telegram.check_connection,
        check_on_save=True,
    ),
    ChannelKind.WEBFORM: ConnectorSpec(
        ChannelKind.WEBFORM,
        WebformConfig,
        Capabilities(can_send=False, grouping=Grouping.MESSAGE),
    ),
}


def spec_for(kind: str) -> ConnectorSpec:
    """The spec of a channel kind; raises KeyError with the known kinds for an unknown one."""
    try:
        return REGISTRY[ChannelKind(kind)]
    except ValueError as err:
        known = ", ".join(k.value for k in REGISTRY)
        raise KeyError(f"unknown channel kind {kind!r}; known kinds: {known}") from err
