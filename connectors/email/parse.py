"""Raw RFC 822 bytes into a `ParsedEmail` and the one `Inbound` shape. Pure: no I/O.

The MIME tree comes from the standard library's parser with the `compat32` policy: it is
lenient (broken, reused and unclosed boundaries, missing headers, 8-bit bytes anywhere)
and lazy, and the header and body decoding it leaves undone is done here, only for what
is used, with our own fallbacks (mime_text.py). `policy.default` was not used: its header
objects cost several times the parse itself and raise or mangle on the broken headers
real mail has.

Decisions:
- A forwarded message (a message/rfc822 or message/global part) is kept whole as an
  attachment (`<subject>.eml`); its text is not merged into the body and its headers
  never become the outer message's sender, subject or ids.
- The body is every inline text/plain part joined; with no text/plain part, the text is
  derived from the HTML. HTML is sanitized (html.py). Everything else is an attachment;
  parts with a Content-ID that are not marked as attachments are `inline` (cid: images).
- Limits keep a hostile message from exhausting memory or time: input size, header
  section size, nesting depth, number of parts, total decoded size (parse_limits.py).
  What a limit cuts off is named in a note at the end of the text, never silently dropped.
- `parse_email` never raises: unusable input gives a `ParsedEmail` whose `error` says why.

Header fields are read in parse_headers.py, bodies and attachments in parse_body.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from connectors.email.auto import Bounce, find_bounce, is_auto_submitted, is_daemon
from connectors.email.html import html_to_text, sanitize_html
from connectors.email.mime_text import codec_for, header_text
from connectors.email.parse_body import Body, charset, safe_filename
from connectors.email.parse_headers import (
    Address,
    addresses,
    date,
    first,
    first_sender,
    header_map,
    normalize_id,
    references,
)
from connectors.email.parse_limits import (
    MAX_BOUNDARIES,
    MAX_DECODED_BYTES,
    MAX_DEPTH,
    MAX_FILENAME,
    MAX_HEADER_BYTES,
    MAX_ID_LENGTH,
    MAX_INPUT_BYTES,
    MAX_PARTS,
    MAX_REFERENCES,
    bounded,
    header_section,
    megabytes,
    refusal,
)
from connectors.email.quotes import reply_text as _reply_text
from connectors.types import (
    ChannelId,
    ExternalId,
    IdentityKind,
    Inbound,
    InboundAttachment,
    RawPayload,
    SenderHandle,
    ThreadHints,
)

__all__ = [
    "MAX_BOUNDARIES",
    "MAX_DECODED_BYTES",
    "MAX_DEPTH",
    "MAX_FILENAME",
    "MAX_HEADER_BYTES",
    "MAX_ID_LENGTH",
    "MAX_INPUT_BYTES",
    "MAX_PARTS",
    "MAX_REFERENCES",
    "Address",
    "Bounce",
    "ParsedEmail",
    "inbound_from",
    "oversized_note",
    "parse_email",
    "safe_filename",
    "to_inbound",
]

logger = logging.getLogger(__name__)

_PARSER = BytesParser(policy=compat32)


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """What an email says, decoded, sanitized and bounded."""

    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str | None
    # Always set, with angle brackets: the header's value normalized, or a stable id
    # derived from the content ("<sha256.HEX@switchboard.invalid>") when absent or unusable.
    message_id: str
    message_id_derived: bool
    in_reply_to: str | None
    references: tuple[str, ...]  # ids with <>, deduplicated, order kept, capped
    sent_at: datetime | None  # timezone-aware UTC; None when missing or unparseable
    text: str  # the text body (derived from HTML when there is no text part)
    reply_text: str | None  # the new part of a reply without quoted history or signature
    html: str | None  # sanitized
    attachments: tuple[InboundAttachment, ...]
    auto_submitted: bool
    bounce: Bounce | None
    error: str | None  # None, or why the input is not a usable RFC 822 message


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse raw RFC 822 bytes. Never raises, whatever the bytes: `error` says what is wrong."""
    try:
        refused = refusal(raw)
        if refused is not None:
            return _unusable(raw, refused)
        if len(raw) > MAX_INPUT_BYTES:
            headers = _PARSER.parsebytes(header_section(raw), headersonly=True)
            size_note = oversized_note(len(raw), MAX_INPUT_BYTES)
            return _parse_message(raw, headers, headers_only=True, note=size_note)
        kept, cut_note = bounded(raw.lstrip(b" \t\r\n"))
        return _parse_message(raw, _PARSER.parsebytes(kept), note=cut_note)
    except Exception as err:  # the one catch-all: a parser bug must not lose the message
        logger.exception("email parser failed on a %d-byte message", len(raw))
        return _unusable(raw, f"the message could not be parsed ({type(err).__name__})")


def oversized_note(size: int, limit: int | None = None) -> str:
    """The text recorded for a message too large to import (deterministic)."""
    limit_text = f"the {megabytes(limit)} limit" if limit else "the size limit"
    return (
        f"[This message is {megabytes(size)}, larger than {limit_text}; "
        "it was not imported and remains in the mailbox.]"
    )


def inbound_from(
    channel_id: ChannelId,
    parsed: ParsedEmail,
    raw: bytes,
    *,
    oversized_bytes: int | None = None,
    limit_bytes: int | None = None,
) -> Inbound:
    """The `Inbound` for a parsed email. `raw` is kept as the payload to re-parse later.

    With `oversized_bytes`, `raw` holds only the header section of a message of that size
    (larger than `limit_bytes`): the Inbound keeps the headers' sender, subject and ids and
    has a note as its text instead of the body and attachments.
    """
    sender = None
    if parsed.from_ is not None and parsed.from_.address:
        sender = SenderHandle(IdentityKind.EMAIL, parsed.from_.address, parsed.from_.name)
    text, reply, html, attachments = (
        parsed.text,
        parsed.reply_text,
        parsed.html,
        parsed.attachments,
    )
    if oversized_bytes is not None:
        text, reply, html, attachments = (
            oversized_note(oversized_bytes, limit_bytes),
            None,
            None,
            (),
        )
    elif parsed.error is not None and not text:
        text = f"[{parsed.error}]"
    return Inbound(
        channel_id=channel_id,
        external_id=ExternalId(parsed.message_id),
        sender=sender,
        text=text,
        sent_at=parsed.sent_at or datetime.now(UTC),
        thread=ThreadHints(
            message_id=parsed.message_id,
            in_reply_to=parsed.in_reply_to,
            references=parsed.references,
            subject=parsed.subject,
        ),
        reply_text=reply,
        html=html,
        attachments=attachments,
        raw=RawPayload("message/rfc822", raw),
        auto_submitted=parsed.auto_submitted,
    )


def to_inbound(
    channel_id: ChannelId,
    raw: bytes,
    *,
    oversized_bytes: int | None = None,
    limit_bytes: int | None = None,
) -> Inbound:
    """`parse_email` then `inbound_from`: raw bytes from a mailbox into the one inbound shape."""
    return inbound_from(
        channel_id,
        parse_email(raw),
        raw,
        oversized_bytes=oversized_bytes,
        limit_bytes=limit_bytes,
    )


def _derived_id(raw: bytes) -> str:
    return f"<sha256.{hashlib.sha256(raw).hexdigest()}@switchboard.invalid>"


def _unusable(raw: bytes, error: str) -> ParsedEmail:
    return ParsedEmail(
        from_=None,
        to=(),
        cc=(),
        reply_to=(),
        subject=None,
        message_id=_derived_id(raw),
        message_id_derived=True,
        in_reply_to=None,
        references=(),
        sent_at=None,
        text="",
        reply_text=None,
        html=None,
        attachments=(),
        auto_submitted=False,
        bounce=None,
        error=error,
    )


def _parse_message(
    raw: bytes, msg: Message, *, headers_only: bool = False, note: str | None = None
) -> ParsedEmail:
    headers = header_map(msg)
    from_values = headers.get("from", [])
    from_ = first_sender(from_values)
    subject = _subject(first(headers, "subject"), msg)
    message_id = normalize_id(first(headers, "message-id"))
    in_reply_to = normalize_id(first(headers, "in-reply-to"))
    reference_ids = references(headers.get("references", []))

    body = Body()
    if not headers_only:
        body.collect(msg)
    if note:
        body.notes.append(note)
    text = body.text()
    html = sanitize_html("\n".join(body.html)) if body.html else None
    if html is not None and not html.strip():
        html = None
    if not body.plain and html:
        text = html_to_text(html)
    if body.notes:
        text = (text + "\n\n" if text else "") + "\n".join(body.notes)
    if "\x00" in text:
        text = text.replace("\x00", "")

    raw_from = from_values[0] if from_values else None
    system_sender = is_daemon(from_.address if from_ else "", raw_from) or (
        (from_ is None or not from_.address)
        and (first(headers, "return-path") or "").strip() == "<>"
    )
    content_type = msg.get_content_type()
    bounce = find_bounce(
        msg,
        subject=subject,
        text=text,
        sender_is_system=system_sender,
        own_message_id=message_id,
        in_reply_to=in_reply_to,
        references=reference_ids,
        content_type=content_type,
    )
    return ParsedEmail(
        from_=from_,
        to=addresses(headers.get("to", [])),
        cc=addresses(headers.get("cc", [])),
        reply_to=addresses(headers.get("reply-to", [])),
        subject=subject,
        message_id=message_id or _derived_id(raw),
        message_id_derived=message_id is None,
        in_reply_to=in_reply_to,
        references=reference_ids,
        sent_at=date(first(headers, "date")),
        text=text,
        reply_text=None if headers_only else _reply_text(text),
        html=html,
        attachments=tuple(body.attachments),
        auto_submitted=is_auto_submitted(
            headers, content_type, subject, system_sender, bounce is not None
        ),
        bounce=bounce,
        error=None,
    )


def _subject(value: str | None, msg: Message) -> str | None:
    # A raw (not encoded-word) UTF-7 subject in a UTF-7 message: mailers that write UTF-7
    # bodies wrote their headers the same way.
    if (
        value is not None
        and "+" in value
        and "=?" not in value
        and value.isascii()
        and codec_for(charset(msg)) == "utf-7"
    ):
        with contextlib.suppress(UnicodeDecodeError):
            value = value.encode("ascii").decode("utf-7")
    return header_text(value)
