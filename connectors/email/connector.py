"""The email channel's connector: IMAP in (imap.py), the parser (parse.py), SMTP out (smtp.py).

Fetched mail is parsed off the event loop and handed to the timeline one batch at a
time; the IMAP reader advances its per-folder cursor only after the whole batch is
committed, so a crash re-fetches rather than skips, and ingestion's idempotency (the
Message-ID is the key) makes the re-fetch harmless.

A bounce of one of our own replies (its Message-ID is ours: compose.py) is recorded like
any mail, and also reported to the outbox as a permanent failure of that reply, with the
reason the bounce gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web

from connectors.base import Capabilities, ConnectorContext, Grouping
from connectors.config import ChannelConfig
from connectors.email.config import EmailConfig
from connectors.email.imap import FetchedMail, ImapReceiver, check_imap
from connectors.email.parse import ParsedEmail, inbound_from, parse_email, to_inbound
from connectors.email.smtp import SmtpSender, check_smtp
from connectors.types import (
    ChannelId,
    DeliveryState,
    DeliveryUpdate,
    Inbound,
    InboundAttachment,
    Outbound,
    ProviderMessageId,
    RawPayload,
    SendResult,
)

MIB = 1024 * 1024

CAPABILITIES = Capabilities(
    grouping=Grouping.THREAD,
    supports_subject=True,
    supports_html=True,
    supports_attachments=True,
    max_attachment_bytes=25 * MIB,
)

# Our Message-IDs start so (compose.message_id_for); a bounce citing anything else is
# about mail someone else sent from the mailbox, and no reply of ours to mark.
_OUR_ID_PREFIX = "<sb."


class EmailConnector:
    """One mailbox: receives over IMAP (under the channel's lease), sends over SMTP."""

    def __init__(self, channel_id: ChannelId, config: EmailConfig, context: ConnectorContext):
        self.channel_id = channel_id
        self.capabilities = CAPABILITIES
        self._context = context
        self._limit = config.imap_max_message_bytes
        self._sender = SmtpSender(config)
        self._receiver = ImapReceiver(
            channel_id, config, context.cursors, context.health, self._handle
        )

    async def run(self) -> None:
        await self._receiver.run()

    async def close(self) -> None:
        await self._sender.close()

    async def send(self, message: Outbound) -> SendResult:
        return await self._sender.send(message)

    async def fetch_attachment(self, attachment: InboundAttachment) -> InboundAttachment:
        return attachment  # mail carries its files: nothing is ever fetched later

    def routes(self) -> list[web.RouteDef]:
        return []

    async def _handle(self, batch: Sequence[FetchedMail]) -> None:
        """Commit one fetched batch; returns only when all of it is stored."""
        parsed = await asyncio.to_thread(_parse_batch, self.channel_id, batch, self._limit)
        # Concurrent hand-offs are committed together by the ingestor's group commit.
        await asyncio.gather(*(self._context.inbound(inbound) for inbound, _ in parsed))
        for _, email in parsed:
            if email.bounce is not None and email.bounce.permanent:
                await self._report_bounce(email)

    async def _report_bounce(self, email: ParsedEmail) -> None:
        assert email.bounce is not None
        for original in email.bounce.original_message_ids:
            if original.startswith(_OUR_ID_PREFIX):
                await self._context.status(
                    DeliveryUpdate(
                        channel_id=self.channel_id,
                        provider_message_id=ProviderMessageId(original),
                        state=DeliveryState.FAILED_PERMANENT,
                        error=f"bounced: {email.bounce.reason}",
                        at=email.sent_at,
                    )
                )


def _parse_batch(
    channel_id: ChannelId, batch: Sequence[FetchedMail], limit: int
) -> list[tuple[Inbound, ParsedEmail]]:
    out = []
    for mail in batch:
        email = parse_email(mail.data)
        inbound = inbound_from(
            channel_id,
            email,
            mail.data,
            oversized_bytes=mail.size if mail.oversized else None,
            limit_bytes=limit,
        )
        out.append((inbound, email))
    return out


def parse_raw(channel_id: ChannelId, payload: RawPayload) -> Inbound:
    """Re-parse a stored raw message (`switchboard reprocess`)."""
    return to_inbound(channel_id, payload.data)


def build(
    channel_id: ChannelId, config: ChannelConfig, context: ConnectorContext
) -> EmailConnector:
    """The registry's factory for email channels."""
    if not isinstance(config, EmailConfig):
        raise TypeError(f"an email channel needs an EmailConfig, got {type(config).__name__}")
    return EmailConnector(channel_id, config, context)


async def check_connection(config: ChannelConfig) -> dict[str, str]:
    """The "test connection" action: IMAP login and folders, then SMTP login."""
    if not isinstance(config, EmailConfig):
        raise TypeError(f"an email channel needs an EmailConfig, got {type(config).__name__}")
    imap, smtp = await asyncio.gather(check_imap(config), check_smtp(config))
    return {**imap, **smtp}
