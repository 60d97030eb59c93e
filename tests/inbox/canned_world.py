"""A small world for canned-response and mention tests: users of each role, a team, a
channel the team works, and a conversation with a named contact (written with the ORM)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from inbox.account_models import ChannelMember, ChannelTeam, Team, TeamMember
from inbox.models import Role, User
from timeline.db import SessionFactory
from timeline.models import Channel, Contact, Conversation, Identity


@dataclass(frozen=True)
class World:
    admin: User
    manager: User
    member: User  # an agent in the team, which works the channel
    direct: User  # an agent who is a direct member of the channel, in no team
    outsider: User  # an agent of another channel
    retired: User  # a deactivated agent who worked the channel
    team: Team
    channel: Channel
    conversation: Conversation


def _user(role: Role, name: str | None, *, active: bool = True) -> User:
    return User(
        email=f"{role.value}-{uuid.uuid4().hex[:8]}@example.com",
        name=name,
        role=role.value,
        password_hash="x",
        is_active=active,
    )


async def make_world(sessions: SessionFactory, contact_name: str | None = "Ann Lee") -> World:
    admin = _user(Role.ADMIN, "Ada Admin")
    manager = _user(Role.MANAGER, "Max Manager")
    member = _user(Role.AGENT, "Bob Stone")
    direct = _user(Role.AGENT, None)
    outsider = _user(Role.AGENT, "Olga Out")
    retired = _user(Role.AGENT, "Rita Retired", active=False)
    team = Team(name=f"first line {uuid.uuid4().hex[:6]}")
    channel = Channel(kind="webform", name="Shop form", config_encrypted="-")
    other = Channel(kind="webform", name="Other form", config_encrypted="-")
    contact = Contact(name=contact_name)
    async with sessions() as session, session.begin():
        session.add_all([admin, manager, member, direct, outsider, retired, team, channel])
        session.add_all([other, contact])
        await session.flush()
        session.add_all(
            [
                TeamMember(team_id=team.id, user_id=member.id),
                ChannelTeam(channel_id=channel.id, team_id=team.id),
                ChannelMember(channel_id=channel.id, user_id=direct.id),
                ChannelMember(channel_id=channel.id, user_id=retired.id),
                ChannelMember(channel_id=other.id, user_id=outsider.id),
                Identity(contact_id=contact.id, kind="email", value="ann@example.com"),
            ]
        )
        conversation = Conversation(contact_id=contact.id, channel_id=channel.id)
        session.add(conversation)
    return World(admin, manager, member, direct, outsider, retired, team, channel, conversation)
