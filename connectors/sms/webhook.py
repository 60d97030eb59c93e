"""The channel's two Twilio webhooks: incoming messages and status callbacks.

Each request is checked (X-Twilio-Signature against the public URL, then the AccountSid),
parsed into a typed event, handed to the core, and answered only once the core returned:
a 2xx tells Twilio the message is safe. When the core cannot store it (the database is
down) the answer is 503, so Twilio reports the failure rather than us losing the message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from connectors.base import ConnectorContext
from connectors.sms.config import SmsConfig
from connectors.sms.events import (
    Form,
    IncomingMessage,
    WebhookError,
    parse_form,
    parse_incoming,
    parse_status,
)
from connectors.sms.media import MediaFetcher
from connectors.sms.parse import FORM_CONTENT_TYPE, keyword_change, status_update, to_inbound
from connectors.sms.signature import SIGNATURE_HEADER, signature_is_valid
from connectors.types import ChannelId, ReachabilityChange

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


class TwilioWebhooks:
    """Serves POST /webhooks/twilio/{channel_id} and .../status for one channel."""

    def __init__(
        self,
        channel_id: ChannelId,
        config: SmsConfig,
        context: ConnectorContext,
        media: MediaFetcher,
    ) -> None:
        self._channel_id = channel_id
        self._config = config
        self._context = context
        self._media = media
        self._public_url = context.public_url.rstrip("/")

    def routes(self) -> list[web.RouteDef]:
        """The channel's webhook routes."""
        path = f"/webhooks/twilio/{self._channel_id}"
        return [
            web.post(path, self.handle_incoming),
            web.post(f"{path}/status", self.handle_status),
        ]

    async def _verified(self, request: web.Request) -> tuple[bytes, Form] | web.Response:
        """The body and form of a request Twilio signed, or the 403 to answer."""
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return _text(403, f"missing {SIGNATURE_HEADER}")
        body = await request.read()
        form = parse_form(body)
        # Exactly the URL Twilio called: the public address plus the path as requested.
        url = self._public_url + request.raw_path
        text = None if request.content_type == FORM_CONTENT_TYPE else body.decode(errors="replace")
        if not signature_is_valid(self._config.auth_token, url, form, signature, body=text):
            log.warning("channel %s: bad Twilio signature for %s", self._channel_id, request.path)
            return _text(403, f"invalid {SIGNATURE_HEADER}")
        return body, form

    def _foreign(self, account_sid: str) -> web.Response | None:
        if account_sid == self._config.account_sid:
            return None
        log.warning("channel %s: webhook for another account %s", self._channel_id, account_sid)
        return _text(403, "AccountSid does not match this channel")

    async def handle_incoming(self, request: web.Request) -> web.Response:
        """An incoming SMS/MMS: stored, then answered with empty TwiML."""
        verified = await self._verified(request)
        if isinstance(verified, web.Response):
            return verified
        body, form = verified
        try:
            event = parse_incoming(form)
        except WebhookError as err:
            log.warning("channel %s: unusable webhook: %s", self._channel_id, err)
            return _text(400, str(err))
        return self._foreign(event.account_sid) or await self._store(event, body)

    async def _store(self, event: IncomingMessage, body: bytes) -> web.Response:
        received_at = datetime.now(UTC)
        attachments = await self._media.fetch_all(event.media)
        inbound = to_inbound(
            self._channel_id,
            event,
            region=self._config.default_region,
            received_at=received_at,
            raw=body,
            attachments=attachments,
        )
        change = keyword_change(event.body)
        try:
            await self._context.inbound(inbound)
            if change is not None and inbound.sender is not None:
                await self._context.reachability(
                    ReachabilityChange(
                        self._channel_id,
                        who=inbound.sender,
                        change=change,
                        at=received_at,
                        detail=event.body.strip().upper(),
                    )
                )
        except Exception:
            log.exception("channel %s: cannot store SMS %s", self._channel_id, event.message_sid)
            return _text(503, "cannot store the message now; try again")
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def handle_status(self, request: web.Request) -> web.Response:
        """A status callback for one of our sends: applied, then answered 200."""
        verified = await self._verified(request)
        if isinstance(verified, web.Response):
            return verified
        _, form = verified
        try:
            callback = parse_status(form)
        except WebhookError as err:
            log.warning("channel %s: unusable status callback: %s", self._channel_id, err)
            return _text(400, str(err))
        foreign = self._foreign(callback.account_sid)
        if foreign is not None:
            return foreign
        update = status_update(self._channel_id, callback, datetime.now(UTC))
        if update is not None:
            try:
                await self._context.status(update)
            except Exception:
                log.exception(
                    "channel %s: cannot record status of %s", self._channel_id, callback.message_sid
                )
                return _text(503, "cannot record the status now; try again")
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")
