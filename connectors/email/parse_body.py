"""The body texts and attachments of a parsed MIME tree, decoded and within the limits.

Every inline text/plain part is body text; text/html parts are kept for sanitizing;
everything else is an attachment. A forwarded message (message/rfc822 or
message/global) is kept whole as an attachment (`<subject>.eml`). What a limit cuts
off is named in a note, never silently dropped.
"""

from __future__ import annotations

import binascii
import contextlib
import re
from collections.abc import Iterator
from email.generator import BytesGenerator
from email.message import Message
from io import BytesIO

from connectors.email.mime_text import decode_bytes, header_text, unmangle
from connectors.email.parse_limits import (
    MAX_DECODED_BYTES,
    MAX_DEPTH,
    MAX_FILENAME,
    MAX_ID_LENGTH,
    MAX_PARTS,
    megabytes,
)
from connectors.types import InboundAttachment

_NAME_HEADERS = ("content-disposition", "content-type")
_PART_FIELDS = (*_NAME_HEADERS, "content-id", "content-transfer-encoding")
# Content-Transfer-Encodings `Message.get_payload(decode=True)` decodes.
_ENCODINGS = ("quoted-printable", "base64", "x-uuencode", "uuencode", "uue", "x-uue")
_CHARSET_PARAM = re.compile(r';\s*charset\s*=\s*"?([^";\s]+)', re.IGNORECASE)
_FILENAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")


class Body:
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
        """The text/plain parts joined, trimmed."""
        return "\n".join(self.plain).lstrip("\r\n").rstrip()

    def collect(self, msg: Message) -> None:
        """Read every leaf part of `msg`; a note for each limit that cut something off."""
        for part, related in self._leaves(msg):
            self._leaf(part, related)
        if self._too_deep:
            self.notes.append(f"[Parts nested deeper than {MAX_DEPTH} levels were not imported.]")
        if self._too_many:
            self.notes.append(f"[Only the first {MAX_PARTS} parts of this message were imported.]")
        if self._too_big:
            self.notes.append(
                f"[{self._too_big} part(s) were not imported: the message decodes to more "
                f"than {megabytes(MAX_DECODED_BYTES)}.]"
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
        fields = _Fields(part)
        content_type = part.get_content_type()
        maintype = content_type.split("/", 1)[0]
        disposition = _disposition(fields.get("content-disposition"))
        filename = _filename(part, fields.named)
        if maintype == "multipart":
            # Declared multipart but no boundary in sight: the body is plain text.
            content_type = "text/plain"
        if (
            content_type in ("text/plain", "text/html")
            and disposition != "attachment"
            and filename is None
        ):
            data = self._decode(part, fields)
            if data is None:
                return
            text = decode_bytes(data, _charset(part, fields.get("content-type")))
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
            data = self._decode(part, fields)
            if data is None:
                return
        content_id = _content_id(fields.get("content-id"))
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

    def _decode(self, part: Message, fields: _Fields) -> bytes | None:
        data = _payload_bytes(part, str(fields.get("content-transfer-encoding", "")).lower())
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
                    try:
                        generator.flatten(inner, unixfrom=False)
                    except (UnicodeError, LookupError):
                        # A part holding text no charset of its own can encode (a U+FFFD
                        # put there by a broken sender): keep it, written as UTF-8.
                        text = inner.as_string(unixfrom=False, maxheaderlen=0)
                        out.write(text.encode("utf-8", "surrogateescape"))
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


class _Fields:
    """The MIME fields of one part from one pass over its headers (`Message.get` scans
    them all for each field): each field's first value as `get` gives it, and the raw
    last values of the fields a file name can be in."""

    __slots__ = ("first", "named")

    def __init__(self, part: Message) -> None:
        self.first: dict[str, object] = {}
        self.named: dict[str, str] = {}
        for key, value in part.raw_items():
            lowered = key.lower()
            if lowered in _PART_FIELDS:
                if lowered not in self.first:
                    self.first[lowered] = part.policy.header_fetch_parse(key, value)
                if lowered in _NAME_HEADERS:
                    self.named[lowered] = str(value)

    def get(self, name: str, default: object = None) -> object:
        """`part.get(name, default)` for a lower-cased name of `_PART_FIELDS`."""
        return self.first.get(name, default)


def _payload_bytes(part: Message, encoding: str) -> bytes:
    """`part.get_payload(decode=True)` as bytes (b"" for none), base64 done in one step,
    and a 7-bit body copied once (the stdlib encodes it twice). `encoding` is the part's
    Content-Transfer-Encoding, lower-cased, "" without one.

    For base64 the stdlib encodes the body, splits it into lines and joins them again
    (an object per 76 characters), then tries a strict decode, then a lenient one of the
    same characters, then others. Whenever the lenient decode of the body as it stands
    succeeds, the stdlib's answer is that same result: the line breaks are skipped
    either way, and a strict decode succeeds only on input the lenient one decodes
    identically (with padding to add, the lenient one fails). Everything else, and any
    body that is not ASCII, goes to the stdlib as before.
    """
    # The raw payload: `get_payload()` would hand back an 8-bit body re-decoded.
    payload = getattr(part, "_payload", None)
    if isinstance(payload, str):
        if encoding == "base64":
            with contextlib.suppress(ValueError):  # binascii.Error, or not ASCII
                return binascii.a2b_base64(payload)
        elif encoding not in _ENCODINGS and payload.isascii():
            return payload.encode("ascii")  # what the stdlib returns for a 7-bit body
    decoded = part.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else b""


def charset(part: Message) -> str | None:
    """The charset parameter of the part's Content-Type, as written; None without one."""
    return _charset(part, part.get("Content-Type"))


def _charset(part: Message, value: object) -> str | None:
    if value is None:
        return None
    value = str(value)
    simple = _CHARSET_PARAM.search(value)
    if simple and "charset*" not in value.lower():
        return simple.group(1)
    found = part.get_param("charset")
    if isinstance(found, tuple):  # RFC 2231 form: (charset, language, value)
        found = found[2]
    return str(found) if found else None


def safe_filename(name: str) -> str:
    """A display name for a file that is never a path: base name only, no control or
    bidi characters, at most MAX_FILENAME characters; "attachment" when nothing usable
    is left."""
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


def _disposition(value: object) -> str | None:
    if value is None:
        return None
    return str(value).split(";", 1)[0].strip().lower() or None


def _content_id(value: object) -> str | None:
    if value is None:
        return None
    ident = unmangle(str(value)).strip().strip("<>").strip()
    return ident[:MAX_ID_LENGTH] or None


def _filename(part: Message, raw: dict[str, str]) -> str | None:
    """The part's file name made harmless (`safe_filename`), or None without one. `raw`
    holds the last raw value of each of `_NAME_HEADERS` the part has."""
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


def _forwarded_name(part: Message) -> str:
    payload = part.get_payload()
    subject = None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        subject = header_text(str(payload[0].get("Subject", "")))
    return safe_filename(f"{subject or 'forwarded message'}.eml")
