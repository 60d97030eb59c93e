"""Invitations: an admin invites an agent by email; the invitee sets a password through
a one-time link (issue 11, the team screen). The logic is inbox/invitations.py.

| route | who |
|---|---|
| POST /invitations | admins: invite someone (or again, someone who has not arrived yet) |
| GET /invitations | admins: the open links (who is still invited) |
| POST /users/{id}/invitation | admins: a new link for an invited user (the old one stops) |
| POST /invitations/accept | anyone with a link's token: set the password |

There is no system mail: the admin gets the link (`url`) to pass on. The set-password
page at /invitations/{token} is web/ui/invitation_pages.py.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from inbox.invitations import (
    LinkState,
    invite,
    is_invited,
    issue,
    link_path,
    look_up,
    open_invitations,
    redeem,
    replace_open,
)
from inbox.membership import UnknownIds
from inbox.models import Role, User
from inbox.users import DuplicateUserError, UserError, check_password, hash_password
from timeline.events import Event
from timeline.models import utcnow
from web import auth
from web.api import path_id, publish
from web.api.account_schemas import UserOut
from web.api.invitation_schemas import (
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
)
from web.api.schemas import Page
from web.csrf import check_origin
from web.errors import ApiError, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY, SETTINGS_KEY
from web.openapi import ApiRoutes, parse_body, respond

routes = ApiRoutes(tag="accounts")


def _url(request: web.Request, token: str) -> str:
    return request.app[SETTINGS_KEY].base_url + link_path(token)


@routes.route(
    "POST",
    "/invitations",
    summary="Invite someone: a user and a one-time set-password link (admins)",
    status=201,
    body=InvitationCreate,
    response=InvitationCreated,
    errors=[403, 409],
)
async def create_invitation(request: web.Request) -> web.Response:
    """A user who cannot sign in until they set a password with the link (`url`, valid
    for 7 days, once). The email of someone still invited gives them a new link."""
    admin = auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, InvitationCreate)
    now = utcnow()
    async with request.app[SESSIONS_KEY]() as session:
        try:
            done = await invite(
                session,
                email=body.email,
                name=body.name,
                role=body.role,
                channel_ids=body.channel_ids,
                invited_by=admin.id,
                now=now,
            )
        except DuplicateUserError as err:
            raise ApiError(409, "conflict", str(err)) from err
        except UserError as err:
            raise validation_failed({"email": str(err)}) from err
        except UnknownIds as err:
            raise validation_failed({err.field: str(err)}) from err
        answer = InvitationCreated(
            user=UserOut.of(done.user),
            invitation=InvitationOut.of(done.issued.invitation, now),
            token=done.issued.token,
            url=_url(request, done.issued.token),
        )
    kind = "user.created" if done.created else "user.updated"
    await publish(request, Event(kind, {"user_id": str(done.user.id)}))
    for channel_id in sorted(done.changed_channels):
        await publish(request, Event("channel.members_changed", {"channel_id": str(channel_id)}))
    return respond(request, answer)


@routes.route(
    "GET",
    "/invitations",
    summary="The open invitations: users who have not set their password yet (admins)",
    response=Page[InvitationOut],
    errors=[403],
)
async def list_invitations(request: web.Request) -> web.Response:
    """Each invited user's current link, oldest first, expired ones included."""
    auth.require_role(request, Role.ADMIN)
    now = utcnow()
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await open_invitations(session)).values()
    items = [InvitationOut.of(row, now) for row in sorted(rows, key=lambda r: r.created_at)]
    return respond(request, Page[InvitationOut](items=items, next_cursor=None))


@routes.route(
    "POST",
    "/users/{id}/invitation",
    summary="A new set-password link for an invited user; the old one stops (admins)",
    status=201,
    response=InvitationCreated,
    errors=[403, 404, 409],
)
async def reissue_invitation(request: web.Request) -> web.Response:
    """Only for users who have not set a password yet (409 otherwise)."""
    admin = auth.require_role(request, Role.ADMIN)
    user_id = path_id(request)
    now = utcnow()
    async with request.app[SESSIONS_KEY]() as session:
        user = await session.get(User, user_id, with_for_update=True)
        if user is None:
            raise not_found("no such user")
        if not await is_invited(session, user_id):
            raise ApiError(409, "conflict", "this user has set a password already")
        await replace_open(session, user_id, now)
        issued = issue(session, user_id, admin.id, now)
        await session.commit()
        answer = InvitationCreated(
            user=UserOut.of(user),
            invitation=InvitationOut.of(issued.invitation, now),
            token=issued.token,
            url=_url(request, issued.token),
        )
    return respond(request, answer)


_GONE = {
    LinkState.EXPIRED: "this invitation has expired; ask an admin for a new one",
    LinkState.USED: "this invitation has been used already",
    LinkState.REPLACED: "a newer invitation replaced this one",
    LinkState.INACTIVE: "this account is deactivated",
}


def link_error(state: LinkState) -> ApiError:
    """The error of a link that cannot be used: 404 unknown, else 410 with the reason."""
    if state is LinkState.UNKNOWN:
        return not_found("no such invitation")
    return ApiError(410, f"invitation_{state.value}", _GONE[state])


@routes.route(
    "POST",
    "/invitations/accept",
    summary="Set one's password with an invitation's token",
    body=InvitationAccept,
    response=UserOut,
    errors=[404, 410],
    public=True,
)
async def accept_invitation(request: web.Request) -> web.Response:
    """The link's token and a password (the account page's rules); the link is used up.
    Then sign in with POST /session."""
    check_origin(request, required=False)
    body = await parse_body(request, InvitationAccept)
    try:
        check_password(body.password)
    except UserError as err:
        raise validation_failed({"password": str(err)}) from err
    now = utcnow()
    async with request.app[READ_SESSIONS_KEY]() as session:
        found = await look_up(session, body.token, now)
    if found.state is not LinkState.VALID:
        raise link_error(found.state)
    new_hash = await asyncio.to_thread(hash_password, body.password)
    async with request.app[SESSIONS_KEY]() as session:
        done = await redeem(session, body.token, new_hash, now)
    if done.state is not LinkState.VALID or done.user is None:
        raise link_error(done.state)
    return respond(request, UserOut.of(done.user))
