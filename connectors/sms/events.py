"""Twilio's webhook forms parsed into typed events, before anything trusts them.

Twilio posts `application/x-www-form-urlencoded` bodies: an incoming message (SMS, MMS,
WhatsApp through the same endpoint) or a status callback for one of our sends. Parameter
names follow Twilio's Messaging webhook documentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from multidict import MultiDict, MultiDictProxy

# More media than Twilio ever sends (its limit is 10 per MMS): a larger NumMedia is bad input.
MAX_MEDIA = 10

Form = MultiDictProxy[str]


class WebhookError(ValueError):
    """The form is not a usable Twilio messaging webhook (the message says why)."""


@dataclass(frozen=True, slots=True)
class Media:
    """One MMS file as the webhook names it; the file itself is fetched separately."""

    url: str
    content_type: str


@dataclass(frozen=True, slots=True)
class Location:
    """A shared location (WhatsApp through Twilio): only in these extra parameters."""

    latitude: str
    longitude: str
    address: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """An inbound message webhook (POST /webhooks/twilio/{channel_id})."""

    message_sid: str
    account_sid: str
    from_: str  # as Twilio sent it, e.g. "+14155550100" or "whatsapp:+31612345678"
    to: str
    body: str
    media: tuple[Media, ...] = ()
    location: Location | None = None
    num_segments: int | None = None
    # Twilio's geographic lookup of the numbers (often empty); kept for display only.
    from_city: str | None = None
    from_state: str | None = None
    from_zip: str | None = None
    from_country: str | None = None


@dataclass(frozen=True, slots=True)
class StatusCallback:
    """A delivery report for one of our sends (POST /webhooks/twilio/{channel_id}/status)."""

    message_sid: str
    account_sid: str
    status: str  # MessageStatus, lower-cased: queued, sent, delivered, undelivered, failed, ...
    error_code: str | None = None
    error_message: str | None = None
    to: str | None = None


def parse_form(body: bytes) -> Form:
    """Decodes an urlencoded body as Twilio sends it (UTF-8), keeping empty values and
    the order and repetition of keys, exactly as the signature covers them."""
    text = body.decode("utf-8", errors="replace")
    return MultiDictProxy(MultiDict(parse_qsl(text, keep_blank_values=True)))


def _get(form: Form, name: str) -> str | None:
    value = form.get(name)
    return value.strip() if value is not None else None


def _first(form: Form, names: Sequence[str]) -> str | None:
    for name in names:
        value = _get(form, name)
        if value:
            return value
    return None


def _media(form: Form) -> tuple[Media, ...]:
    raw = _get(form, "NumMedia") or "0"
    try:
        count = int(raw)
    except ValueError as err:
        raise WebhookError(f"NumMedia is not a number: {raw!r}") from err
    if not 0 <= count <= MAX_MEDIA:
        raise WebhookError(f"NumMedia out of range: {count}")
    media = []
    for index in range(count):
        url = _get(form, f"MediaUrl{index}")
        if not url:
            raise WebhookError(f"NumMedia is {count} but MediaUrl{index} is missing")
        content_type = _get(form, f"MediaContentType{index}") or "application/octet-stream"
        media.append(Media(url, content_type))
    return tuple(media)


def _location(form: Form) -> Location | None:
    latitude, longitude = _get(form, "Latitude"), _get(form, "Longitude")
    if not latitude or not longitude:
        return None
    try:
        float(latitude), float(longitude)
    except ValueError as err:
        raise WebhookError(
            f"Latitude/Longitude are not numbers: {latitude!r}, {longitude!r}"
        ) from err
    return Location(latitude, longitude, _get(form, "Address") or None, _get(form, "Label") or None)


def parse_incoming(form: Form) -> IncomingMessage:
    """The inbound message a webhook form describes; raises WebhookError for anything else
    (a voice call's webhook has a CallSid and no MessageSid)."""
    sid = _first(form, ("MessageSid", "SmsMessageSid", "SmsSid"))
    if sid is None:
        hint = " (this is a voice call webhook)" if "CallSid" in form else ""
        raise WebhookError(f"not a messaging webhook: no MessageSid{hint}")
    account = _get(form, "AccountSid")
    if not account:
        raise WebhookError("no AccountSid")
    segments = _get(form, "NumSegments")
    return IncomingMessage(
        message_sid=sid,
        account_sid=account,
        from_=_get(form, "From") or "",
        to=_get(form, "To") or "",
        # The body is the customer's text: kept exactly, surrounding spaces included.
        body=form.get("Body", ""),
        media=_media(form),
        location=_location(form),
        num_segments=int(segments) if segments and segments.isdigit() else None,
        from_city=_get(form, "FromCity") or None,
        from_state=_get(form, "FromState") or None,
        from_zip=_get(form, "FromZip") or None,
        from_country=_get(form, "FromCountry") or None,
    )


def parse_status(form: Form) -> StatusCallback:
    """The delivery report a status callback form describes; raises WebhookError when it
    names no message or no status."""
    sid = _first(form, ("MessageSid", "SmsSid"))
    status = _first(form, ("MessageStatus", "SmsStatus"))
    account = _get(form, "AccountSid")
    if sid is None or status is None or not account:
        raise WebhookError(
            "not a message status callback: MessageSid, MessageStatus and AccountSid are required"
        )
    return StatusCallback(
        message_sid=sid,
        account_sid=account,
        status=status.lower(),
        error_code=_get(form, "ErrorCode") or None,
        error_message=_get(form, "ErrorMessage") or None,
        to=_get(form, "To") or None,
    )
