"""CSRF protection of cookie-authenticated requests.

A browser sends the session cookie with any request to us, whichever page made it, so a
state-changing request authenticated by the cookie must prove it came from our own
pages twice over: an `X-CSRF-Token` header (the token given at login and by
GET /api/v1/session, bound to the session; another site can neither read it nor set a
custom header cross-site without our CORS consent), and an Origin (or, failing that,
Referer) naming the origin of SWITCHBOARD_PUBLIC_URL. Bearer-token requests carry no
ambient credential and are exempt.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from aiohttp import web

from web.errors import forbidden
from web.keys import SETTINGS_KEY
from web.sessions import CSRF_HEADER, CSRF_SECRET_KEY, csrf_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of a URL, lower-cased, default ports dropped; None if none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    suffix = "" if port in (None, default) else f":{port}"
    return f"{parts.scheme}://{host}{suffix}".lower()


def check_origin(request: web.Request, *, required: bool) -> None:
    """403 unless the request's Origin (else Referer) is our own origin; with `required`
    False, a request naming neither passes (a non-browser client)."""
    claimed = request.headers.get("Origin") or request.headers.get("Referer")
    if claimed is None or claimed == "null":
        if required or claimed == "null":
            raise forbidden("cross-site request refused: no Origin or Referer header")
        return
    if origin_of(claimed) != origin_of(request.app[SETTINGS_KEY].base_url):
        raise forbidden("cross-site request refused: Origin is not this site")


def check_csrf(request: web.Request, cookie: str) -> None:
    """403 unless an unsafe cookie-authenticated request carries the session's CSRF
    token and comes from our own origin."""
    if request.method in SAFE_METHODS:
        return
    check_origin(request, required=True)
    sent = request.headers.get(CSRF_HEADER, "")
    expected = csrf_token(request.app[CSRF_SECRET_KEY], cookie)
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise forbidden(f"missing or wrong {CSRF_HEADER} header")
