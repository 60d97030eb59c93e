"""Security headers of the app's pages, and HTML error pages instead of the API's JSON.

Only page paths are touched: the API, the public forms, webhooks, the websocket and the
health check keep their own headers and their JSON errors.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from web.csrf import origin_of
from web.errors import ApiError
from web.keys import SETTINGS_KEY
from web.ui.render import error_page

logger = logging.getLogger(__name__)

# Paths that are not pages of the app.
NOT_PAGES = ("/api/", "/forms/", "/webhooks/", "/ws", "/healthz", "/static/")


def is_page(path: str) -> bool:
    """Whether a path is one of the app's pages (or would be, for a 404)."""
    return not any(path == p.rstrip("/") or path.startswith(p) for p in NOT_PAGES)


def content_security_policy(base_url: str) -> str:
    """The pages' policy: scripts and styles only from our own files (no inline script,
    no style attributes), the websocket to our own origin, no framing by others."""
    origin = origin_of(base_url) or ""
    socket = origin.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {socket}; frame-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'; object-src 'none'"
    ).replace("  ", " ")


def page_headers(base_url: str) -> dict[str, str]:
    """The headers every page answer carries."""
    return {
        "Content-Security-Policy": content_security_policy(base_url),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",  # pages hold a CSRF token and private data
    }


@web.middleware
async def page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Adds the security headers to page answers; errors on pages become HTML pages."""
    if not is_page(request.path):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as err:
        response = err if err.status < 400 else error_page(request, err.status)
    except ApiError as err:
        response = error_page(request, err.status)
    headers = page_headers(request.app[SETTINGS_KEY].base_url)
    for name, value in headers.items():
        response.headers.setdefault(name, value)
    if isinstance(response, web.HTTPException):
        raise response
    return response
