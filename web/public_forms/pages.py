"""The GET side of a public form: the hosted page, its thank-you page, the embed script,
the description the script draws from, and the CORS preflights.

Every form page and description carries a fresh render token (spam.py), so none of them
may be cached; the script itself holds no token and is cached briefly.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from connectors.webform.clean import clean_line
from connectors.webform.embed import embed_script, form_urls, public_description
from connectors.webform.render import (
    content_security_policy,
    new_nonce,
    render_form,
    render_thanks,
)
from connectors.webform.spam import issue_token
from web.keys import SETTINGS_KEY
from web.public_forms import clock, cors
from web.public_forms.keys import FORM_LOOKUP_KEY, TOKEN_SECRET_KEY
from web.public_forms.lookup import PublicForm
from web.public_forms.responses import html_page, json_answer, not_found, unavailable
from web.public_forms.visitor import MAX_HEADER_CHARS

SCRIPT_MAX_AGE_SECONDS = 300
POST_METHODS = ("POST",)
DESCRIPTION_METHODS = ("GET",)


def action_path(key: str) -> str:
    """Where the hosted page posts: relative, since the page is served by the hub itself
    (its public URL may be set wrong without breaking the page)."""
    return "/forms/" + quote(key, safe="")


def new_token(request: web.Request, key: str) -> str:
    """A render token for form `key`, issued now."""
    return issue_token(request.app[TOKEN_SECRET_KEY], key, clock.now())


async def find(request: web.Request) -> PublicForm | None:
    """The form the path names, if it exists and is active."""
    return await request.app[FORM_LOOKUP_KEY].get(request.match_info["key"])


async def form_page(request: web.Request) -> web.Response:
    """GET /forms/{key}: the hosted form, usable without JavaScript."""
    public = await find(request)
    if public is None:
        return not_found(as_html=True)
    if not public.available:
        return unavailable(as_html=True)
    key = public.form.key
    nonce = new_nonce()
    referrer = request.headers.get("Referer")
    body = render_form(
        public.definition,
        action_url=action_path(key),
        nonce=nonce,
        token=new_token(request, key),
        page_url=clean_line(str(request.url), MAX_HEADER_CHARS),
        referrer=clean_line(referrer, MAX_HEADER_CHARS) if referrer else None,
    )
    return html_page(body, csp=content_security_policy(public.definition, nonce))


async def thanks_page(request: web.Request) -> web.Response:
    """GET /forms/{key}/thanks: where a plain form post is sent after success (303), so
    reloading the page never posts again."""
    public = await find(request)
    if public is None:
        return not_found(as_html=True)
    nonce = new_nonce()
    body = render_thanks(public.definition, nonce=nonce)
    return html_page(body, csp=content_security_policy(public.definition, nonce))


async def description(request: web.Request) -> web.Response:
    """GET /forms/{key}/form.json: the form for the embed script, with a fresh token."""
    public = await find(request)
    if public is None:
        return not_found(as_html=False, headers={"Vary": "Origin"})
    headers = cors.cors_headers(public.definition, request.headers.get("Origin"))
    if not public.available:
        return unavailable(as_html=False, headers=headers)
    key = public.form.key
    submit_url = form_urls(request.app[SETTINGS_KEY].base_url, key)["submit"]
    document = public_description(public.definition, new_token(request, key), submit_url=submit_url)
    return json_answer(200, document, headers)


async def script(request: web.Request) -> web.Response:
    """GET /forms/{key}/embed.js: the embed script for this form."""
    public = await find(request)
    if public is None:
        return web.Response(
            status=404,
            text="/* Switchboard: no such form */\n",
            content_type="application/javascript",
            headers={"X-Content-Type-Options": "nosniff"},
        )
    return web.Response(
        text=embed_script(request.app[SETTINGS_KEY].base_url, public.form.key),
        content_type="application/javascript",
        charset="utf-8",
        headers={
            "Cache-Control": f"public, max-age={SCRIPT_MAX_AGE_SECONDS}",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _preflight(request: web.Request, methods: tuple[str, ...]) -> web.Response:
    public = await find(request)
    if public is None:
        return web.Response(status=404, text="No such form.\n", headers={"Vary": "Origin"})
    return cors.preflight(public.definition, request, methods)


async def submit_preflight(request: web.Request) -> web.Response:
    """OPTIONS /forms/{key}: may this origin POST here?"""
    return await _preflight(request, POST_METHODS)


async def description_preflight(request: web.Request) -> web.Response:
    """OPTIONS /forms/{key}/form.json: may this origin read the description?"""
    return await _preflight(request, DESCRIPTION_METHODS)
