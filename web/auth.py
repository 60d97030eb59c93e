"""Bearer-token authentication of the REST API, roles, and what each user may see."""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from inbox.models import Role, User
from inbox.users import user_for_token
from web.errors import forbidden, unauthorized
from web.keys import SESSIONS_KEY, USER_KEY
from web.openapi import API_PREFIX, operation_for


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
    async with request.app[SESSIONS_KEY]() as session:
        user = await user_for_token(session, token)
    if user is None:
        raise unauthorized("invalid or revoked token")
    request[USER_KEY] = user
    return await handler(request)


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
