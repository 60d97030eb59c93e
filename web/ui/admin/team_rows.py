"""What the team screen shows: every user with their channels, teams, capacity and
invitation; every team with its members; every channel (a handful of queries, whatever
the number of users: a team is tens or hundreds of people, not millions)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import ChannelMember, ChannelTeam, Team, TeamMember
from inbox.assignment import open_load
from inbox.invitations import open_invitations
from inbox.models import Role, User
from inbox.routing_models import AgentCapacity
from timeline.models import Channel


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A channel as the screen names it."""

    id: uuid.UUID
    name: str
    kind: str


@dataclass(slots=True)
class TeamRow:
    """A team, its members (by name order) and the channels it works."""

    id: uuid.UUID
    name: str
    description: str | None
    member_ids: list[uuid.UUID] = field(default_factory=list)
    channels: list[ChannelRef] = field(default_factory=list)


@dataclass(slots=True)
class AgentRow:
    """A user as the agents table shows them."""

    user: User
    direct: list[ChannelRef] = field(default_factory=list)
    through_teams: list[ChannelRef] = field(default_factory=list)
    teams: list[TeamRow] = field(default_factory=list)
    own_capacity: bool = False
    max_open: int | None = None
    open_conversations: int = 0
    invited_until: datetime | None = None  # their open link's end, while they are invited

    @property
    def label(self) -> str:
        return self.user.name or self.user.email

    @property
    def initial(self) -> str:
        return self.label[:1].upper()

    def invitation_expired(self, now: datetime) -> bool:
        return self.invited_until is not None and self.invited_until <= now

    def data(self) -> dict[str, Any]:
        """What the page's script needs to fill the agent dialog."""
        return {
            "id": str(self.user.id),
            "name": self.user.name or "",
            "email": self.user.email,
            "role": self.user.role,
            "active": self.user.is_active,
            "invited": self.invited_until is not None,
            "channel_ids": [str(c.id) for c in self.direct],
            "capacity": {"own": self.own_capacity, "max_open": self.max_open},
        }


@dataclass(frozen=True, slots=True)
class TeamScreen:
    """Everything the team screen lists."""

    agents: list[AgentRow]
    teams: list[TeamRow]
    channels: list[ChannelRef]

    def data(self) -> dict[str, Any]:
        return {
            "agents": [agent.data() for agent in self.agents],
            "teams": [
                {
                    "id": str(team.id),
                    "name": team.name,
                    "description": team.description or "",
                    "member_ids": [str(m) for m in team.member_ids],
                }
                for team in self.teams
            ],
        }


def _order(user: User) -> tuple[bool, str]:
    # Active people first, then by the name the table shows.
    return (not user.is_active, (user.name or user.email).casefold())


async def team_screen(session: AsyncSession) -> TeamScreen:
    """Load the screen's rows."""
    users = sorted((await session.scalars(select(User))).all(), key=_order)
    channels = {
        c.id: ChannelRef(c.id, c.name, c.kind)
        for c in await session.scalars(select(Channel).order_by(Channel.name))
    }
    teams = {
        t.id: TeamRow(t.id, t.name, t.description)
        for t in await session.scalars(select(Team).order_by(Team.name))
    }
    rows = {user.id: AgentRow(user) for user in users}
    for channel_id, user_id in await session.execute(
        select(ChannelMember.channel_id, ChannelMember.user_id)
    ):
        if channel_id in channels and user_id in rows:
            rows[user_id].direct.append(channels[channel_id])
    team_channels: dict[uuid.UUID, list[ChannelRef]] = defaultdict(list)
    for channel_id, team_id in await session.execute(
        select(ChannelTeam.channel_id, ChannelTeam.team_id)
    ):
        if channel_id in channels and team_id in teams:
            team_channels[team_id].append(channels[channel_id])
            teams[team_id].channels.append(channels[channel_id])
    for team_id, user_id in await session.execute(select(TeamMember.team_id, TeamMember.user_id)):
        if team_id in teams and user_id in rows:
            teams[team_id].member_ids.append(user_id)
            rows[user_id].teams.append(teams[team_id])
    for capacity in await session.scalars(select(AgentCapacity)):
        if (row := rows.get(capacity.user_id)) is not None:
            row.own_capacity, row.max_open = True, capacity.max_open
    for user_id, count in (await open_load(session, list(rows))).items():
        rows[user_id].open_conversations = count
    for user_id, invitation in (await open_invitations(session, list(rows))).items():
        rows[user_id].invited_until = invitation.expires_at
    position = {channel_id: n for n, channel_id in enumerate(channels)}  # by name
    for row in rows.values():
        direct = {c.id for c in row.direct}
        via = {c.id for team in row.teams for c in team_channels[team.id]} - direct
        row.direct.sort(key=lambda c: position[c.id])
        row.through_teams = sorted((channels[i] for i in via), key=lambda c: position[c.id])
        row.teams.sort(key=lambda t: t.name.casefold())
    order = {user.id: n for n, user in enumerate(users)}
    for team in teams.values():
        team.member_ids.sort(key=order.__getitem__)
        team.channels.sort(key=lambda c: position[c.id])
    return TeamScreen(list(rows.values()), list(teams.values()), list(channels.values()))


ROLES = (Role.AGENT, Role.MANAGER, Role.ADMIN)
