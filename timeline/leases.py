"""Per-channel leases: which process runs a channel's receiving side, and until when.

A lease is one row (channel_leases) with a holder and an expiry taken from the
database's clock (timeline/clock.py), so hosts with skewed clocks agree. Taking and
renewing are the same single statement, an upsert that only wins when the row is free,
expired, or already ours; two processes racing for a free lease cannot both win. A
holder that dies stops renewing and another process takes the channel over once the
lease has expired.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, or_
from sqlalchemy.dialects import postgresql, sqlite

from timeline.clock import database_now
from timeline.db import SessionFactory
from timeline.models import ChannelLease


async def acquire(
    sessions: SessionFactory, channel_id: uuid.UUID, holder: str, ttl: timedelta
) -> bool:
    """Take or renew the channel's lease for `ttl`; False when another holder has it."""
    async with sessions() as session, session.begin():
        connection = await session.connection()
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        now = await database_now(session)
        statement = insert(ChannelLease).values(
            channel_id=channel_id, holder=holder, expires_at=now + ttl
        )
        upsert = statement.on_conflict_do_update(
            index_elements=["channel_id"],
            set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
            where=or_(ChannelLease.holder == holder, ChannelLease.expires_at <= now),
        ).returning(ChannelLease.holder)
        # A lost conflict updates nothing and returns no row; a deleted channel's foreign
        # key makes the insert fail, which the caller treats like any database error.
        return (await session.execute(upsert)).first() is not None


async def release(sessions: SessionFactory, channel_id: uuid.UUID, holder: str) -> None:
    """Give the lease up at once (a clean stop), so another process need not wait it out."""
    async with sessions() as session, session.begin():
        await session.execute(
            delete(ChannelLease).where(
                ChannelLease.channel_id == channel_id, ChannelLease.holder == holder
            )
        )


async def holder_of(sessions: SessionFactory, channel_id: uuid.UUID) -> str | None:
    """Who holds an unexpired lease on the channel, if anyone."""
    async with sessions() as session:
        lease = await session.get(ChannelLease, channel_id)
        if lease is None or lease.expires_at <= await database_now(session):
            return None
        return lease.holder
