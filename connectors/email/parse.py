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
  section size, nesting depth, number of parts, total decoded size. What a limit cuts
  off is named in a note at the end of the text, never silently dropped.
- `parse_email` never raises: unusable input gives a `ParsedEmail` whose `error` says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from io import BytesIO

from connectors.email.auto import Bounce, find_bounce, is_auto_submitted, is_daemon
from connectors.email.html import html_to_text, sanitize_html
from connectors.email.mime_text import codec_for, decode_bytes, header_text, unmangle
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
    "Address",
    "Bounce",
    "ParsedEmail",
    "inbound_from",
    "oversized_note",
    "parse_email",
    "to_inbound",
]

logger = logging.getLogger(__name__)

MAX_INPUT_BYTES = 64 * 1024 * 1024  # beyond this only the headers are read
MAX_HEADER_BYTES = 1024 * 1024  # the header section of the outer message
MAX_DEPTH = 20  # multipart nesting
# Multipart declarations read at all. The stdlib parser's cost per line grows with the
# nesting of open multiparts, and it recurses per level (RecursionError near 1,000): a
# message declaring more is cut before the first declaration beyond this, with a note.
MAX_BOUNDARIES = 64
MAX_PARTS = 500
MAX_DECODED_BYTES = 64 * 1024 * 1024  # bodies and attachments, decoded, together
MAX_REFERENCES = 100
MAX_FILENAME = 255
MAX_ID_LENGTH = 998  # RFC 5322 line length

_PARSER = BytesParser(policy=compat32)
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_MAGIC = {
    b"%PDF-": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x1f\x8b": "gzip-compressed data",
}
_FIELD_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
# Most frequent first: the check stops at the first one found.
_KNOWN_FIELDS = (
    b"received", b"from", b"date", b"subject", b"to", b"message-id", b"mime-version",
    b"content-type", b"return-path", b"delivered-to", b"sender", b"cc", b"bcc",
    b"in-reply-to", b"references", b"reply-to", b"content-transfer-encoding",
    b"content-disposition", b"resent-from", b"resent-date", b"dkim-signature",
)  # fmt: skip
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_ADDR_SPEC = re.compile(r"[^\s@<>(),;:\"\[\]]+@[^\s@<>(),;:\"\[\]]+")
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox of an address header."""

    # addr-spec as written ("" when unusable); the real address is the one in angle
    # brackets even when the display name is itself an address.
    address: str
    name: str | None  # decoded display name


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
        refusal = _refusal(raw)
        if refusal is not None:
            return _unusable(raw, refusal)
        if len(raw) > MAX_INPUT_BYTES:
            headers = _PARSER.parsebytes(_header_section(raw), headersonly=True)
            size_note = oversized_note(len(raw), MAX_INPUT_BYTES)
            return _parse_message(raw, headers, headers_only=True, note=size_note)
        bounded, cut_note = _bounded(raw.lstrip(b" \t\r\n"))
        return _parse_message(raw, _PARSER.parsebytes(bounded), note=cut_note)
    except Exception as err:  # the one catch-all: a parser bug must not lose the message
        logger.exception("email parser failed on a %d-byte message", len(raw))
        return _unusable(raw, f"the message could not be parsed ({type(err).__name__})")


def oversized_note(size: int, limit: int | None = None) -> str:
    """The text recorded for a message too large to import (deterministic)."""
    limit_text = f"the {_megabytes(limit)} limit" if limit else "the size limit"
    return (
        f"[This message is {_megabytes(size)}, larger than {limit_text}; "
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


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _derived_id(raw: bytes) -> str:
    return f"<sha256.{hashlib.sha256(raw).hexdigest()}@switchboard.invalid>"


def _header_section(raw: bytes) -> bytes:
    end = _HEADER_END.search(raw, 0, MAX_HEADER_BYTES + 4)
    return raw[: end.end()] if end else raw[:MAX_HEADER_BYTES]


def _refusal(raw: bytes) -> str | None:
    """Why these bytes are not an RFC 822 message at all, or None."""
    if not raw.strip():
        return "empty input: there is no message"
    if raw.startswith(_OLE2):
        return (
            "an Outlook .msg file (OLE2 compound document), not an RFC 822 message; "
            "save it from Outlook as .eml"
        )
    for magic, what in _BINARY_MAGIC.items():
        if raw.startswith(magic):
            return f"{what}, not an RFC 822 message"
    body = raw.lstrip(b" \t\r\n")
    first_line = body[:1000].split(b"\n", 1)[0]
    if not (_FIELD_LINE.match(first_line) or first_line.startswith(b"From ")):
        return "no header fields at the start: not an RFC 822 message"
    end = _HEADER_END.search(body, 0, MAX_HEADER_BYTES + 4)
    if end is None and len(body) > MAX_HEADER_BYTES:
        return f"the header section is larger than {_megabytes(MAX_HEADER_BYTES)}"
    section = body[: end.start() if end else MAX_HEADER_BYTES]
    if b"\x00" in section:
        return "binary data (NUL bytes) in the header section: not an RFC 822 message"
    lowered = b"\n" + section.lower()
    if b"\nx-" not in lowered and not any(b"\n" + f + b":" in lowered for f in _KNOWN_FIELDS):
        return "no known header field (From, Subject, Date, ...): not an RFC 822 message"
    return None


_BOUNDARY_PARAM = re.compile(rb"boundary\s*=", re.IGNORECASE)


def _bounded(raw: bytes) -> tuple[bytes, str | None]:
    """`raw` cut before its (MAX_BOUNDARIES + 1)th multipart declaration, with a note."""
    if raw.lower().count(b"boundary") <= MAX_BOUNDARIES:
        return raw, None
    for count, match in enumerate(_BOUNDARY_PARAM.finditer(raw), start=1):
        if count > MAX_BOUNDARIES:
            cut = raw.rfind(b"\n", 0, match.start())
            cut = raw.rfind(b"\n", 0, cut) if cut > 0 else cut  # the Content-Type line too
            note = (
                f"[This message declares more than {MAX_BOUNDARIES} multiparts; "
                "the rest of it was not imported.]"
            )
            return raw[: max(cut, 0)], note
    return raw, None


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
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), []).append(str(value))
    from_values = headers.get("from", [])
    from_ = _first_sender(from_values)
    subject = _subject(_first(headers, "subject"), msg)
    message_id = _normalize_id(_first(headers, "message-id"))
    in_reply_to = _normalize_id(_first(headers, "in-reply-to"))
    references = _references(headers.get("references", []))

    body = _Body()
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
    text = text.replace("\x00", "")

    raw_from = from_values[0] if from_values else None
    system_sender = is_daemon(from_.address if from_ else "", raw_from) or (
        (from_ is None or not from_.address)
        and (_first(headers, "return-path") or "").strip() == "<>"
    )
    bounce = find_bounce(
        msg,
        subject=subject,
        text=text,
        sender_is_system=system_sender,
        own_message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
    )
    return ParsedEmail(
        from_=from_,
        to=_addresses(headers.get("to", [])),
        cc=_addresses(headers.get("cc", [])),
        reply_to=_addresses(headers.get("reply-to", [])),
        subject=subject,
        message_id=message_id or _derived_id(raw),
        message_id_derived=message_id is None,
        in_reply_to=in_reply_to,
        references=references,
        sent_at=_date(_first(headers, "date")),
        text=text,
        reply_text=None if headers_only else _reply_text(text),
        html=html,
        attachments=tuple(body.attachments),
        auto_submitted=is_auto_submitted(
            headers, msg.get_content_type(), subject, system_sender, bounce is not None
        ),
        bounce=bounce,
        error=None,
    )


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    """The first non-empty value of a header (duplicated headers are common)."""
    for value in headers.get(name, ()):
        if value.strip():
            return value
    return None


def _subject(value: str | None, msg: Message) -> str | None:
    # A raw (not encoded-word) UTF-7 subject in a UTF-7 message: mailers that write UTF-7
    # bodies wrote their headers the same way.
    if (
        value is not None
        and "+" in value
        and "=?" not in value
        and value.isascii()
        and codec_for(_charset(msg)) == "utf-7"
    ):
        with contextlib.suppress(UnicodeDecodeError):
            value = value.encode("ascii").decode("utf-7")
    return header_text(value)


def _normalize_id(value: str | None) -> str | None:
    if value is None:
        return None
    value = unmangle(value)
    found = _MSG_ID.search(value)
    if found:
        ident = found.group(1)
    else:
        ident = value.strip()
        if not ident or any(c.isspace() for c in ident) or "<" in ident or ">" in ident:
            return None
    if len(ident) > MAX_ID_LENGTH or not ident.isprintable():
        return None
    return f"<{ident}>"


def _references(values: list[str]) -> tuple[str, ...]:
    ids: dict[str, None] = {}
    for value in values:
        for found in _MSG_ID.finditer(unmangle(str(value))):
            if len(found.group(1)) <= MAX_ID_LENGTH and found.group(1).isprintable():
                ids[f"<{found.group(1)}>"] = None
    unique = list(ids)
    if len(unique) > MAX_REFERENCES:
        # The first id is the thread's root, the last ones its latest messages.
        unique = unique[:1] + unique[-(MAX_REFERENCES - 1) :]
    return tuple(unique)


_SIMPLE_MAILBOX = re.compile(
    r'\s*(?:"([^"\\<>,@=]*)"|([^"\\<>,@()]*?))\s*<([^\s@<>(),;:"\[\]]+@[^\s@<>(),;:"\[\]]+)>\s*'
)
_SIMPLE_ADDR_SPEC = re.compile(r"\s*([^\s@<>(),;:\"\[\]]+@[^\s@<>(),;:\"\[\]]+)\s*")


def _addresses(values: list[str]) -> tuple[Address, ...]:
    text = ",".join(unmangle(str(v)) for v in values)
    if not text.strip():
        return ()
    # Most headers hold one plain mailbox: no need for the full address parser.
    simple = _SIMPLE_MAILBOX.fullmatch(text)
    if simple:
        name = (simple.group(1) or simple.group(2) or "").strip()
        if "=?" in name:
            name = header_text(name) or ""
        return (Address(simple.group(3), _NAME_CONTROL.sub(" ", name).strip() or None),)
    simple = _SIMPLE_ADDR_SPEC.fullmatch(text)
    if simple:
        return (Address(simple.group(1), None),)
    out: list[Address] = []
    for name, address in getaddresses([text.replace("\r", " ").replace("\n", " ")]):
        decoded = header_text(name) if name else None
        decoded = _NAME_CONTROL.sub(" ", decoded).strip() or None if decoded else None
        address = address.strip()
        if not _ADDR_SPEC.fullmatch(address):
            # Two addr-specs with only a space between them: the first one is the sender.
            candidates = [w for w in address.split() if _ADDR_SPEC.fullmatch(w)]
            address = candidates[0] if candidates else ""
        if address or decoded:
            out.append(Address(address, decoded))
    return tuple(out)


def _first_sender(values: list[str]) -> Address | None:
    """The first From mailbox with a usable address, else the first with a name."""
    candidates = _addresses(values)
    for candidate in candidates:
        if candidate.address:
            return candidate
    for value in values:
        # Addr-specs the address parser could not split ("a@x.com b@x.com"); never when
        # there are angle brackets, whose content alone is the address.
        text = unmangle(value)
        if "<" not in text:
            found = _ADDR_SPEC.search(text)
            if found:
                return Address(found.group(), None)
    return candidates[0] if candidates else None


def _date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(unmangle(value).strip())
        if parsed.tzinfo is None:  # "-0000": the zone is unknown, the time is UTC
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class _Body:
    """Collects the body texts and attachments of a MIME tree, within the limits."""

    def __init__(self) -> None:
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[InboundAttachment] = []
        self.notes: list[str] = []
        self._decoded = 0
        self._parts = 0
        self._too_deep = False
        self._too_many = False
        self._too_big = 0

    def text(self) -> str:
        return "\n".join(self.plain).lstrip("\r\n").rstrip()

    def collect(self, msg: Message) -> None:
        for part, related in self._leaves(msg):
            self._leaf(part, related)
        if self._too_deep:
            self.notes.append(f"[Parts nested deeper than {MAX_DEPTH} levels were not imported.]")
        if self._too_many:
            self.notes.append(f"[Only the first {MAX_PARTS} parts of this message were imported.]")
        if self._too_big:
            self.notes.append(
                f"[{self._too_big} part(s) were not imported: the message decodes to more "
                f"than {_megabytes(MAX_DECODED_BYTES)}.]"
            )

    def _leaves(self, msg: Message) -> Iterator[tuple[Message, bool]]:
        """Leaf parts in document order; message/* parts are leaves (kept whole)."""
        stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
        while stack:
            part, depth, related = stack.pop()
            self._parts += 1
            if self._parts > MAX_PARTS:
                self._too_many = True
                return
            payload = part.get_payload()
            if isinstance(payload, list) and part.get_content_maintype() == "multipart":
                if depth >= MAX_DEPTH:
                    self._too_deep = True
                    continue
                inner_related = related or part.get_content_subtype() == "related"
                children = [p for p in payload if isinstance(p, Message)]
                stack.extend((c, depth + 1, inner_related) for c in reversed(children))
                continue
            yield part, related

    def _leaf(self, part: Message, related: bool) -> None:
        content_type = part.get_content_type()
        maintype = content_type.split("/", 1)[0]
        disposition = _disposition(part)
        filename = _filename(part)
        if maintype == "multipart":
            # Declared multipart but no boundary in sight: the body is plain text.
            content_type = "text/plain"
        if (
            content_type in ("text/plain", "text/html")
            and disposition != "attachment"
            and filename is None
        ):
            data = self._decode(part)
            if data is None:
                return
            text = decode_bytes(data, _charset(part))
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            (self.plain if content_type == "text/plain" else self.html).append(text)
            return
        if maintype == "message":
            data = self._message_bytes(part)
            if data is None:
                return
            if filename is None and content_type in ("message/rfc822", "message/global"):
                filename = _forwarded_name(part)
        else:
            data = self._decode(part)
            if data is None:
                return
        content_id = _content_id(part)
        self.attachments.append(
            InboundAttachment(
                filename=filename,
                content_type=content_type,
                data=data,
                inline=content_id is not None
                and disposition != "attachment"
                and (related or disposition == "inline"),
                content_id=content_id,
            )
        )

    def _decode(self, part: Message) -> bytes | None:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if self._decoded + len(data) > MAX_DECODED_BYTES:
            self._too_big += 1
            return None
        self._decoded += len(data)
        return data

    def _message_bytes(self, part: Message) -> bytes | None:
        payload = part.get_payload()
        if not self._within_limits(payload):
            return None
        out = BytesIO()
        generator = BytesGenerator(out, mangle_from_=False, maxheaderlen=0)
        if isinstance(payload, list):
            for inner in payload:
                if isinstance(inner, Message):
                    generator.flatten(inner, unixfrom=False)
        elif isinstance(payload, str):
            out.write(payload.encode("utf-8", "surrogateescape"))
        data = out.getvalue()
        if self._decoded + len(data) > MAX_DECODED_BYTES:
            self._too_big += 1
            return None
        self._decoded += len(data)
        return data

    def _within_limits(self, payload: object) -> bool:
        """Whether an enclosed message is small enough in parts and depth to keep whole."""
        stack = (
            [(p, 1) for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
        )
        while stack:
            inner, depth = stack.pop()
            self._parts += 1
            if self._parts > MAX_PARTS:
                self._too_many = True
                return False
            if depth > MAX_DEPTH:
                self._too_deep = True
                return False
            children = inner.get_payload()
            if isinstance(children, list):
                stack.extend((c, depth + 1) for c in children if isinstance(c, Message))
        return True


def _disposition(part: Message) -> str | None:
    value = part.get("Content-Disposition")
    if value is None:
        return None
    return str(value).split(";", 1)[0].strip().lower() or None


def _charset(part: Message) -> str | None:
    value = part.get("Content-Type")
    if value is None:
        return None
    value = str(value)
    simple = _CHARSET_PARAM.search(value)
    if simple and "charset*" not in value.lower():
        return simple.group(1)
    charset = part.get_param("charset")
    if isinstance(charset, tuple):  # RFC 2231 form: (charset, language, value)
        charset = charset[2]
    return str(charset) if charset else None


def _content_id(part: Message) -> str | None:
    value = part.get("Content-ID")
    if value is None:
        return None
    ident = unmangle(str(value)).strip().strip("<>").strip()
    return ident[:MAX_ID_LENGTH] or None


_NAME_HEADERS = ("content-disposition", "content-type")
_CHARSET_PARAM = re.compile(r';\s*charset\s*=\s*"?([^";\s]+)', re.IGNORECASE)
_FILENAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")


def _filename(part: Message) -> str | None:
    """The part's file name made harmless: base name only, no control or bidi characters,
    at most MAX_FILENAME characters; "attachment" when nothing usable is left."""
    raw = {k.lower(): str(v) for k, v in part.raw_items() if k.lower() in _NAME_HEADERS}
    if not any("name" in value.lower() for value in raw.values()):
        return None
    source = part
    if not all(value.isascii() for value in raw.values()):
        # Raw 8-bit bytes in the parameters: the stdlib would turn them into U+FFFD.
        source = Message()
        for key, value in raw.items():
            source[key] = unmangle(value)
    try:
        name = source.get_filename()
    except (LookupError, ValueError, UnicodeError):  # exotic RFC 2231 charsets
        name = None
    if name is None:
        return None
    return safe_filename(header_text(str(name)) or "")


def safe_filename(name: str) -> str:
    """A display name for a file that is never a path: see `_filename`."""
    name = _FILENAME_CONTROL.sub(" ", unmangle(name))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", ".."):
        return "attachment"
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: MAX_FILENAME - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME]
    return name


def _forwarded_name(part: Message) -> str:
    payload = part.get_payload()
    subject = None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        subject = header_text(str(payload[0].get("Subject", "")))
    return safe_filename(f"{subject or 'forwarded message'}.eml")
