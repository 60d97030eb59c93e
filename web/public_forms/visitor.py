"""What the endpoints read about the visitor's request besides the form fields: address,
headers for attribution, the answer format wanted, and the body within its limit."""

from __future__ import annotations

from aiohttp import web

from connectors.webform.attribution import RequestInfo
from connectors.webform.body import JSON, MULTIPART, URLENCODED
from connectors.webform.clean import clean_line
from connectors.webform.errors import BodyTooLarge, UnsupportedContentType
from connectors.webform.multipart import header_params
from web.client_address import client_address
from web.keys import SETTINGS_KEY

MAX_HEADER_CHARS = 2_048
MAX_IDEMPOTENCY_KEY = 255
_READ_CHUNK = 64 * 1024


def client_ip(request: web.Request) -> str:
    """The address the request came from; X-Forwarded-For only through the proxies
    SWITCHBOARD_TRUSTED_PROXIES names (web/client_address.py)."""
    return client_address(
        request.remote,
        request.headers.getall("X-Forwarded-For", ()),
        request.app[SETTINGS_KEY].proxy_networks,
    )


def request_info(request: web.Request) -> RequestInfo:
    """The request's headers that attribution records (cleaned there)."""

    def header(name: str) -> str | None:
        value = request.headers.get(name)
        return value[:MAX_HEADER_CHARS] if value else None

    return RequestInfo(
        ip=client_ip(request),
        user_agent=header("User-Agent"),
        referer=header("Referer"),
        origin=header("Origin"),
    )


def media_type(request: web.Request) -> str:
    """The body's media type, lower-case, without parameters."""
    kind, _ = header_params(request.headers.get("Content-Type", ""))
    return kind


def wants_html(request: web.Request) -> bool:
    """Whether the answer should be a page: a browser's plain form post (urlencoded or
    multipart, accepting HTML and not asking for JSON, as the embed script does)."""
    if request.method == "POST" and media_type(request) not in (URLENCODED, MULTIPART):
        return False
    accept = request.headers.get("Accept", "").lower()
    return "text/html" in accept and "application/json" not in accept


def check_media_type(request: web.Request) -> None:
    """415 before the body is read, when it could never be a submission."""
    if media_type(request) not in (URLENCODED, MULTIPART, JSON):
        raise UnsupportedContentType(
            "send application/x-www-form-urlencoded, multipart/form-data or application/json"
        )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refused with BodyTooLarge as soon as it passes `limit` bytes: the
    declared length is checked first, then what actually arrives (a chunked body has no
    length, and a declared one may lie)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def idempotency_key(request: web.Request) -> str | None:
    """The client's Idempotency-Key header, cleaned and bounded; None when absent."""
    value = request.headers.get("Idempotency-Key")
    if not value:
        return None
    return clean_line(value, MAX_IDEMPOTENCY_KEY) or None
