"""What connectors are handed to keep state: a durable cursor store and a health sink.

Cursors (IMAP UIDVALIDITY/UID per folder, Telegram update offset) are only advanced by
connectors after the messages they cover are committed, so a crash re-fetches rather
than skips; ingestion's idempotency makes the re-fetch harmless.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from connectors.types import ChannelHealth, ChannelId
from timeline.db import SessionFactory
from timeline.models import Channel, ChannelCursor, utcnow

logger = logging.getLogger(__name__)


class DatabaseCursorStore:
    """`connectors.base.CursorStore` backed by the channel_cursors table."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def load(self, channel_id: ChannelId, key: str) -> str | None:
        """The saved value, or None when the connector never saved one."""
        async with self._sessions() as session:
            cursor = await session.get(ChannelCursor, (uuid.UUID(channel_id), key))
            return None if cursor is None else cursor.value

    async def save(self, channel_id: ChannelId, key: str, value: str) -> None:
        """Insert or overwrite the value (one statement, safe under concurrency)."""
        async with self._sessions() as session, session.begin():
            connection = await session.connection()
            dialect = connection.dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            now = utcnow()
            statement = insert(ChannelCursor).values(
                channel_id=uuid.UUID(channel_id), key=key, value=value, updated_at=now
            )
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["channel_id", "key"],
                    set_={"value": statement.excluded.value, "updated_at": now},
                )
            )


async def record_health(
    sessions: SessionFactory, channel_id: ChannelId, health: ChannelHealth, reason: str | None
) -> None:
    """`connectors.base.HealthSink`: store a channel's health; a good sync stamps last_sync_at."""
    values: dict[str, object] = {"health": health.value, "health_reason": reason}
    if health is ChannelHealth.CONNECTED:
        values["last_sync_at"] = utcnow()
    async with sessions() as session, session.begin():
        await session.execute(
            update(Channel).where(Channel.id == uuid.UUID(channel_id)).values(**values)
        )
    if health in (ChannelHealth.BAD_CREDENTIALS, ChannelHealth.CONFIG_ERROR):
        logger.warning("channel %s needs attention: %s (%s)", channel_id, health.value, reason)
