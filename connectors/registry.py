"""The connector registry: one literal entry per channel kind.

A new channel is one folder in `connectors/` and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from connectors.base import Connector
from connectors.config import ChannelConfig
from connectors.email.config import EmailConfig
from connectors.sms.config import SmsConfig
from connectors.telegram.config import TelegramConfig
from connectors.types import ChannelId, ChannelKind, Inbound, RawPayload
from connectors.webform.config import WebformConfig

ConnectorFactory = Callable[[ChannelId, ChannelConfig], Connector]
RawParser = Callable[[ChannelId, RawPayload], Inbound]


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """What the hub needs to know about one channel kind."""

    kind: ChannelKind
    config: type[ChannelConfig]
    # None until the kind's connector is built: such channels are stored but not started.
    factory: ConnectorFactory | None = None
    # Re-parses a stored raw payload (for `switchboard reprocess`); None until built.
    parse_raw: RawParser | None = None


REGISTRY: dict[ChannelKind, ConnectorSpec] = {
    ChannelKind.EMAIL: ConnectorSpec(ChannelKind.EMAIL, EmailConfig),
    ChannelKind.SMS: ConnectorSpec(ChannelKind.SMS, SmsConfig),
    ChannelKind.TELEGRAM: ConnectorSpec(ChannelKind.TELEGRAM, TelegramConfig),
    ChannelKind.WEBFORM: ConnectorSpec(ChannelKind.WEBFORM, WebformConfig),
}


def spec_for(kind: str) -> ConnectorSpec:
    """The spec of a channel kind; raises KeyError with the known kinds for an unknown one."""
    try:
        return REGISTRY[ChannelKind(kind)]
    except ValueError as err:
        known = ", ".join(k.value for k in REGISTRY)
        raise KeyError(f"unknown channel kind {kind!r}; known kinds: {known}") from err
