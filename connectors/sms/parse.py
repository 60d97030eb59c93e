"""Pure functions turning Twilio webhook events into the one inbound shape and delivery updates."""

from __future__ import annotations

import logging
import re
from datetime import datetime

import phonenumbers

from connectors.sms.errors import delivery_error
from connectors.sms.events import IncomingMessage, Location, StatusCallback
from connectors.types import (
    ChannelId,
    DeliveryState,
    DeliveryUpdate,
    ExternalId,
    IdentityKind,
    Inbound,
    InboundAttachment,
    ProviderMessageId,
    RawPayload,
    Reachability,
    SenderHandle,
    ThreadHints,
)

log = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# Twilio's default keywords (whole message, any case): it blocks the sender itself and
# then forwards the message (https://help.twilio.com/articles/223134027).
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})

# Channel prefixes Twilio puts before an address on the Messaging webhook.
_ADDRESS_PREFIX = re.compile(r"^(whatsapp|messenger|rcs):", re.IGNORECASE)
# What could be a phone number or a short code at all (digits and usual separators).
_NUMBER_LIKE = re.compile(r"\+?\(?[0-9][0-9 ()\-.]*")

# MessageStatus values that move our delivery state; the others (queued, accepted,
# scheduled, sending: we already hold "sent" once Twilio answered; receiving/received:
# inbound) say nothing new.
_STATUS_STATES: dict[str, DeliveryState] = {
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "undelivered": DeliveryState.FAILED_PERMANENT,
    "failed": DeliveryState.FAILED_PERMANENT,
    "canceled": DeliveryState.FAILED_PERMANENT,
}
IGNORED_STATUSES = frozenset(
    {"queued", "accepted", "scheduled", "sending", "receiving", "received", "partially_delivered"}
)


def normalize_phone(address: str, region: str | None) -> str | None:
    """An address from a webhook as E.164 (national numbers read in `region`); a short code
    stays its digits; None when it cannot be a number at all ("whatsapp:+", "%2B2222")."""
    value = _ADDRESS_PREFIX.sub("", address.strip()).strip()
    if not _NUMBER_LIKE.fullmatch(value):
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_possible_number(number):
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    digits = re.sub(r"\D", "", value)
    if not digits:
        return None
    # Not a possible number (a short code such as 12345): readable, never reformatted.
    return f"+{digits}" if value.startswith("+") else digits


def keyword_change(body: str) -> Reachability | None:
    """The opt-out/opt-in a message body is (the whole message one keyword), else None."""
    word = body.strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return Reachability.OPTED_OUT
    if word in OPT_IN_KEYWORDS:
        return Reachability.OPTED_IN
    return None


def render_location(location: Location) -> str:
    """A shared location as readable text with a map link."""
    place = ", ".join(part for part in (location.label, location.address) if part)
    link = (
        f"https://www.openstreetmap.org/?mlat={location.latitude}&mlon={location.longitude}"
        f"#map=16/{location.latitude}/{location.longitude}"
    )
    where = f"{location.latitude}, {location.longitude}"
    return f"[location] {place + ' ' if place else ''}{where} {link}"


def message_text(event: IncomingMessage) -> str:
    """The message's text: the body, plus a rendering of a shared location."""
    if event.location is None:
        return event.body
    rendered = render_location(event.location)
    return f"{event.body}\n{rendered}" if event.body.strip() else rendered


def to_inbound(
    channel_id: ChannelId,
    event: IncomingMessage,
    *,
    region: str | None,
    received_at: datetime,
    raw: bytes,
    attachments: tuple[InboundAttachment, ...] = (),
) -> Inbound:
    """The inbound message for a webhook event, with its files already fetched (or noted)."""
    number = normalize_phone(event.from_, region)
    if number is None:
        log.warning("SMS %s: sender %r is not a phone number", event.message_sid, event.from_)
    sender = SenderHandle(IdentityKind.PHONE, number) if number is not None else None
    return Inbound(
        channel_id=channel_id,
        external_id=ExternalId(event.message_sid),
        sender=sender,
        text=message_text(event),
        # Twilio's inbound webhook carries no timestamp: the moment it reached us.
        sent_at=received_at,
        thread=ThreadHints(chat_id=f"{event.from_}>{event.to}"),
        attachments=attachments,
        raw=RawPayload(FORM_CONTENT_TYPE, raw),
    )


def status_update(
    channel_id: ChannelId, callback: StatusCallback, at: datetime
) -> DeliveryUpdate | None:
    """The delivery update a status callback means; None for statuses that change nothing
    (and for ones Twilio may add later, which are logged)."""
    state = _STATUS_STATES.get(callback.status)
    if state is None:
        if callback.status not in IGNORED_STATUSES:
            log.warning(
                "status callback for %s: unknown MessageStatus %r ignored",
                callback.message_sid,
                callback.status,
            )
        return None
    error = None
    if state is DeliveryState.FAILED_PERMANENT:
        error = (
            "canceled before sending"
            if callback.status == "canceled"
            else delivery_error(callback.error_code, callback.error_message)
        )
    return DeliveryUpdate(
        channel_id=channel_id,
        provider_message_id=ProviderMessageId(callback.message_sid),
        state=state,
        error=error,
        at=at,
    )
