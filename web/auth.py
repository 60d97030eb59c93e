"""Bearer-token authentication of the REST API, roles, and what each user may see.

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
from sqlalchemy.exc import DBAPIError

from inbox.models import Role, User
from inbox.users import record_token_use, token_owner
from timeline.db import NO_WAIT, SessionFactory, is_busy
from timeline.models import utcnow
from web.errors import forbidden, unauthorized
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY, USER_KEY
from web.openapi import API_PREFIX, operation_for

logger = logging.getLogger(__name__)


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requires a valid bearer token on every API route not declared public."""
    match = request.match_info
    if (
        not request.path.startswith(API_PREFIX + "/")
        or match.http_exception is not None  # unknown path or method: let it answer 404/405
        or ((operation := operation_for(match.handler)) is not None and operation.public)
    ):
        return await handler(request)
    token = bearer_token(request)
    if token is None:
        raise unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    async with request.app[READ_SESSIONS_KEY]() as session:
        owner = await token_owner(session, token)
    if owner is None:
        raise unauthorized("invalid or revoked token")
    now = utcnow()
    if owner.use_is_stale(now):
        await _record_use(request.app[SESSIONS_KEY], owner.token_id, now)
    request[USER_KEY] = owner.user
    return await handler(request)


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


def require_role(request: web.Request, *roles: Role) -> User:
    """The authenticated user, if they hold one of `roles`; else 403."""
    user = current_user(request)
    if user.role not in roles:
        allowed = " or ".join(role.value for role in roles)
        raise forbidden(f"this needs the {allowed} role")
    return user


def visible_channel_ids(request: web.Request) -> frozenset[uuid.UUID] | None:
    """The channels whose conversations and contacts this user may see; None means all.

    Agents are meant to see only the channels they are members of. Channel membership
    is not stored yet, so every authenticated user sees every channel for now; every
    API query filters through this one function, so membership is enforced here alone.
    """
    current_user(request)  # only authenticated requests may ask
    return None
