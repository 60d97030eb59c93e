"""Channel membership (direct and through teams) and team members, on SQLite and
PostgreSQL; concurrent replacements of one channel's members end whole, never mixed."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from inbox.account_models import Team
from inbox.membership import (
    UnknownIds,
    channel_membership,
    set_channel_membership,
    user_channels,
    visible_channels,
)
from inbox.models import Role, User
from inbox.teams import set_team_members, team_views
from timeline.db import SessionFactory
from timeline.models import Channel


async def add_users(sessions: SessionFactory, n: int) -> list[User]:
    users = [
        User(email=f"{uuid.uuid4().hex[:8]}@example.com", role=Role.AGENT.value, password_hash="x")
        for _ in range(n)
    ]
    async with sessions() as session, session.begin():
        session.add_all(users)
    return users


async def add_channels(sessions: SessionFactory, *names: str) -> list[Channel]:
    channels = [Channel(kind="webform", name=n, config_encrypted="-") for n in names]
    async with sessions() as session, session.begin():
        session.add_all(channels)
    return channels


async def test_an_agent_sees_direct_and_team_channels(sessions: SessionFactory) -> None:
    ann, bob = await add_users(sessions, 2)
    sales, support, billing = await add_channels(sessions, "Sales", "Support", "Billing")
    async with sessions() as session, session.begin():
        team = Team(name="Second line")
        session.add(team)
        await session.flush()
        await set_team_members(session, team, [ann.id, ann.id])  # repeats are one
        assert await set_channel_membership(session, sales.id, [ann.id], [])
        assert await set_channel_membership(session, support.id, [ann.id], [team.id])
        assert await set_channel_membership(session, billing.id, [bob.id], [team.id])
        assert not await set_channel_membership(session, uuid.uuid4(), [ann.id], [])
    async with sessions() as session:
        assert await visible_channels(session, ann.id) == {sales.id, support.id, billing.id}
        assert await visible_channels(session, bob.id) == {billing.id}
        assert await visible_channels(session, uuid.uuid4()) == frozenset()
        listed = [
            (c.channel.name, c.direct, c.team_ids) for c in await user_channels(session, ann.id)
        ]
        assert listed == [
            ("Sales", True, []),
            ("Support", True, [team.id]),
            ("Billing", False, [team.id]),
        ]
        membership = await channel_membership(session, billing.id)
        assert (membership.user_ids, membership.team_ids) == ([bob.id], [team.id])
        [view] = await team_views(session, [team])
        assert view.member_ids == [ann.id]
        assert sorted(view.channel_ids) == sorted([support.id, billing.id])

    # Replacing keeps nothing of before; unknown ids change nothing.
    async with sessions() as session, session.begin():
        await set_channel_membership(session, billing.id, [], [])
    async with sessions() as session:
        assert await visible_channels(session, ann.id) == {sales.id, support.id}
        assert await visible_channels(session, bob.id) == frozenset()
    ghost = uuid.uuid4()
    with pytest.raises(UnknownIds) as raised:
        async with sessions() as session, session.begin():
            await set_channel_membership(session, sales.id, [bob.id, ghost], [])
    assert (raised.value.field, raised.value.ids) == ("user_ids", [ghost])
    async with sessions() as session:
        assert (await channel_membership(session, sales.id)).user_ids == [ann.id]


async def test_concurrent_replacements_each_end_whole(
    sessions: SessionFactory, database_url: str
) -> None:
    users = await add_users(sessions, 6)
    [channel] = await add_channels(sessions, "Busy")
    sets = [[u.id for u in users[:3]], [u.id for u in users[3:]], [users[0].id, users[5].id]]

    async def replace(ids: list[uuid.UUID]) -> None:
        async with sessions() as session, session.begin():
            await set_channel_membership(session, channel.id, ids, [])

    for _ in range(3):
        await asyncio.gather(*(replace(ids) for ids in sets))
        async with sessions() as session:
            final = (await channel_membership(session, channel.id)).user_ids
        assert sorted(final) in [sorted(ids) for ids in sets], database_url
