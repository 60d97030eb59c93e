"""Who is signed in on a page, and the checks of the pages' own forms.

Pages use the API's cookie sessions (web/sessions.py): the same cookie, the same store,
the same CSRF token. A page request is signed in when its cookie names a live session
of an active user; otherwise it is sent to /login?next=<where it was going>.

A page's form carries the session's CSRF token in a hidden `csrf_token` field (a form
cannot set the X-CSRF-Token header the API wants) and must come from our own origin.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select

from inbox.membership import visible_channels
from inbox.models import Role, User
from timeline.models import utcnow
from web.auth import VISIBLE_CHANNELS_KEY
from web.csrf import check_origin
from web.errors import forbidden
from web.keys import READ_SESSIONS_KEY, USER_KEY
from web.sessions import (
    COOKIE_NAME,
    CSRF_SECRET_KEY,
    SESSION_COOKIE_KEY,
    SESSION_STORE_KEY,
    csrf_token,
)

CSRF_FIELD = "csrf_token"
HOME = "/inbox"

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def signed_in_user(request: web.Request) -> User | None:
    """The active user of the request's session cookie (remembered on the request with
    the channels they see, as the API's authentication does), or None."""
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return None
    user_id = await request.app[SESSION_STORE_KEY].user_id_of(cookie, utcnow())
    if user_id is None:
        return None
    async with request.app[READ_SESSIONS_KEY]() as session:
        user = await session.scalar(
            select(User).where(User.id == user_id, User.is_active.is_(True))
        )
        if user is None:
            return None
        if user.role not in (Role.ADMIN, Role.MANAGER):
            request[VISIBLE_CHANNELS_KEY] = await visible_channels(session, user.id)
    request[USER_KEY] = user
    request[SESSION_COOKIE_KEY] = cookie
    return user


def login_redirect(request: web.Request) -> web.HTTPFound:
    """To the login page, coming back here afterwards."""
    return web.HTTPFound("/login?next=" + quote(request.path_qs, safe="/"))


def page(handler: PageHandler) -> PageHandler:
    """A page that needs a session: anonymous visitors go to the login page."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if await signed_in_user(request) is None:
            raise login_redirect(request)
        return await handler(request)

    return guarded


def check_form(request: web.Request, form: MultiDictProxy[Any]) -> None:
    """403 unless a page's form post comes from our origin with the session's token."""
    check_origin(request, required=True)
    cookie = request.get(SESSION_COOKIE_KEY)
    sent = form.get(CSRF_FIELD)
    if cookie is None or not isinstance(sent, str):
        raise forbidden("missing CSRF token")
    expected = csrf_token(request.app[CSRF_SECRET_KEY], cookie)
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise forbidden("wrong CSRF token")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another host, not
    even by `//host` or `/\\host`), else the inbox."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    if any(ord(c) < 0x20 or c == "\\" for c in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return HOME
    return target
