"""Who works which channel: users directly, and teams for all their members at once.

An agent sees and acts on the conversations (and their contacts) of the channels they
are a member of, directly or through one of their teams; admins and managers see every
channel whatever their memberships (web/auth.py decides by role).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import CompoundSelect, delete, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import ChannelMember, ChannelTeam, Team, TeamMember
from inbox.models import User
from timeline.models import Channel


class UnknownIds(ValueError):
    """Some ids name nothing; `field` is the request field they came from."""

    def __init__(self, field: str, ids: Collection[uuid.UUID]) -> None:
        self.field = field
        self.ids = sorted(ids)
        super().__init__("unknown ids: " + ", ".join(str(i) for i in self.ids))


@dataclass(frozen=True, slots=True)
class Membership:
    """A channel's members: users directly, and teams."""

    user_ids: list[uuid.UUID]
    team_ids: list[uuid.UUID]


@dataclass(frozen=True, slots=True)
class UserChannel:
    """A channel a user works, and how: directly and/or through these teams."""

    channel: Channel
    direct: bool
    team_ids: list[uuid.UUID]


def _channels_of(user_id: uuid.UUID) -> CompoundSelect[uuid.UUID]:
    direct = select(ChannelMember.channel_id).where(ChannelMember.user_id == user_id)
    through_teams = (
        select(ChannelTeam.channel_id)
        .join(TeamMember, TeamMember.team_id == ChannelTeam.team_id)
        .where(TeamMember.user_id == user_id)
    )
    return union(direct, through_teams)


async def visible_channels(session: AsyncSession, user_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """The channels a user is a member of, directly or through a team (one query)."""
    return frozenset((await session.scalars(_channels_of(user_id))).all())


async def channel_membership(session: AsyncSession, channel_id: uuid.UUID) -> Membership:
    """The users and teams that are members of a channel, sorted by id."""
    users = await session.scalars(
        select(ChannelMember.user_id)
        .where(ChannelMember.channel_id == channel_id)
        .order_by(ChannelMember.user_id)
    )
    teams = await session.scalars(
        select(ChannelTeam.team_id)
        .where(ChannelTeam.channel_id == channel_id)
        .order_by(ChannelTeam.team_id)
    )
    return Membership(list(users), list(teams))


async def check_exist(
    session: AsyncSession, field: str, model: type[User] | type[Team], ids: Collection[uuid.UUID]
) -> None:
    """UnknownIds naming `field` when any of `ids` is not a row of `model`."""
    wanted = set(ids)
    if not wanted:
        return
    found = set(await session.scalars(select(model.id).where(model.id.in_(wanted))))
    if missing := wanted - found:
        raise UnknownIds(field, missing)


async def set_channel_membership(
    session: AsyncSession,
    channel_id: uuid.UUID,
    user_ids: Collection[uuid.UUID],
    team_ids: Collection[uuid.UUID],
) -> bool:
    """Replace a channel's members (the caller commits); False when the channel is gone.

    The channel row is locked first, so two concurrent replacements run one after the
    other and the last one wins whole, instead of both inserting into one emptied set.
    """
    if await session.get(Channel, channel_id, with_for_update=True) is None:
        return False
    await check_exist(session, "user_ids", User, user_ids)
    await check_exist(session, "team_ids", Team, team_ids)
    await session.execute(delete(ChannelMember).where(ChannelMember.channel_id == channel_id))
    await session.execute(delete(ChannelTeam).where(ChannelTeam.channel_id == channel_id))
    session.add_all(ChannelMember(channel_id=channel_id, user_id=u) for u in set(user_ids))
    session.add_all(ChannelTeam(channel_id=channel_id, team_id=t) for t in set(team_ids))
    return True


async def user_channels(session: AsyncSession, user_id: uuid.UUID) -> list[UserChannel]:
    """The channels a user works, oldest first, each with how the user belongs to it."""
    direct = set(
        await session.scalars(
            select(ChannelMember.channel_id).where(ChannelMember.user_id == user_id)
        )
    )
    via: dict[uuid.UUID, list[uuid.UUID]] = {}
    rows = await session.execute(
        select(ChannelTeam.channel_id, ChannelTeam.team_id)
        .join(TeamMember, TeamMember.team_id == ChannelTeam.team_id)
        .where(TeamMember.user_id == user_id)
        .order_by(ChannelTeam.team_id)
    )
    for channel_id, team_id in rows:
        via.setdefault(channel_id, []).append(team_id)
    ids = direct | via.keys()
    if not ids:
        return []
    channels = await session.scalars(
        select(Channel).where(Channel.id.in_(ids)).order_by(Channel.created_at, Channel.id)
    )
    return [UserChannel(c, c.id in direct, via.get(c.id, [])) for c in channels]
