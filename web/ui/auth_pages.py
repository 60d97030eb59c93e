"""The sign-in page, signing out, and the account page (password, language).

Signing in uses what the API's POST /api/v1/session uses: inbox.users.authenticate, the
login limiter (per address and per account) and the session store, and sets the same
cookie, so a page session and an API session are one thing.
"""

from __future__ import annotations

import asyncio
import math
import uuid

from aiohttp import web
from babel import Locale

from inbox.models import User
from inbox.users import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    UserError,
    authenticate,
    check_password,
    hash_password,
    verify_password,
)
from timeline.events import Event
from timeline.models import utcnow
from web.api import publish
from web.auth import SIGNED_OUT_EVENT
from web.client_address import client_address
from web.csrf import check_origin
from web.errors import not_found
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY, SETTINGS_KEY, USER_KEY
from web.login_limit import LOGIN_LIMITER_KEY
from web.sessions import (
    COOKIE_NAME,
    SESSION_COOKIE_KEY,
    SESSION_STORE_KEY,
    new_session,
    set_session_cookie,
)
from web.ui.languages import LANGUAGES
from web.ui.render import render, translator_of
from web.ui.session import check_form, page, safe_next, signed_in_user

MAX_FIELD = MAX_PASSWORD_LENGTH  # longer emails or passwords are not worth hashing


def _address(request: web.Request) -> str:
    settings = request.app[SETTINGS_KEY]
    return client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), settings.proxy_networks
    )


def _login_page(
    request: web.Request, *, next_url: str, email: str = "", error: str | None = None, status: int
) -> web.Response:
    return render(
        request,
        "login.html",
        {"next_url": next_url, "email": email, "error": error},
        status=status,
    )


async def login_form(request: web.Request) -> web.StreamResponse:
    """GET /login: the form (already signed in: straight on)."""
    next_url = safe_next(request.query.get("next"))
    if await signed_in_user(request) is not None:
        raise web.HTTPFound(next_url)
    return _login_page(request, next_url=next_url, status=200)


async def login(request: web.Request) -> web.StreamResponse:
    """POST /login: check the password (rate limited) and start a session."""
    # Another site's page must not sign a visitor in to an account of its choosing.
    check_origin(request, required=True)
    form = await request.post()
    t = translator_of(request).gettext
    email = str(form.get("email", ""))[:MAX_FIELD].strip()
    password = str(form.get("password", ""))[:MAX_FIELD]
    next_url = safe_next(str(form.get("next", "")))
    limiter = request.app[LOGIN_LIMITER_KEY]
    address = _address(request)
    now = utcnow()
    if wait := await limiter.retry_after(address, email, now):
        message = t("Too many failed sign-ins. Try again in {seconds} seconds.")
        error = message.format(seconds=max(1, math.ceil(wait)))
        response = _login_page(request, next_url=next_url, email=email, error=error, status=429)
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    user = None
    if email and password:
        async with request.app[READ_SESSIONS_KEY]() as session:
            user = await authenticate(session, email, password)
    if user is None:
        await limiter.failed(address, email, now)
        error = t("Wrong email or password.")
        return _login_page(request, next_url=next_url, email=email, error=error, status=401)
    await limiter.succeeded(email)
    cookie = await new_session(request, user.id, now)
    response = web.HTTPSeeOther(next_url)
    set_session_cookie(request, response, cookie)
    raise response


@page
async def logout(request: web.Request) -> web.StreamResponse:
    """POST /logout: end the session for good (its websockets close too)."""
    check_form(request, await request.post())
    await request.app[SESSION_STORE_KEY].end(request[SESSION_COOKIE_KEY])
    await publish(request, _signed_out(request[USER_KEY].id))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE_NAME, path="/")
    raise response


def _account_page(
    request: web.Request,
    *,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> web.Response:
    # Each language named in itself, as language pickers do ("English", "فارسی").
    names = {code: Locale.parse(code).get_display_name(code) or code for code in LANGUAGES}
    return render(
        request,
        "account.html",
        {"languages": names, "errors": errors or {}, "notice": notice},
        status=status,
    )


@page
async def account(request: web.Request) -> web.StreamResponse:
    """GET /account: change the password, choose the interface language."""
    t = translator_of(request).gettext
    notices = {"password": t("Your password was changed."), "language": t("Language saved.")}
    return _account_page(request, notice=notices.get(request.query.get("saved", "")))


@page
async def change_password(request: web.Request) -> web.StreamResponse:
    """POST /account/password: as POST /api/v1/session/password (rate limited like a
    login; the user's other sessions end)."""
    form = await request.post()
    check_form(request, form)
    t = translator_of(request).gettext
    user: User = request[USER_KEY]
    current = str(form.get("current_password", ""))[:MAX_FIELD]
    new = str(form.get("new_password", ""))[:MAX_FIELD]
    if new != str(form.get("confirm_password", ""))[:MAX_FIELD]:
        errors = {"confirm_password": t("The two new passwords differ.")}
        return _account_page(request, errors=errors, status=422)
    try:
        check_password(new)
    except UserError:
        errors = {"new_password": t("Use at least {n} characters.", n=MIN_PASSWORD_LENGTH)}
        return _account_page(request, errors=errors, status=422)
    limiter = request.app[LOGIN_LIMITER_KEY]
    address = _address(request)
    now = utcnow()
    if wait := await limiter.retry_after(address, user.email, now):
        message = t("Too many failed attempts. Try again in {seconds} seconds.")
        errors = {"current_password": message.format(seconds=max(1, math.ceil(wait)))}
        return _account_page(request, errors=errors, status=429)
    if not await asyncio.to_thread(verify_password, user.password_hash, current):
        await limiter.failed(address, user.email, now)
        errors = {"current_password": t("That is not your current password.")}
        return _account_page(request, errors=errors, status=422)
    new_hash = await asyncio.to_thread(hash_password, new)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        stored = await session.get(User, user.id, with_for_update=True)
        if stored is None:
            raise not_found()
        stored.password_hash = new_hash
    await request.app[SESSION_STORE_KEY].end_all(user.id, keep=request[SESSION_COOKIE_KEY])
    await publish(request, _signed_out(user.id))
    raise web.HTTPSeeOther("/account?saved=password")


@page
async def set_language(request: web.Request) -> web.StreamResponse:
    """POST /account/language: the interface language ("" follows the browser)."""
    form = await request.post()
    check_form(request, form)
    chosen = str(form.get("language", ""))
    language = chosen if chosen in LANGUAGES else None
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        stored = await session.get(User, request[USER_KEY].id, with_for_update=True)
        if stored is None:
            raise not_found()
        stored.language = language
    raise web.HTTPSeeOther("/account?saved=language")


def _signed_out(user_id: uuid.UUID) -> Event:
    # As web/api/accounts.py: what the session opened (websockets) is checked again.
    return Event(SIGNED_OUT_EVENT, {"user_id": str(user_id)})
