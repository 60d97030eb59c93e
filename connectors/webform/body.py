"""A request body turned into names and values, whatever the content type, before any
field of the form is looked at.

The endpoint hands over the Content-Type header and the body bytes (already bounded by
`limits.body_limit`). Values are decoded per field: one field's invalid UTF-8 is that
field's error, never the request's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from connectors.webform.clean import has_surrogates
from connectors.webform.errors import (
    BodyTooLarge,
    MalformedBody,
    UnsupportedContentType,
)
from connectors.webform.limits import DEFAULT_LIMITS, Limits
from connectors.webform.multipart import header_params, split_parts

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON = "application/json"
_UTF8 = frozenset({"utf-8", "utf8", "us-ascii"})


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A value that cannot be text; `reason` completes "This field ..." for the visitor."""

    reason: str


INVALID_UTF8 = Unreadable("is not valid UTF-8 text")
NOT_TEXT = Unreadable("must be text")

BodyValue = str | Unreadable


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part as the browser sent it; its type is only a claim until verified."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """Every name and value of a body, in order; repeated names kept."""

    media_type: str
    values: tuple[tuple[str, BodyValue], ...] = ()
    files: tuple[UploadedFile, ...] = ()

    def get_all(self, name: str) -> list[BodyValue]:
        """Every value sent under `name`."""
        return [value for key, value in self.values if key == name]

    def text(self, name: str) -> str | None:
        """The first readable value sent under `name`, if any."""
        return next((v for v in self.get_all(name) if isinstance(v, str)), None)

    def files_for(self, name: str) -> list[UploadedFile]:
        """The files sent under `name`."""
        return [f for f in self.files if f.name == name]


def _decode(raw: bytes) -> BodyValue:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return INVALID_UTF8


def _name(raw: bytes, limits: Limits) -> str | None:
    # A name no form can have (too long) is skipped: it stays in the raw body only.
    if len(raw) > limits.max_name_chars:
        return None
    return raw.decode("utf-8", errors="replace")


def _urlencoded(body: bytes, limits: Limits) -> ParsedBody:
    chunks = [chunk for chunk in body.split(b"&") if chunk]
    if len(chunks) > limits.max_parts:
        raise BodyTooLarge(f"more than {limits.max_parts} fields")
    values: list[tuple[str, BodyValue]] = []
    for chunk in chunks:
        raw_name, _, raw_value = chunk.partition(b"=")
        name = _name(unquote_to_bytes(raw_name.replace(b"+", b" ")), limits)
        if name is not None:
            values.append((name, _decode(unquote_to_bytes(raw_value.replace(b"+", b" ")))))
    return ParsedBody(URLENCODED, tuple(values))


def _multipart(body: bytes, boundary: str | None, limits: Limits) -> ParsedBody:
    values: list[tuple[str, BodyValue]] = []
    files: list[UploadedFile] = []
    for part in split_parts(body, boundary, limits):
        kind, params = part.disposition
        raw_name = params.get("name")
        if kind != "form-data" or raw_name is None:
            continue
        name = _name(raw_name.encode("utf-8", errors="replace"), limits)
        if name is None:
            continue
        if "filename" not in params:
            values.append((name, _decode(part.data)))
            continue
        if not params["filename"] and not part.data:
            continue  # an empty file input: the browser sends an empty nameless part
        if len(files) >= limits.max_files:
            raise BodyTooLarge(f"more than {limits.max_files} files")
        content_type, _ = header_params(part.headers.get("content-type", ""))
        files.append(UploadedFile(name, params["filename"] or None, content_type, part.data))
    return ParsedBody(MULTIPART, tuple(values), tuple(files))


def _json_values(name: str, value: object) -> Iterator[tuple[str, BodyValue]]:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            if isinstance(item, list | dict):
                yield name, NOT_TEXT
            else:
                yield from _json_values(name, item)
    elif isinstance(value, bool):
        yield name, "true" if value else "false"
    elif isinstance(value, int | float):
        yield name, str(value)
    elif isinstance(value, str):
        yield name, INVALID_UTF8 if has_surrogates(value) else value
    else:
        yield name, NOT_TEXT


def _json(body: bytes, limits: Limits) -> ParsedBody:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as err:
        # ValueError covers JSONDecodeError, bad UTF-8 and over-long integers; a deeply
        # nested array exhausts the parser's recursion.
        raise MalformedBody("the body is not valid JSON") from err
    if not isinstance(document, dict):
        raise MalformedBody("the JSON body must be an object of field names and values")
    values: list[tuple[str, BodyValue]] = []
    for key, value in document.items():
        name = _name(key.encode("utf-8", errors="replace"), limits)
        if name is not None:
            values.extend(_json_values(name, value))
        if len(values) > limits.max_parts:
            raise BodyTooLarge(f"more than {limits.max_parts} fields")
    return ParsedBody(JSON, tuple(values))


def parse_body(content_type: str, body: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedBody:
    """The names and values of a form post. Raises only SubmissionError subclasses:
    BodyTooLarge (413), UnsupportedContentType (415), MalformedBody (400)."""
    if len(body) > limits.max_body_bytes:
        raise BodyTooLarge(f"the body is over {limits.max_body_bytes} bytes")
    media_type, params = header_params(content_type or "")
    charset = params.get("charset", "utf-8").lower()
    if media_type == MULTIPART:
        return _multipart(body, params.get("boundary"), limits)
    if media_type not in (URLENCODED, JSON):
        raise UnsupportedContentType(
            "send application/x-www-form-urlencoded, multipart/form-data or application/json"
        )
    if charset not in _UTF8:
        raise UnsupportedContentType("only UTF-8 bodies are accepted")
    if media_type == URLENCODED:
        return _urlencoded(body, limits)
    return _json(body, limits)
