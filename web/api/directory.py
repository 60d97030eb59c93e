"""Who works where, for assigning and mentioning (issue 10).

The composer's @mention picker and the conversation header's assign menu list the
people a conversation on a channel may be given to or may mention: the active users
who can see that channel (admins and managers see every channel; agents the channels
they are members of, directly or through a team), the same rule `inbox/mentions.py`
and an agent assignee are checked against. Any signed-in user who sees the channel may
ask; for a channel they cannot see the answer is 404, so nothing about it leaks.
"""

from __future__ import annotations

import uuid

from aiohttp import web
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import ChannelMember, ChannelTeam, Team, TeamMember
from inbox.models import Role, User
from inbox.presence import presence_of
from timeline.models import Channel
from web import auth
from web.api.directory_schemas import (
    DIRECTORY_MAX,
    DirectoryQuery,
    DirectoryTeamOut,
    DirectoryTeamsOut,
    DirectoryUserOut,
    DirectoryUsersOut,
)
from web.errors import not_found
from web.keys import READ_SESSIONS_KEY
from web.openapi import ApiRoutes, parse_query, respond

routes = ApiRoutes("directory")

STAFF = (Role.ADMIN.value, Role.MANAGER.value)


@routes.route(
    "GET",
    "/directory/users",
    summary="The active users who can see a channel, with their presence",
    query=DirectoryQuery,
    response=DirectoryUsersOut,
    errors=[404],
)
async def channel_users(request: web.Request) -> web.Response:
    """Admins, managers and the channel's agents (members directly or through a team),
    active ones only, by name; `presence` is online, away or offline. 404 for a channel
    you cannot see."""
    query = parse_query(request, DirectoryQuery)
    async with request.app[READ_SESSIONS_KEY]() as session:
        await _visible_channel(session, request, query.channel_id)
        statement = _users_of(query.channel_id)
        if query.q is not None and (needle := query.q.strip().lower()):
            pattern = f"%{_escaped(needle)}%"
            statement = statement.where(
                or_(
                    func.lower(User.name).like(pattern, escape="\\"),
                    func.lower(User.email).like(pattern, escape="\\"),
                )
            )
        users = list(await session.scalars(statement.limit(DIRECTORY_MAX)))
        presence = await presence_of(session, [user.id for user in users])
    items = [
        DirectoryUserOut(
            id=user.id,
            name=user.name or user.email,
            email=user.email,
            role=Role(user.role),
            presence=presence[user.id],
        )
        for user in users
    ]
    items.sort(key=lambda item: (item.name.casefold(), str(item.id)))
    return respond(request, DirectoryUsersOut(items=items))


@routes.route(
    "GET",
    "/directory/teams",
    summary="The teams a conversation on a channel may be handed to",
    query=DirectoryQuery,
    response=DirectoryTeamsOut,
    errors=[404],
)
async def channel_teams(request: web.Request) -> web.Response:
    """Every team, those that work the channel first (`works_channel`), then by name;
    `q` matches a substring of the name. 404 for a channel you cannot see."""
    query = parse_query(request, DirectoryQuery)
    async with request.app[READ_SESSIONS_KEY]() as session:
        await _visible_channel(session, request, query.channel_id)
        working = set(
            await session.scalars(
                select(ChannelTeam.team_id).where(ChannelTeam.channel_id == query.channel_id)
            )
        )
        statement = select(Team).order_by(Team.name, Team.id).limit(DIRECTORY_MAX)
        if query.q is not None and (needle := query.q.strip().lower()):
            statement = statement.where(
                func.lower(Team.name).like(f"%{_escaped(needle)}%", escape="\\")
            )
        teams = list(await session.scalars(statement))
    items = [DirectoryTeamOut(id=t.id, name=t.name, works_channel=t.id in working) for t in teams]
    items.sort(key=lambda item: not item.works_channel)  # stable: by name within each
    return respond(request, DirectoryTeamsOut(items=items))


async def _visible_channel(
    session: AsyncSession, request: web.Request, channel_id: uuid.UUID
) -> None:
    """404 unless the channel exists and the requester sees it."""
    visible = auth.visible_channel_ids(request)
    if (visible is not None and channel_id not in visible) or await session.get(
        Channel, channel_id
    ) is None:
        raise not_found("no such channel")


def _users_of(channel_id: uuid.UUID) -> Select[User]:
    """Active users who see the channel: staff, and its members directly or via a team."""
    direct = select(ChannelMember.user_id).where(ChannelMember.channel_id == channel_id)
    through_teams = (
        select(TeamMember.user_id)
        .join(ChannelTeam, ChannelTeam.team_id == TeamMember.team_id)
        .where(ChannelTeam.channel_id == channel_id)
    )
    return select(User).where(
        User.is_active.is_(True),
        or_(User.role.in_(STAFF), User.id.in_(direct), User.id.in_(through_teams)),
    )


def _escaped(text: str) -> str:
    """`text` for a LIKE pattern: its wildcards taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
