"""Cross-origin rules of the public form endpoints.

Only origins the form or its channel lists (`allowed_origins`, folded into the effective
definition by lookup.py) get CORS headers; a preflight from any other origin is refused
with 403 and no CORS headers, so the browser blocks the request. A browser POST from an
origin that is neither listed nor the hub's own is refused outright (403): a page that
was never allowed to embed the form must not turn its visitors into submitters. A post
without `Origin` (a server, curl) is not a browser's cross-site request and is accepted.
`Origin: null` (sandboxed frames, privacy-stripped requests) is treated as foreign.
"""

from __future__ import annotations

from aiohttp import web

from connectors.webform.definition import FormDefinition, normalize_origin

MAX_AGE_SECONDS = 600
ALLOWED_HEADERS = "Content-Type, Idempotency-Key"


def allowed_origin(definition: FormDefinition, origin: str | None) -> str | None:
    """The `Origin` header to echo back when `origin` may read our answers, else None."""
    return origin if origin is not None and definition.allows_origin(origin) else None


def is_own_origin(origin: str, base_url: str) -> bool:
    """Whether `origin` is the hub's own (the hosted form page posting to itself)."""
    try:
        return normalize_origin(origin) == normalize_origin(base_url)
    except ValueError:
        return False


def foreign_post(definition: FormDefinition, origin: str | None, base_url: str) -> bool:
    """Whether a POST came from a browser on a page that may not submit this form."""
    if origin is None:
        return False
    return allowed_origin(definition, origin) is None and not is_own_origin(origin, base_url)


def cors_headers(definition: FormDefinition, origin: str | None) -> dict[str, str]:
    """Headers for an actual (non-preflight) answer. `Vary: Origin` always, since the
    answer differs by origin and must not be cached across them."""
    headers = {"Vary": "Origin"}
    if (allowed := allowed_origin(definition, origin)) is not None:
        headers["Access-Control-Allow-Origin"] = allowed
        headers["Access-Control-Expose-Headers"] = "Retry-After"
    return headers


def preflight(
    definition: FormDefinition, request: web.Request, methods: tuple[str, ...]
) -> web.Response:
    """The answer to an OPTIONS preflight: 204 with CORS headers for a listed origin and a
    method the resource takes; 403 without them otherwise."""
    allowed = allowed_origin(definition, request.headers.get("Origin"))
    wanted = request.headers.get("Access-Control-Request-Method", "").strip().upper()
    if allowed is None or (wanted and wanted not in methods):
        return web.Response(status=403, text="Origin not allowed.\n", headers={"Vary": "Origin"})
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Origin": allowed,
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
            "Vary": "Origin",
        },
    )
