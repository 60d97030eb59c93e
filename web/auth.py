"""Authentication of the REST API (bearer tokens and cookie sessions), roles, and what
each user may see.

A request authenticates with `Authorization: Bearer <token>` (integrations) or with the
session cookie of the agent app (web/sessions.py); the same routes serve both. Either
way the user must be active at the moment of the request, so deactivating a user cuts
off their sessions and tokens at once. Unsafe requests authenticated by the cookie must
also pass the CSRF checks (web/csrf.py).

An agent sees only the channels they are members of, directly or through a team
(inbox/membership.py); the set is read once per request, here, so that every handler can
ask `visible_channel_ids` without awaiting.

The token is looked up in a read-only session, so authenticating an API read never waits
for SQLite's write lock; recording when a token was last used (at most once a minute) is
skipped, not waited for, while another transaction holds that lock.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from inbox.membership import visible_channels
from inbox.models import Role, User
from inbox.users import record_token_use, token_owner
from timeline.db import NO_WAIT, SessionFactory, is_busy
from timeline.models import utcnow
from web.csrf import check_csrf
from web.errors import forbidden, unauthorized
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY, USER_KEY
from web.openapi import API_PREFIX, operation_for
from web.sessions import COOKIE_NAME, SESSION_COOKIE_KEY, SESSION_STORE_KEY

logger = logging.getLogger(__name__)

_SESSION_ENDED = "the session has ended: sign in again"

# The channels an agent may see (absent: every channel), set with the user.
VISIBLE_CHANNELS_KEY: web.RequestKey[frozenset[uuid.UUID]] = web.RequestKey("visible_channels")
# Published when a user's session ends or a token is revoked: what they opened with it
# (websockets) is checked again.
SIGNED_OUT_EVENT = "user.signed_out"
# The bearer token that authenticated a request (absent for a session cookie).
TOKEN_ID_KEY: web.RequestKey[uuid.UUID] = web.RequestKey("token_id")


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requires a valid bearer token or session cookie on every API route not declared
    public."""
    match = request.match_info
    if (
        not request.path.startswith(API_PREFIX + "/")
        or match.http_exception is not None  # unknown path or method: let it answer 404/405
        or ((operation := operation_for(match.handler)) is not None and operation.public)
    ):
        return await handler(request)
    await authenticate(request)
    return await handler(request)


async def authenticate(request: web.Request) -> User:
    """Authenticate a request by bearer token or session cookie (with the CSRF checks
    for unsafe methods), and remember the user and the channels they see on it; 401
    without valid credentials. The API middleware calls it; so can the websocket
    handler (a GET: it must check the Origin itself, web/csrf.py check_origin)."""
    token = bearer_token(request)
    cookie = None if token is not None else request.cookies.get(COOKIE_NAME)
    if token is None and cookie is None:
        raise unauthorized(
            "not signed in: send 'Authorization: Bearer <token>' or sign in at POST /api/v1/session"
        )
    # The session store (Redis or a table) is asked before the database is.
    session_user_id = None
    if cookie is not None:
        session_user_id = await request.app[SESSION_STORE_KEY].user_id_of(cookie, utcnow())
        if session_user_id is None:
            raise unauthorized(_SESSION_ENDED)
    owner = None
    # One read transaction for the user and the channels they see: every API request
    # pays for it, so it is one pool checkout, not two.
    async with request.app[READ_SESSIONS_KEY]() as session:
        if token is not None:
            owner = await token_owner(session, token)
            if owner is None:
                raise unauthorized("invalid or revoked token")
            user = owner.user
        else:
            found = await session.scalar(
                select(User).where(User.id == session_user_id, User.is_active.is_(True))
            )
            if found is None:
                raise unauthorized(_SESSION_ENDED)
            user = found
        if user.role not in (Role.ADMIN, Role.MANAGER):
            request[VISIBLE_CHANNELS_KEY] = await visible_channels(session, user.id)
    if cookie is not None:
        check_csrf(request, cookie)
        request[SESSION_COOKIE_KEY] = cookie
    if owner is not None:
        request[TOKEN_ID_KEY] = owner.token_id
        if owner.use_is_stale(now := utcnow()):
            await _record_use(request.app[SESSIONS_KEY], owner.token_id, now)
    request[USER_KEY] = user
    return user


async def _record_use(sessions: SessionFactory, token_id: uuid.UUID, now: datetime) -> None:
    try:
        async with sessions() as session:
            await session.connection(execution_options={NO_WAIT: True})
            await record_token_use(session, token_id, now)
    except DBAPIError as err:
        if not is_busy(err):
            raise
        # A long write holds SQLite's lock: a later request records the use instead.
        logger.debug("token %s: last use not recorded while the database is busy", token_id)


def current_user(request: web.Request) -> User:
    """The authenticated user of an API request."""
    return request[USER_KEY]


def session_cookie(request: web.Request) -> str | None:
    """The session cookie that authenticated the request; None for a bearer token."""
    return request.get(SESSION_COOKIE_KEY)


def require_role(request: web.Request, *roles: Role) -> User:
    """The authenticated user, if they hold one of `roles`; else 403."""
    user = current_user(request)
    if user.role not in roles:
        allowed = " or ".join(role.value for role in roles)
        raise forbidden(f"this needs the {allowed} role")
    return user


def visible_channel_ids(request: web.Request) -> frozenset[uuid.UUID] | None:
    """The channels whose conversations and contacts this user may see; None means all.

    Admins and managers see every channel; agents the channels they are members of,
    directly or through one of their teams. Every API query filters through this one
    function, so membership is enforced here alone.
    """
    current_user(request)  # only authenticated requests may ask
    return request.get(VISIBLE_CHANNELS_KEY)
