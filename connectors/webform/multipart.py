"""A small multipart/form-data reader over bytes (RFC 7578), and header parameter parsing.

A pure function rather than aiohttp's streaming reader so that bodies are testable as bytes
and kept raw for re-parsing. Browsers encode names and file names per the HTML standard:
raw UTF-8 in a quoted string, with `"`, CR and LF percent-encoded and nothing backslash-
escaped (so a backslash in a Windows path is a plain character).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from connectors.webform.errors import BodyTooLarge, MalformedBody
from connectors.webform.limits import Limits

# RFC 2046 boundary: 1-70 of these characters, not ending in a space.
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("[^"]*"|[^;]*)')


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """A header value split into its lower-cased main value and its parameters (keys
    lower-cased, first occurrence wins, quotes removed; `name*=UTF-8''...` decoded)."""
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(";" + rest):
        key = match.group(1).lower()
        raw = match.group(2).strip()
        if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
            raw = raw[1:-1]
        if key.endswith("*"):
            charset, _, encoded = raw.partition("''")
            if charset.lower() not in ("utf-8", "us-ascii"):
                continue
            key, raw = key[:-1], unquote(encoded, errors="replace")
            params[key] = raw  # RFC 5987 form wins over the plain one
            continue
        params.setdefault(key, raw)
    return main.strip().lower(), params


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a multipart body: its headers (names lower-cased) and its bytes."""

    headers: dict[str, str]
    data: bytes

    @property
    def disposition(self) -> tuple[str, dict[str, str]]:
        return header_params(self.headers.get("content-disposition", ""))


def check_boundary(boundary: str | None) -> bytes:
    """The boundary as bytes; MalformedBody when missing or not an RFC 2046 boundary."""
    if not boundary or not _BOUNDARY.fullmatch(boundary):
        raise MalformedBody("multipart/form-data needs a valid boundary parameter")
    return boundary.encode("ascii")


def _headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    last: str | None = None
    for line in raw.decode("utf-8", errors="replace").split("\r\n"):
        if line[:1] in (" ", "\t") and last is not None:  # obsolete folding
            headers[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise MalformedBody("a multipart part has a malformed header line")
        last = name.strip().lower()
        headers.setdefault(last, value.strip())
    return headers


def split_parts(body: bytes, boundary: str | None, limits: Limits) -> list[Part]:
    """The parts of a multipart body, in order. MalformedBody when it does not parse
    (no closing delimiter: a truncated upload), BodyTooLarge over `limits.max_parts`."""
    delimiter = b"\r\n--" + check_boundary(boundary)
    # The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1), so the first
    # one, at the very start of the body, needs one put in front.
    segments = (b"\r\n" + body).split(delimiter)
    parts: list[Part] = []
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            return parts
        line_end = segment.find(b"\r\n")
        if line_end < 0 or segment[:line_end].strip(b" \t"):
            raise MalformedBody("a multipart delimiter is followed by garbage")
        rest = segment[line_end + 2 :]
        if rest.startswith(b"\r\n"):
            raw_headers, data = b"", rest[2:]
        else:
            end = rest.find(b"\r\n\r\n")
            if end < 0:
                raise MalformedBody("a multipart part's headers never end")
            raw_headers, data = rest[:end], rest[end + 4 :]
        if len(raw_headers) > limits.max_part_header_bytes:
            raise MalformedBody("a multipart part's headers are too long")
        if len(parts) >= limits.max_parts:
            raise BodyTooLarge(f"more than {limits.max_parts} fields")
        parts.append(Part(_headers(raw_headers) if raw_headers else {}, data))
    raise MalformedBody("the multipart body is truncated (no closing delimiter)")
