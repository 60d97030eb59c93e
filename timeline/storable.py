"""Makes inbound values storable on both databases before they reach a statement.

PostgreSQL refuses what SQLite accepts: NUL characters in text, strings longer than a
`varchar(n)` column, and (through the driver) strings with lone surrogates, which have
no UTF-8 encoding. Ingestion passes every customer-controlled value through here, so
one odd message is stored (its full original stays in the raw payload) instead of
failing its transaction and blocking the connector's cursor behind it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, datetime

from connectors.types import ExternalId, FormRecord, Inbound, SenderHandle, ThreadHints

# NUL is the one character PostgreSQL text cannot hold; lone surrogates cannot be encoded.
_NUL = "\x00"
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"

# Column sizes (timeline/models.py) of what is cut here.
NAME_LENGTH = 200
KEY_LENGTH = 500
CONTENT_TYPE_LENGTH = 100
ATTACHMENT_TYPE_LENGTH = 255
FILENAME_LENGTH = 255
SOURCE_LENGTH = 2000
REASON_LENGTH = 500
# Attribution lands in a timeline event's JSON: bounded so a hostile page URL or a
# thousand UTM-like parameters cannot bloat every contact view.
ATTRIBUTION_KEY_LENGTH = 64
ATTRIBUTION_VALUE_LENGTH = 2000
MAX_ATTRIBUTION_ITEMS = 32
EVENT_KIND_LENGTH = 50  # timeline_events.kind
STAGE_LENGTH = 32  # contacts.lifecycle_stage
LANGUAGE_LENGTH = 35  # contacts.language: a BCP 47 tag
IP_LENGTH = 45  # form_submissions.ip: the longest IPv6 text


def clean(value: str) -> str:
    """Text with NUL removed and lone surrogates replaced by U+FFFD."""
    if _NUL in value:
        value = value.replace(_NUL, "")
    if _SURROGATE.search(value):
        value = _SURROGATE.sub(REPLACEMENT, value)
    return value


def clean_optional(value: str | None) -> str | None:
    """`clean` for optional text."""
    return None if value is None else clean(value)


def cut(value: str | None, length: int) -> str | None:
    """Clean text cut to `length` characters (a code point never splits)."""
    if value is None:
        return None
    return clean(value)[:length]


def bounded_key(value: str, length: int = KEY_LENGTH) -> str:
    """A clean identifier that fits `length`, still distinct from every other one.

    Identifiers are compared (idempotency, threading), so an over-long one keeps a
    prefix and gains the SHA-256 of its whole value instead of being cut: two ids that
    share their first characters never collide, and the same id always maps the same.
    """
    value = clean(value)
    if len(value) <= length:
        return value
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
    return f"{value[: length - len(digest) - 1]}~{digest}"


def storable_datetime(value: datetime, now: datetime) -> datetime:
    """A timezone-aware UTC datetime; one that cannot be represented in UTC becomes `now`."""
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        # 9999-12-31T23:00-05:00 is past datetime.max once in UTC.
        return now


def _storable_handle(handle: SenderHandle | None) -> SenderHandle | None:
    if handle is None:
        return None
    return SenderHandle(handle.kind, clean(handle.value), cut(handle.display_name, NAME_LENGTH))


def storable_inbound(inbound: Inbound, now: datetime) -> Inbound:
    """A copy of `inbound` whose every value fits its column on both databases."""
    hints = inbound.thread
    thread = ThreadHints(
        message_id=clean_optional(hints.message_id),
        in_reply_to=clean_optional(hints.in_reply_to),
        references=tuple(clean(ref) for ref in hints.references),
        chat_id=clean_optional(hints.chat_id),
        subject=clean_optional(hints.subject),
    )
    attachments = tuple(
        dataclasses.replace(
            attachment,
            filename=cut(attachment.filename, FILENAME_LENGTH) or None,
            content_type=cut(attachment.content_type, ATTACHMENT_TYPE_LENGTH)
            or "application/octet-stream",
            content_id=None
            if attachment.content_id is None
            else bounded_key(attachment.content_id),
            source=cut(attachment.source, SOURCE_LENGTH),
            error=cut(attachment.error, REASON_LENGTH),
        )
        for attachment in inbound.attachments
    )
    return dataclasses.replace(
        inbound,
        sender=_storable_handle(inbound.sender),
        author=_storable_handle(inbound.author),
        identities=tuple(
            handle for handle in map(_storable_handle, inbound.identities) if handle is not None
        ),
        attribution=_storable_pairs(inbound.attribution),
        attribution_event=cut(inbound.attribution_event, EVENT_KIND_LENGTH) or "contact.attributed",
        new_contact_stage=cut(inbound.new_contact_stage, STAGE_LENGTH) or None,
        language=cut(inbound.language, LANGUAGE_LENGTH) or None,
        form=None if inbound.form is None else _storable_form(inbound.form),
        edit_of=None if inbound.edit_of is None else ExternalId(bounded_key(inbound.edit_of)),
        reply_to=None if inbound.reply_to is None else ExternalId(bounded_key(inbound.reply_to)),
        text=clean(inbound.text),
        reply_text=clean_optional(inbound.reply_text),
        html=clean_optional(inbound.html),
        sent_at=storable_datetime(inbound.sent_at, now),
        thread=thread,
        attachments=attachments,
    )


def _storable_pairs(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (cut(key, ATTRIBUTION_KEY_LENGTH) or "", cut(value, ATTRIBUTION_VALUE_LENGTH) or "")
        for key, value in pairs[:MAX_ATTRIBUTION_ITEMS]
    )


def _storable_form(form: FormRecord) -> FormRecord:
    return FormRecord(
        form_id=bounded_key(form.form_id),
        attribution=_storable_pairs(form.attribution),
        ip=cut(form.ip, IP_LENGTH) or None,
    )
