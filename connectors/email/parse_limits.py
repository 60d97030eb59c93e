"""The parser's limits, and the checks made on the raw bytes before any MIME parsing.

Limits keep a hostile message from exhausting memory or time: input size, header
section size, nesting depth, number of parts, total decoded size. The checks here look
at bytes only: `refusal` says why input is not an RFC 822 message at all, `bounded`
cuts a message that declares too many multiparts for the stdlib parser.
"""

from __future__ import annotations

import re

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
# The blank line after the header section is "\r?\n\r?\n"; searched for without the
# leading "\r?", which leaves the regex engine no first character to skip ahead to.
_BLANK_LINE = re.compile(rb"\n\r?\n")
# Most frequent first: the check stops at the first one found.
_KNOWN_FIELDS = (
    b"received", b"from", b"date", b"subject", b"to", b"message-id", b"mime-version",
    b"content-type", b"return-path", b"delivered-to", b"sender", b"cc", b"bcc",
    b"in-reply-to", b"references", b"reply-to", b"content-transfer-encoding",
    b"content-disposition", b"resent-from", b"resent-date", b"dkim-signature",
)  # fmt: skip
# A known field at the start of the section, or on a line of its own.
_KNOWN_FIELD_STARTS = (b"x-", *(f + b":" for f in _KNOWN_FIELDS))
_KNOWN_FIELD_LINES = tuple(b"\n" + f + b":" for f in _KNOWN_FIELDS)
_BOUNDARY_PARAM = re.compile(rb"boundary\s*=", re.IGNORECASE)


def megabytes(size: int) -> str:
    """A size for people: "12.3 MB"."""
    return f"{size / (1024 * 1024):.1f} MB"


def _header_end(raw: bytes) -> tuple[int, int] | None:
    """Where the first blank line (CRLF or LF) within the header size limit starts and
    ends, as `re.search(rb"\r?\n\r?\n", raw, 0, MAX_HEADER_BYTES + 4).span()`."""
    found = _BLANK_LINE.search(raw, 0, MAX_HEADER_BYTES + 4)
    if found is None:
        return None
    start = found.start()
    if start > 0 and raw[start - 1] == 0x0D:  # the "\r" of the first line break
        start -= 1
    return start, found.end()


def header_section(raw: bytes) -> bytes:
    """The header section of `raw` (at most MAX_HEADER_BYTES of it) with its blank line."""
    end = _header_end(raw)
    return raw[: end[1]] if end else raw[:MAX_HEADER_BYTES]


def refusal(raw: bytes) -> str | None:
    """Why these bytes are not an RFC 822 message at all, or None."""
    if not raw or raw.isspace():  # `not raw.strip()` without copying the message
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
    end = _header_end(body)
    if end is None and len(body) > MAX_HEADER_BYTES:
        return f"the header section is larger than {megabytes(MAX_HEADER_BYTES)}"
    section = body[: end[0] if end else MAX_HEADER_BYTES]
    if b"\x00" in section:
        return "binary data (NUL bytes) in the header section: not an RFC 822 message"
    lowered = section.lower()
    if not (
        lowered.startswith(_KNOWN_FIELD_STARTS)
        or b"\nx-" in lowered
        or any(line in lowered for line in _KNOWN_FIELD_LINES)
    ):
        return "no known header field (From, Subject, Date, ...): not an RFC 822 message"
    return None


def _few_equals_signs(raw: bytes) -> bool:
    """Whether `raw` has at most MAX_BOUNDARIES "=": then it cannot declare more
    multiparts than that (each declaration has one). Most mail has far fewer, and
    finding them is quicker than a lower-cased copy of the whole message."""
    position = -1
    for _ in range(MAX_BOUNDARIES + 1):
        position = raw.find(b"=", position + 1)
        if position < 0:
            return True
    return False


def bounded(raw: bytes) -> tuple[bytes, str | None]:
    """`raw` cut before its (MAX_BOUNDARIES + 1)th multipart declaration, with a note."""
    if _few_equals_signs(raw) or raw.lower().count(b"boundary") <= MAX_BOUNDARIES:
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
