"""Teams: create, rename, delete, and replace their members.

Functions that write leave the commit to the caller, so a change and what goes with it
(its bus event) are decided together; a duplicate name is settled by the unique index.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import ChannelTeam, Team, TeamMember
from inbox.membership import check_exist
from inbox.models import User


@dataclass(frozen=True, slots=True)
class TeamView:
    """A team with its members and the channels it works."""

    team: Team
    member_ids: list[uuid.UUID]
    channel_ids: list[uuid.UUID]


async def set_team_members(
    session: AsyncSession, team: Team, user_ids: Collection[uuid.UUID]
) -> None:
    """Replace a team's members (the caller has the team locked or new, and commits)."""
    await check_exist(session, "member_ids", User, user_ids)
    await session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    session.add_all(TeamMember(team_id=team.id, user_id=u) for u in set(user_ids))


async def team_views(session: AsyncSession, teams: Sequence[Team]) -> list[TeamView]:
    """Teams with their members and channels: two queries for the whole page."""
    ids = [team.id for team in teams]
    members: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    channels: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    if ids:
        for team_id, user_id in await session.execute(
            select(TeamMember.team_id, TeamMember.user_id)
            .where(TeamMember.team_id.in_(ids))
            .order_by(TeamMember.user_id)
        ):
            members[team_id].append(user_id)
        for team_id, channel_id in await session.execute(
            select(ChannelTeam.team_id, ChannelTeam.channel_id)
            .where(ChannelTeam.team_id.in_(ids))
            .order_by(ChannelTeam.channel_id)
        ):
            channels[team_id].append(channel_id)
    return [TeamView(team, members[team.id], channels[team.id]) for team in teams]
