"""How the public form endpoints answer: HTML pages with their security headers, small
error pages, and JSON in the API's one error shape, each with the CORS headers it needs.

Answers are returned rather than raised: the app's error middleware would turn a raised
error into API JSON without the page's headers.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from aiohttp import web

# The hosted pages post to themselves: a policy that cut `Origin` to "null" on that post
# (no-referrer) would make it look foreign (cors.py).
REFERRER_POLICY = "strict-origin-when-cross-origin"
# For pages with no style or script at all (the small error pages).
STRICT_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def page_headers(csp: str) -> dict[str, str]:
    """Headers of every HTML page: its policy, no sniffing, no caching (form pages carry a
    per-render token)."""
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": REFERRER_POLICY,
        "Cache-Control": "no-store",
    }


def html_page(
    body: str, *, csp: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An HTML answer with the page headers."""
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers={**page_headers(csp), **(headers or {})},
    )


def message_page(
    title: str, message: str, *, status: int, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A minimal HTML page saying what went wrong (no form to show again)."""
    body = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n<main>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(message)}</p>\n"
        "</main>\n</body>\n</html>\n"
    )
    return html_page(body, csp=STRICT_CSP, status=status, headers=headers)


def error_body(code: str, message: str, fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The API's error shape."""
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}


def json_answer(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer that is never cached (it may carry a token or a verdict)."""
    return web.json_response(
        dict(body), status=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


NOT_FOUND_TITLE = "Form not found"
NOT_FOUND_MESSAGE = "There is no form at this address, or it no longer accepts submissions."
UNAVAILABLE_TITLE = "Form unavailable"
UNAVAILABLE_MESSAGE = "This form is not accepting submissions at the moment. Try again later."
# A paused channel comes back: 503 says "later", with a hint of when to look again.
UNAVAILABLE_RETRY_SECONDS = "300"


def not_found(*, as_html: bool, headers: Mapping[str, str] | None = None) -> web.Response:
    """404 for an unknown or inactive form."""
    if as_html:
        return message_page(NOT_FOUND_TITLE, NOT_FOUND_MESSAGE, status=404, headers=headers)
    return json_answer(404, error_body("not_found", NOT_FOUND_MESSAGE), headers)


def unavailable(*, as_html: bool, headers: Mapping[str, str] | None = None) -> web.Response:
    """503 while the form's channel is paused (or its settings cannot be read)."""
    extra = {"Retry-After": UNAVAILABLE_RETRY_SECONDS, **(headers or {})}
    if as_html:
        return message_page(UNAVAILABLE_TITLE, UNAVAILABLE_MESSAGE, status=503, headers=extra)
    return json_answer(503, error_body("unavailable", UNAVAILABLE_MESSAGE), extra)
