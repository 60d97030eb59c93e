"""Presence: online when any fresh connection says so, away when all say away, offline
with none; rows of a process that died stop counting after the TTL and are expired."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from inbox import presence
from inbox.models import User
from inbox.presence import Availability
from inbox.presence_models import PresenceConnection
from timeline.clock import database_now
from timeline.db import SessionFactory


async def users(sessions: SessionFactory, n: int) -> list[uuid.UUID]:
    made = [
        User(email=f"p{i}-{uuid.uuid4().hex[:6]}@example.com", role="agent", password_hash="x")
        for i in range(n)
    ]
    async with sessions() as session:
        session.add_all(made)
        await session.commit()
    return [user.id for user in made]


async def test_availability_across_connections_and_dead_processes(
    sessions: SessionFactory,
) -> None:
    ann, bob, cy = await users(sessions, 3)
    tab_1, tab_2, bobs, dead = (uuid.uuid4() for _ in range(4))
    async with sessions() as session:
        for connection_id, user_id, process in [
            (tab_1, ann, "web-1"),
            (tab_2, ann, "web-2"),
            (bobs, bob, "web-1"),
            (dead, cy, "web-3"),
        ]:
            await presence.connect(
                session,
                connection_id=connection_id,
                user_id=user_id,
                status="online",
                process=process,
            )
        with pytest.raises(ValueError):
            await presence.set_status(session, bob, "offline")  # never stored
        await session.commit()

        assert await presence.set_status(session, ann, "away") == 2  # both tabs
        await presence.set_status(session, bob, "away")
        await presence.set_status(session, bob, "online")
        await session.commit()
        stranger = uuid.uuid4()
        assert await presence.presence_of(session, [ann, bob, cy, stranger]) == {
            ann: Availability.AWAY,
            bob: Availability.ONLINE,
            cy: Availability.ONLINE,
            stranger: Availability.OFFLINE,
        }
        assert await presence.online_agents(session) == {bob, cy}
        # Seen from two minutes on, nobody has refreshed: everyone is offline.
        later = await database_now(session) + timedelta(minutes=2)
        assert await presence.presence_of(session, now=later) == {}

        # web-3 died two minutes ago: its row was last refreshed then.
        await session.execute(
            update(PresenceConnection)
            .where(PresenceConnection.id == dead)
            .values(seen_at=later - timedelta(minutes=4))
        )
        assert await presence.heartbeat(session, [tab_1, tab_2, bobs, dead, uuid.uuid4()]) == 4
        await session.execute(
            update(PresenceConnection)
            .where(PresenceConnection.id == dead)
            .values(seen_at=later - timedelta(minutes=4))
        )
        await presence.disconnect(session, tab_1)
        await session.commit()
        assert await presence.presence_of(session, [cy]) == {cy: Availability.OFFLINE}
        assert await presence.online_agents(session) == {bob}
        # Expiring removes the dead row and names whom it left offline; Ann's other tab
        # keeps her away, not offline.
        assert await presence.expire_stale(session) == {cy}
        assert await presence.expire_stale(session) == set()
        await session.commit()
        assert await presence.presence_of(session) == {
            ann: Availability.AWAY,
            bob: Availability.ONLINE,
        }
        assert await presence.purge_stale(session) == 0
