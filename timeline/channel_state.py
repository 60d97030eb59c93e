"""What connectors are handed to keep state: a durable cursor store and a health sink.

A change of health (or, while healthy, a sync stamped a while after the last one shown)
is announced as a `channel_health.changed` event, so the channels screen follows it live.

Cursors (IMAP UIDVALIDITY/UID per folder, Telegram update offset) are only advanced by
connectors after the messages they cover are committed, so a crash re-fetches rather
than skips; ingestion's idempotency makes the re-fetch harmless.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from connectors.types import ChannelHealth, ChannelId
from timeline.db import SessionFactory
from timeline.events import Event
from timeline.models import Channel, ChannelCursor, utcnow
from timeline.storable import clean_optional

logger = logging.getLogger(__name__)

HEALTH_CHANGED = "channel_health.changed"
# A healthy connector stamps every sync (IMAP every few seconds): the screen hears of a
# later one only when the last sync it was told of is this old.
SYNC_NEWS_AFTER = timedelta(minutes=1)


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


def health_event(
    channel_id: uuid.UUID, health: str, reason: str | None, last_sync_at: datetime | None
) -> Event:
    """The event announcing a channel's health as it now stands."""
    return Event(
        HEALTH_CHANGED,
        {
            "channel_id": str(channel_id),
            "health": health,
            "health_reason": reason,
            "last_sync_at": None if last_sync_at is None else last_sync_at.isoformat(),
        },
    )


async def record_health(
    sessions: SessionFactory, channel_id: ChannelId, health: ChannelHealth, reason: str | None
) -> Event | None:
    """`connectors.base.HealthSink`: store a channel's health; a good sync stamps last_sync_at.

    Returns the event to publish once committed, None when nothing worth telling changed.
    """
    channel_uuid = uuid.UUID(channel_id)
    reason = clean_optional(reason)  # a server's own words: NUL would fail on PostgreSQL
    values: dict[str, object] = {"health": health.value, "health_reason": reason}
    now = utcnow()
    if health is ChannelHealth.CONNECTED:
        values["last_sync_at"] = now
    async with sessions() as session, session.begin():
        # Locked: the outbox may be writing the channel's health this moment, and "no news"
        # must be judged against what it wrote, not against what stood before it.
        before = (
            await session.execute(
                select(Channel.health, Channel.health_reason, Channel.last_sync_at)
                .where(Channel.id == channel_uuid)
                .with_for_update()
            )
        ).one_or_none()
        if before is None:
            return None  # deleted meanwhile
        await session.execute(update(Channel).where(Channel.id == channel_uuid).values(**values))
    if health in (ChannelHealth.BAD_CREDENTIALS, ChannelHealth.CONFIG_ERROR):
        logger.warning("channel %s needs attention: %s (%s)", channel_id, health.value, reason)
    last_sync_at = now if health is ChannelHealth.CONNECTED else before.last_sync_at
    changed = (before.health, before.health_reason) != (health.value, reason)
    stale = health is ChannelHealth.CONNECTED and (
        before.last_sync_at is None or before.last_sync_at <= now - SYNC_NEWS_AFTER
    )
    if not (changed or stale):
        return None
    return health_event(channel_uuid, health.value, reason, last_sync_at)
