"""The SMS channel's connector: Twilio webhooks in (webhook.py), the REST API out (api.py).

SMS only arrives through webhooks, so `run()` has nothing to poll. Outbound attachments are
not offered: Twilio sends MMS media only from publicly reachable URLs, and a reply's files
are bytes we have not published anywhere (CAPABILITIES.supports_attachments is False).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from connectors.base import Capabilities, ConnectorContext, Grouping
from connectors.config import ChannelConfig
from connectors.sms.api import TwilioApi
from connectors.sms.config import SmsConfig
from connectors.sms.events import WebhookError, parse_form, parse_incoming
from connectors.sms.media import MediaFetcher, media_filename
from connectors.sms.parse import to_inbound
from connectors.sms.webhook import TwilioWebhooks
from connectors.types import (
    ChannelId,
    Inbound,
    InboundAttachment,
    Outbound,
    RawPayload,
    SendResult,
)

CAPABILITIES = Capabilities(
    grouping=Grouping.CONTACT,
    # Twilio's limit for one message body (it splits it into segments itself).
    max_text_length=1600,
    supports_attachments=False,
    # A long-code number sends about one message a second (a messaging service may do more).
    sends_per_second=1.0,
)


class SmsConnector:
    """One Twilio number or messaging service."""

    def __init__(self, channel_id: ChannelId, config: SmsConfig, context: ConnectorContext):
        self.channel_id = channel_id
        self.capabilities = CAPABILITIES
        self._status_callback = (
            f"{context.public_url.rstrip('/')}/webhooks/twilio/{channel_id}/status"
        )
        self._api = TwilioApi(config)
        self._media = MediaFetcher(
            config.account_sid,
            config.auth_token,
            config.api_base_url,
            config.max_media_bytes,
            config.media_timeout_seconds,
        )
        self._webhooks = TwilioWebhooks(channel_id, config, context, self._media)

    async def run(self) -> None:
        return  # webhooks only: nothing to poll

    async def close(self) -> None:
        await self._api.close()
        await self._media.close()

    async def send(self, message: Outbound) -> SendResult:
        return await self._api.send(message, self._status_callback)

    async def fetch_attachment(self, attachment: InboundAttachment) -> InboundAttachment:
        if not attachment.source:
            return attachment
        return await self._media.fetch(
            attachment.source, attachment.content_type, attachment.filename
        )

    def routes(self) -> list[web.RouteDef]:
        return self._webhooks.routes()


def parse_raw(channel_id: ChannelId, payload: RawPayload) -> Inbound:
    """Re-parse a stored webhook body (`switchboard reprocess`).

    No configuration is at hand, so numbers are read as Twilio sends them (E.164) without
    a default region, and media are listed as not yet fetched (`source` is the URL), for
    the core to fetch through `fetch_attachment`. Twilio's webhook carries no timestamp:
    `sent_at` is the time of re-parsing. Raises ValueError for a body that is not a
    messaging webhook."""
    try:
        event = parse_incoming(parse_form(payload.data))
    except WebhookError as err:
        raise ValueError(f"not a Twilio messaging webhook: {err}") from err
    attachments = tuple(
        InboundAttachment(
            media_filename(item.url, item.content_type, index),
            item.content_type,
            b"",
            error="not fetched when re-parsing",
            source=item.url,
            retry=True,
        )
        for index, item in enumerate(event.media)
    )
    return to_inbound(
        channel_id,
        event,
        region=None,
        received_at=datetime.now(UTC),
        raw=payload.data,
        attachments=attachments,
    )


def build(channel_id: ChannelId, config: ChannelConfig, context: ConnectorContext) -> SmsConnector:
    """The registry's factory for SMS channels."""
    if not isinstance(config, SmsConfig):
        raise TypeError(f"an SMS channel needs an SmsConfig, got {type(config).__name__}")
    return SmsConnector(channel_id, config, context)


async def check_connection(config: ChannelConfig) -> dict[str, str]:
    """The "test connection" action: the account, then its number or messaging service."""
    if not isinstance(config, SmsConfig):
        raise TypeError(f"an SMS channel needs an SmsConfig, got {type(config).__name__}")
    api = TwilioApi(config)
    try:
        return await api.check()
    finally:
        await api.close()
