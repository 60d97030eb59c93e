"""Users, teams, channel membership, API tokens, and cookie sessions (issue 9).

| route | who |
|---|---|
| POST /session | anyone: sign in |
| GET/DELETE /session, POST /session/password | the user: who am I, sign out, new password |
| PATCH /session | the user: their own preferences (interface language) |
| GET /users, GET /users/{id} | everyone (agents assign and mention colleagues) |
| POST /users, PATCH /users/{id} | admins (users are deactivated, never deleted) |
| GET/POST /users/{id}/tokens, DELETE .../{token_id} | admins, and users for their own |
| GET /users/{id}/channels | admins, managers, and users for their own |
| PUT /users/{id}/channels | admins: the channels a user works directly |
| GET /teams, GET /teams/{id} | everyone |
| POST/PATCH/DELETE /teams... | admins |
| GET/PUT /channels/{id}/members | admins |
"""

from __future__ import annotations

import asyncio
import math
import uuid

from aiohttp import web
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import Team
from inbox.invitations import check_channels, set_direct_channels
from inbox.membership import (
    UnknownIds,
    channel_membership,
    set_channel_membership,
    user_channels,
)
from inbox.models import ApiToken, Role, User
from inbox.teams import set_team_members, team_views
from inbox.users import (
    UserError,
    add_token,
    authenticate,
    check_email,
    check_password,
    create_user,
    hash_password,
    verify_password,
)
from timeline.events import Event
from timeline.models import Channel, utcnow
from web import auth
from web.api import after, cut, path_id, publish
from web.api.account_schemas import (
    ChannelMembersIn,
    ChannelMembersOut,
    LoginIn,
    PasswordChangeIn,
    SessionOut,
    SessionPreferencesIn,
    SessionPreferencesOut,
    TeamCreate,
    TeamOut,
    TeamUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserChannelOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from web.api.invitation_schemas import UserChannelsIn
from web.api.schemas import Keyset, Page, PageQuery
from web.client_address import client_address
from web.csrf import check_origin
from web.errors import ApiError, ErrorDetail, ErrorResponse, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY, SETTINGS_KEY
from web.login_limit import LOGIN_LIMITER_KEY
from web.openapi import ApiRoutes, parse_body, parse_query, respond
from web.sessions import (
    COOKIE_NAME,
    CSRF_SECRET_KEY,
    SESSION_STORE_KEY,
    csrf_token,
    new_session,
    set_session_cookie,
)

routes = ApiRoutes(tag="accounts")

WRONG_LOGIN = "wrong email or password"


# --- sessions --------------------------------------------------------------------------------


@routes.route(
    "POST",
    "/session",
    summary="Sign in: sets the session cookie",
    body=LoginIn,
    response=SessionOut,
    errors=[401, 403, 429],
    public=True,
)
async def login(request: web.Request) -> web.StreamResponse:
    """Check the email and password and start a cookie session.

    Failures are rate limited per client address and per account (429 with
    Retry-After); every failure answers the same 401, whether the email is unknown, the
    password wrong or the user deactivated.
    """
    # A browser names the page that posted: another site's page must not sign a visitor
    # in (to an account of the attacker's choosing). API clients send no Origin.
    check_origin(request, required=False)
    body = await parse_body(request, LoginIn)
    settings = request.app[SETTINGS_KEY]
    limiter = request.app[LOGIN_LIMITER_KEY]
    address = client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), settings.proxy_networks
    )
    now = utcnow()
    if wait := await limiter.retry_after(address, body.email, now):
        return _too_many(wait)
    async with request.app[READ_SESSIONS_KEY]() as session:
        user = await authenticate(session, body.email, body.password)
    if user is None:
        await limiter.failed(address, body.email, now)
        raise ApiError(401, "unauthorized", WRONG_LOGIN)
    await limiter.succeeded(body.email)
    store = request.app[SESSION_STORE_KEY]
    cookie = await new_session(request, user.id, now)
    expires_at = now + store.policy.lifetime
    response = respond(
        request,
        SessionOut(
            user=UserOut.of(user),
            csrf_token=csrf_token(request.app[CSRF_SECRET_KEY], cookie),
            expires_at=expires_at,
        ),
    )
    set_session_cookie(request, response, cookie)
    return response


def _too_many(wait: float) -> web.Response:
    # Not raised as an ApiError: the error middleware's answer has no Retry-After.
    seconds = max(1, math.ceil(wait))
    body = ErrorResponse(
        error=ErrorDetail(
            code="too_many_requests", message=f"too many failed logins; try again in {seconds}s"
        )
    )
    return web.json_response(
        text=body.model_dump_json(), status=429, headers={"Retry-After": str(seconds)}
    )


@routes.route("GET", "/session", summary="Who is signed in", response=SessionOut)
async def get_session(request: web.Request) -> web.Response:
    """The signed-in user and the session's CSRF token (null with a bearer token)."""
    user = auth.current_user(request)
    cookie = auth.session_cookie(request)
    token = None if cookie is None else csrf_token(request.app[CSRF_SECRET_KEY], cookie)
    return respond(request, SessionOut(user=UserOut.of(user), csrf_token=token, expires_at=None))


@routes.route("DELETE", "/session", summary="Sign out", status=204)
async def logout(request: web.Request) -> web.Response:
    """End the session on the server (the cookie stops working everywhere) and clear the
    cookie. With a bearer token there is no session: nothing happens (revoke tokens at
    /users/{id}/tokens)."""
    if (cookie := auth.session_cookie(request)) is not None:
        await request.app[SESSION_STORE_KEY].end(cookie)
        # Its open websockets close too (web/realtime re-checks the user's sessions).
        await publish(request, _signed_out(auth.current_user(request).id))
    response = respond(request)
    response.del_cookie(COOKIE_NAME, path="/")
    return response


@routes.route(
    "PATCH",
    "/session",
    summary="Set one's own preferences (interface language)",
    body=SessionPreferencesIn,
    response=SessionPreferencesOut,
)
async def update_preferences(request: web.Request) -> web.Response:
    """Set the signed-in user's interface language (null: the browser's choice)."""
    user = auth.current_user(request)
    body = await parse_body(request, SessionPreferencesIn)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        stored = await session.get(User, user.id, with_for_update=True)
        if stored is None:
            raise not_found("no such user")
        stored.language = body.language
    return respond(request, SessionPreferencesOut(language=body.language))


@routes.route(
    "POST",
    "/session/password",
    summary="Change one's own password; other sessions end",
    status=204,
    body=PasswordChangeIn,
    errors=[429],
)
async def change_password(request: web.Request) -> web.StreamResponse:
    """Check the current password (rate limited like a login), set the new one, and end
    the user's other sessions; the session making the change stays signed in."""
    user = auth.current_user(request)
    body = await parse_body(request, PasswordChangeIn)
    try:
        check_password(body.new_password)
    except UserError as err:
        raise validation_failed({"new_password": str(err)}) from err
    settings = request.app[SETTINGS_KEY]
    limiter = request.app[LOGIN_LIMITER_KEY]
    address = client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), settings.proxy_networks
    )
    now = utcnow()
    if wait := await limiter.retry_after(address, user.email, now):
        return _too_many(wait)
    if not await asyncio.to_thread(verify_password, user.password_hash, body.current_password):
        await limiter.failed(address, user.email, now)
        raise validation_failed({"current_password": "wrong password"})
    new_hash = await asyncio.to_thread(hash_password, body.new_password)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        stored = await session.get(User, user.id, with_for_update=True)
        if stored is None:
            raise not_found("no such user")
        stored.password_hash = new_hash
    await request.app[SESSION_STORE_KEY].end_all(user.id, keep=auth.session_cookie(request))
    await publish(request, _signed_out(user.id))
    return respond(request)


# --- users -----------------------------------------------------------------------------------


@routes.route("GET", "/users", summary="List users", query=PageQuery, response=Page[UserOut])
async def list_users(request: web.Request) -> web.Response:
    """Users, oldest first (every role: agents assign and mention colleagues)."""
    query = parse_query(request, PageQuery)
    statement = select(User).order_by(User.created_at, User.id).limit(query.limit + 1)
    if (position := after(User.created_at, User.id, query.keyset, descending=False)) is not None:
        statement = statement.where(position)
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
    page, next_cursor = cut(rows, query.limit, lambda row: Keyset(at=row.created_at, id=row.id))
    return respond(
        request, Page[UserOut](items=[UserOut.of(u) for u in page], next_cursor=next_cursor)
    )


@routes.route(
    "POST",
    "/users",
    summary="Create a user (admins)",
    status=201,
    body=UserCreate,
    response=UserOut,
    errors=[403, 409],
)
async def create_user_route(request: web.Request) -> web.Response:
    """A new user with the password the admin sets."""
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, UserCreate)
    _check_user_fields(body.email, body.password)
    async with request.app[SESSIONS_KEY]() as session:
        try:
            user = await create_user(
                session, email=body.email, password=body.password, role=body.role, name=body.name
            )
        except UserError as err:
            raise ApiError(409, "conflict", str(err)) from err
    await publish(request, Event("user.created", {"user_id": str(user.id)}))
    return respond(request, UserOut.of(user))


def _check_user_fields(email: str | None, password: str | None) -> None:
    problems = {}
    if email is not None:
        try:
            check_email(email)
        except UserError as err:
            problems["email"] = str(err)
    if password is not None:
        try:
            check_password(password)
        except UserError as err:
            problems["password"] = str(err)
    if problems:
        raise validation_failed(problems)


@routes.route("GET", "/users/{id}", summary="Get a user", response=UserOut, errors=[404])
async def get_user(request: web.Request) -> web.Response:
    """One user."""
    user_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise not_found("no such user")
    return respond(request, UserOut.of(user))


@routes.route(
    "PATCH",
    "/users/{id}",
    summary="Change a user (admins)",
    body=UserUpdate,
    response=UserOut,
    errors=[403, 404, 409],
)
async def update_user(request: web.Request) -> web.Response:
    """Change name, email, role, active flag or password. Deactivating a user or setting
    their password ends their sessions; the last active admin cannot be demoted or
    deactivated (someone must be able to manage users)."""
    auth.require_role(request, Role.ADMIN)
    user_id = path_id(request)
    body = await parse_body(request, UserUpdate)
    _check_user_fields(body.email, body.password)
    new_hash = (
        None if body.password is None else await asyncio.to_thread(hash_password, body.password)
    )
    async with request.app[SESSIONS_KEY]() as session:
        user = await session.get(User, user_id, with_for_update=True)
        if user is None:
            raise not_found("no such user")
        if "name" in body.model_fields_set:
            user.name = body.name
        if body.email is not None:
            user.email = check_email(body.email)
        if body.role is not None:
            user.role = body.role.value
        if body.is_active is not None:
            user.is_active = body.is_active
        if new_hash is not None:
            user.password_hash = new_hash
        try:
            await _keep_an_admin(session)
            await session.commit()
        except IntegrityError as err:
            raise ApiError(409, "conflict", "a user with that email already exists") from err
        answer = UserOut.of(user)
    if new_hash is not None or body.is_active is False:
        await request.app[SESSION_STORE_KEY].end_all(user_id)
    await publish(request, Event("user.updated", {"user_id": str(user_id)}))
    return respond(request, answer)


async def _keep_an_admin(session: AsyncSession) -> None:
    await session.flush()
    admins = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.is_active.is_(True))
    )
    if not admins:
        await session.rollback()
        raise ApiError(409, "conflict", "this would leave no active admin")


# --- API tokens ------------------------------------------------------------------------------


def _token_owner_id(request: web.Request) -> uuid.UUID:
    """The user of a /users/{id}/tokens path, if the caller may manage their tokens."""
    user_id = path_id(request)
    caller = auth.current_user(request)
    if caller.id != user_id:
        auth.require_role(request, Role.ADMIN)
    return user_id


@routes.route(
    "GET",
    "/users/{id}/tokens",
    summary="List a user's API tokens (admins, or the user)",
    query=PageQuery,
    response=Page[TokenOut],
    errors=[403, 404],
)
async def list_tokens(request: web.Request) -> web.Response:
    """The user's tokens, oldest first, with when each was last used."""
    user_id = _token_owner_id(request)
    query = parse_query(request, PageQuery)
    statement = (
        select(ApiToken)
        .where(ApiToken.user_id == user_id)
        .order_by(ApiToken.created_at, ApiToken.id)
        .limit(query.limit + 1)
    )
    position = after(ApiToken.created_at, ApiToken.id, query.keyset, descending=False)
    if position is not None:
        statement = statement.where(position)
    async with request.app[READ_SESSIONS_KEY]() as session:
        if await session.get(User, user_id) is None:
            raise not_found("no such user")
        rows = (await session.scalars(statement)).all()
    page, next_cursor = cut(rows, query.limit, lambda row: Keyset(at=row.created_at, id=row.id))
    return respond(
        request, Page[TokenOut](items=[TokenOut.of(t) for t in page], next_cursor=next_cursor)
    )


@routes.route(
    "POST",
    "/users/{id}/tokens",
    summary="Create an API token (admins, or the user)",
    status=201,
    body=TokenCreate,
    response=TokenCreated,
    errors=[403, 404],
)
async def create_token(request: web.Request) -> web.Response:
    """A new token; the answer is the only time it is shown."""
    user_id = _token_owner_id(request)
    body = await parse_body(request, TokenCreate)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        user = await session.get(User, user_id)
        if user is None:
            raise not_found("no such user")
        row, token = add_token(session, user_id, body.name)
        await session.flush()
        answer = TokenCreated(**TokenOut.of(row).model_dump(), token=token)
    return respond(request, answer)


@routes.route(
    "DELETE",
    "/users/{id}/tokens/{token_id}",
    summary="Revoke an API token (admins, or the user)",
    status=204,
    errors=[403, 404],
)
async def revoke_token(request: web.Request) -> web.Response:
    """Delete the token: it stops working at once."""
    user_id = _token_owner_id(request)
    token_id = path_id(request, "token_id")
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        result = await session.execute(
            delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id)
        )
    if not getattr(result, "rowcount", 0):
        raise not_found("no such token")
    await publish(request, _signed_out(user_id))
    return respond(request)


@routes.route(
    "GET",
    "/users/{id}/channels",
    summary="The channels a user works (admins, managers, or the user)",
    response=Page[UserChannelOut],
    errors=[403, 404],
)
async def list_user_channels(request: web.Request) -> web.Response:
    """Channels the user is a member of, directly or through teams (all of them)."""
    user_id = path_id(request)
    if auth.current_user(request).id != user_id:
        auth.require_role(request, Role.ADMIN, Role.MANAGER)
    async with request.app[READ_SESSIONS_KEY]() as session:
        if await session.get(User, user_id) is None:
            raise not_found("no such user")
        items = [UserChannelOut.of(item) for item in await user_channels(session, user_id)]
    return respond(request, Page[UserChannelOut](items=items, next_cursor=None))


@routes.route(
    "PUT",
    "/users/{id}/channels",
    summary="Set the channels a user works directly (admins)",
    body=UserChannelsIn,
    response=Page[UserChannelOut],
    errors=[403, 404],
)
async def put_user_channels(request: web.Request) -> web.Response:
    """Replace the user's direct channel memberships (the team screen edits one agent at
    a time; PUT /channels/{id}/members edits one channel). Channels they work through a
    team stay. Answers every channel they work now, as the GET does."""
    auth.require_role(request, Role.ADMIN)
    user_id = path_id(request)
    body = await parse_body(request, UserChannelsIn)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        if await session.get(User, user_id, with_for_update=True) is None:
            raise not_found("no such user")
        try:
            await check_channels(session, body.channel_ids)
        except UnknownIds as err:
            raise validation_failed({err.field: str(err)}) from err
        changed = await set_direct_channels(session, user_id, body.channel_ids)
        await session.flush()
        items = [UserChannelOut.of(item) for item in await user_channels(session, user_id)]
    for channel_id in sorted(changed):
        await publish(request, Event("channel.members_changed", {"channel_id": str(channel_id)}))
    return respond(request, Page[UserChannelOut](items=items, next_cursor=None))


# --- teams -----------------------------------------------------------------------------------


@routes.route("GET", "/teams", summary="List teams", query=PageQuery, response=Page[TeamOut])
async def list_teams(request: web.Request) -> web.Response:
    """Teams by name."""
    query = parse_query(request, PageQuery)
    statement = select(Team).order_by(Team.created_at, Team.id).limit(query.limit + 1)
    if (position := after(Team.created_at, Team.id, query.keyset, descending=False)) is not None:
        statement = statement.where(position)
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(rows, query.limit, lambda r: Keyset(at=r.created_at, id=r.id))
        items = [TeamOut.of(view) for view in await team_views(session, page)]
    return respond(request, Page[TeamOut](items=items, next_cursor=next_cursor))


async def _team_out(session: AsyncSession, team: Team) -> TeamOut:
    [view] = await team_views(session, [team])
    return TeamOut.of(view)


@routes.route(
    "POST",
    "/teams",
    summary="Create a team (admins)",
    status=201,
    body=TeamCreate,
    response=TeamOut,
    errors=[403, 409],
)
async def create_team(request: web.Request) -> web.Response:
    """A new team with its members."""
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, TeamCreate)
    async with request.app[SESSIONS_KEY]() as session:
        team = Team(name=body.name, description=body.description, created_at=utcnow())
        session.add(team)
        try:
            await session.flush()
            await set_team_members(session, team, body.member_ids)
            await session.commit()
        except UnknownIds as err:
            raise validation_failed({err.field: str(err)}) from err
        except IntegrityError as err:
            raise ApiError(409, "conflict", f"a team named {body.name!r} exists") from err
        answer = await _team_out(session, team)
    await publish(request, Event("team.created", {"team_id": str(team.id)}))
    return respond(request, answer)


@routes.route("GET", "/teams/{id}", summary="Get a team", response=TeamOut, errors=[404])
async def get_team(request: web.Request) -> web.Response:
    """One team with its members and channels."""
    async with request.app[READ_SESSIONS_KEY]() as session:
        team = await session.get(Team, path_id(request))
        if team is None:
            raise not_found("no such team")
        answer = await _team_out(session, team)
    return respond(request, answer)


@routes.route(
    "PATCH",
    "/teams/{id}",
    summary="Change a team (admins)",
    body=TeamUpdate,
    response=TeamOut,
    errors=[403, 404, 409],
)
async def update_team(request: web.Request) -> web.Response:
    """Rename, describe, or replace the members of a team."""
    auth.require_role(request, Role.ADMIN)
    team_id = path_id(request)
    body = await parse_body(request, TeamUpdate)
    async with request.app[SESSIONS_KEY]() as session:
        team = await session.get(Team, team_id, with_for_update=True)
        if team is None:
            raise not_found("no such team")
        if body.name is not None:
            team.name = body.name
        if "description" in body.model_fields_set:
            team.description = body.description
        try:
            if body.member_ids is not None:
                await set_team_members(session, team, body.member_ids)
            await session.commit()
        except UnknownIds as err:
            raise validation_failed({err.field: str(err)}) from err
        except IntegrityError as err:
            raise ApiError(409, "conflict", f"a team named {body.name!r} exists") from err
        answer = await _team_out(session, team)
    await publish(request, Event("team.updated", {"team_id": str(team_id)}))
    return respond(request, answer)


@routes.route(
    "DELETE", "/teams/{id}", summary="Delete a team (admins)", status=204, errors=[403, 404]
)
async def delete_team(request: web.Request) -> web.Response:
    """Delete a team: its members lose the channels they had only through it.
    Conversations assigned to it keep the id (shown as an unknown team)."""
    auth.require_role(request, Role.ADMIN)
    team_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        result = await session.execute(delete(Team).where(Team.id == team_id))
    if not getattr(result, "rowcount", 0):
        raise not_found("no such team")
    await publish(request, Event("team.deleted", {"team_id": str(team_id)}))
    return respond(request)


# --- channel members -------------------------------------------------------------------------


@routes.route(
    "GET",
    "/channels/{id}/members",
    summary="A channel's members (admins)",
    response=ChannelMembersOut,
    errors=[403, 404],
)
async def get_channel_members(request: web.Request) -> web.Response:
    """The users and teams that work the channel."""
    auth.require_role(request, Role.ADMIN)
    channel_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        if await session.get(Channel, channel_id) is None:
            raise not_found("no such channel")
        membership = await channel_membership(session, channel_id)
    return respond(request, ChannelMembersOut.of(channel_id, membership))


@routes.route(
    "PUT",
    "/channels/{id}/members",
    summary="Set a channel's members (admins)",
    body=ChannelMembersIn,
    response=ChannelMembersOut,
    errors=[403, 404],
)
async def put_channel_members(request: web.Request) -> web.Response:
    """Replace the users and teams that work the channel."""
    auth.require_role(request, Role.ADMIN)
    channel_id = path_id(request)
    body = await parse_body(request, ChannelMembersIn)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        try:
            found = await set_channel_membership(session, channel_id, body.user_ids, body.team_ids)
        except UnknownIds as err:
            raise validation_failed({err.field: str(err)}) from err
        if not found:
            raise not_found("no such channel")
        await session.flush()
        membership = await channel_membership(session, channel_id)
    await publish(request, Event("channel.members_changed", {"channel_id": str(channel_id)}))
    return respond(request, ChannelMembersOut.of(channel_id, membership))


def _signed_out(user_id: uuid.UUID) -> Event:
    """A session ended or a token was revoked: what they opened must close."""
    return Event(auth.SIGNED_OUT_EVENT, {"user_id": str(user_id)})
