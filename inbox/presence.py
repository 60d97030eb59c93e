"""Agent presence: who is online or away, across every web process (issue 9).

The websocket layer records each open connection (`connect`), refreshes the connections
it holds on a heartbeat (`heartbeat`) and removes them when they close (`disconnect`).
Everything else reads `presence_of`: routing assigns only to agents who are online, the
UI shows who is around.

A user is *online* when at least one fresh connection says so, *away* when all their
fresh connections say away, and offline otherwise. "Fresh" means seen within `ttl`
(default `PRESENCE_TTL`) by the database's clock, so rows left by a process that died
stop counting on their own; `purge_stale` deletes them. Availability is the user's
choice, not a tab's: `set_status` changes every connection of the user.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.presence_models import PresenceConnection
from timeline.clock import database_now

# A web process refreshes its connections well within this (web/realtime); a process
# that stops refreshing is taken for dead after it.
PRESENCE_TTL = timedelta(seconds=90)
PROCESS_NAME_MAX = 200


class Availability(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"  # never stored: what having no fresh connection means


STORED = frozenset({Availability.ONLINE.value, Availability.AWAY.value})


def _checked(status: str) -> str:
    if status not in STORED:
        raise ValueError(f"status must be one of {sorted(STORED)}, not {status!r}")
    return status


async def connect(
    session: AsyncSession,
    *,
    connection_id: uuid.UUID,
    user_id: uuid.UUID,
    status: str,
    process: str,
) -> None:
    """Record an open connection (the caller commits)."""
    now = await database_now(session)
    session.add(
        PresenceConnection(
            id=connection_id,
            user_id=user_id,
            status=_checked(status),
            process=process[:PROCESS_NAME_MAX],
            connected_at=now,
            seen_at=now,
        )
    )
    await session.flush()


async def set_status(session: AsyncSession, user_id: uuid.UUID, status: str) -> int:
    """Set the availability of every connection of `user_id`; the number changed."""
    now = await database_now(session)
    result = await session.execute(
        update(PresenceConnection)
        .where(PresenceConnection.user_id == user_id)
        .values(status=_checked(status), seen_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def heartbeat(session: AsyncSession, connection_ids: Collection[uuid.UUID]) -> int:
    """Refresh connections still open; the number found (a purged one is not revived)."""
    if not connection_ids:
        return 0
    now = await database_now(session)
    result = await session.execute(
        update(PresenceConnection)
        .where(PresenceConnection.id.in_(list(connection_ids)))
        .values(seen_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def disconnect(session: AsyncSession, connection_id: uuid.UUID) -> None:
    await session.execute(delete(PresenceConnection).where(PresenceConnection.id == connection_id))


async def presence_of(
    session: AsyncSession,
    user_ids: Collection[uuid.UUID] | None = None,
    *,
    ttl: timedelta = PRESENCE_TTL,
    now: datetime | None = None,
) -> dict[uuid.UUID, Availability]:
    """Availability of `user_ids` (every user with a fresh connection when None).

    Users with no fresh connection are offline: they are in the answer only when asked
    for by id.
    """
    at = now if now is not None else await database_now(session)
    # "online" sorts after "away": max() is online when any fresh connection is online.
    query = (
        select(PresenceConnection.user_id, func.max(PresenceConnection.status))
        .where(PresenceConnection.seen_at > at - ttl)
        .group_by(PresenceConnection.user_id)
    )
    if user_ids is not None:
        if not user_ids:
            return {}
        query = query.where(PresenceConnection.user_id.in_(list(user_ids)))
    found = {user_id: Availability(status) for user_id, status in await session.execute(query)}
    if user_ids is None:
        return found
    return {user_id: found.get(user_id, Availability.OFFLINE) for user_id in user_ids}


async def online_agents(
    session: AsyncSession, user_ids: Collection[uuid.UUID] | None = None
) -> set[uuid.UUID]:
    """The users (of `user_ids`, or all) who are online now: whom routing may assign."""
    return {
        user_id
        for user_id, status in (await presence_of(session, user_ids)).items()
        if status is Availability.ONLINE
    }


async def purge_stale(session: AsyncSession, *, ttl: timedelta = PRESENCE_TTL) -> int:
    """Delete connections not seen within `ttl` (left by processes that died)."""
    now = await database_now(session)
    result = await session.execute(
        delete(PresenceConnection).where(PresenceConnection.seen_at <= now - ttl)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def expire_stale(
    session: AsyncSession, *, ttl: timedelta = PRESENCE_TTL, now: datetime | None = None
) -> set[uuid.UUID]:
    """Delete connections not seen within `ttl`; the users this leaves offline (whose
    going offline nobody announced: their process died)."""
    at = now if now is not None else await database_now(session)
    stale = PresenceConnection.seen_at <= at - ttl
    users = set(await session.scalars(select(PresenceConnection.user_id).where(stale).distinct()))
    if not users:
        return set()
    await session.execute(delete(PresenceConnection).where(stale))
    still = await presence_of(session, users, ttl=ttl, now=at)
    return {user_id for user_id, status in still.items() if status is Availability.OFFLINE}
