"""The database's clock: one time source for every worker that shares a database.

Outbox leases, claims and retries are compared across processes and hosts. Each host's
clock may be off by minutes or hours; the database's clock is the one all of them see,
so deadlines stored in the outbox are taken from it (timeline/dispatcher.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

# clock_timestamp() is the time at the call, unlike now(), which is frozen at the start of
# the transaction: a claim made late in a long transaction must not be dated early.
_POSTGRESQL_NOW = text("SELECT clock_timestamp()")


async def database_now(executor: AsyncSession | AsyncConnection) -> datetime:
    """Now by the database's clock, timezone-aware UTC."""
    connection = await executor.connection() if isinstance(executor, AsyncSession) else executor
    if connection.dialect.name != "postgresql":
        # SQLite is a file opened by processes on one host: the process clock is the
        # database's clock, and reading it here saves a round trip.
        return datetime.now(UTC)
    value = await connection.scalar(_POSTGRESQL_NOW)
    if not isinstance(value, datetime):
        raise TypeError(f"clock_timestamp() returned {value!r}")
    return value.astimezone(UTC)
