"""Fan-out of timeline events to webhook subscriptions: one delivery row per
(subscription, event), written to the durable queue `webhook_deliveries`.

The source is the `timeline_events` table, written in the transaction of every change,
so an event committed just before a crash is still delivered; the bus is fire-and-forget
and only wakes the loop early. Event ids are UUIDv7 (timeline/ids.py), time-ordered per
process, but concurrent transactions commit out of order: an event with a smaller id
may become visible after a larger one was read. So each round reads from the newest id
seen (the cursor, kept in `webhook_cursor`) minus an overlap window judged by the time in
the ids, and the unique (subscription_id, event_id) index makes a re-read harmless. The
ids already handled inside the window are remembered in memory, so the overlap costs an
index-only scan of ids, not a re-read of payloads. A transaction that commits more than
the window after its event ids were drawn (or a host clock that far behind) would be
missed: the window is a minute, ingestion transactions take milliseconds.

A subscription gets the events recorded from its creation on, never history. Several
workers may fan out at once: they insert the same rows, and all but one are ignored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.webhook_kinds import ALL, wants
from inbox.webhook_models import (
    DeliveryStatus,
    WebhookCursor,
    WebhookDelivery,
    WebhookSubscription,
)
from timeline.clock import database_now
from timeline.db import SessionFactory
from timeline.ids import new_id
from timeline.models import TimelineEvent

logger = logging.getLogger(__name__)

CURSOR_NAME = "fanout"
DEFAULT_OVERLAP = timedelta(seconds=60)
# Ids are read in large pages (an index-only scan); whole events in smaller ones.
ID_PAGE = 5000
EVENT_PAGE = 500


def id_millis(event_id: uuid.UUID) -> int:
    """The Unix milliseconds in a UUIDv7."""
    return event_id.int >> 80


def floor_id(millis: int) -> uuid.UUID:
    """The smallest UUID of that millisecond: every UUIDv7 drawn then or later is larger."""
    return uuid.UUID(int=max(millis, 0) << 80)


def millis(at: datetime) -> int:
    """A datetime as Unix milliseconds."""
    return int(at.timestamp() * 1000)


def payload(delivery_id: uuid.UUID, event: Any) -> dict[str, Any]:
    """The JSON body a receiver gets for a timeline event (see the README)."""

    def text(value: uuid.UUID | None) -> str | None:
        return None if value is None else str(value)

    occurred_at: datetime = event.occurred_at
    return {
        "id": str(delivery_id),
        "event": event.kind,
        "event_id": str(event.id),
        "occurred_at": occurred_at.astimezone(UTC).isoformat(),
        "contact_id": str(event.contact_id),
        "conversation_id": text(event.conversation_id),
        "message_id": text(event.message_id),
        "data": event.data if isinstance(event.data, dict) else {},
    }


@dataclass(frozen=True, slots=True)
class _Subscription:
    id: uuid.UUID
    event_types: list[str]
    start_ms: int

    def takes(self, event_id: uuid.UUID, kind: str) -> bool:
        return id_millis(event_id) >= self.start_ms and wants(self.event_types, kind)


class WebhookFanout:
    """Turns new timeline events into queued deliveries (see the module docstring)."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        read_sessions: SessionFactory | None = None,
        overlap: timedelta = DEFAULT_OVERLAP,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._sessions = sessions
        self._read = read_sessions or sessions
        self.overlap_ms = int(overlap.total_seconds() * 1000)
        self._clock = clock  # None: the database's clock
        # Event ids already fanned out inside the overlap window (a cache: losing it on a
        # restart only means one full re-read, which the unique index makes harmless).
        self._seen: set[uuid.UUID] = set()

    async def _now(self, session: AsyncSession) -> datetime:
        return self._clock() if self._clock is not None else await database_now(session)

    async def run_once(self) -> int:
        """Queue deliveries for the events since the last round; returns how many new
        deliveries this round wrote."""
        async with self._read() as session:
            subscriptions = [
                _Subscription(row.id, list(row.event_types), millis(row.created_at))
                for row in await session.scalars(
                    select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
                )
            ]
            cursor = await session.get(WebhookCursor, CURSOR_NAME)
        if not subscriptions:
            return 0
        # Never read before the oldest subscription began: a first subscription on a
        # database with years of events starts at its own creation, not at the start.
        start = max(
            id_millis(cursor.last_event_id) if cursor is not None else 0,
            min(subscription.start_ms for subscription in subscriptions),
        )
        low = start - self.overlap_ms
        self._seen = {event_id for event_id in self._seen if id_millis(event_id) >= low}
        kinds = _kinds(subscriptions)
        after = floor_id(low)
        written = 0
        while True:
            async with self._read() as session:
                statement = select(TimelineEvent.id, TimelineEvent.kind).where(
                    TimelineEvent.id > after
                )
                if kinds is not None:
                    statement = statement.where(TimelineEvent.kind.in_(kinds))
                page = (
                    await session.execute(statement.order_by(TimelineEvent.id).limit(ID_PAGE))
                ).all()
            if not page:
                break
            fresh = [
                row.id
                for row in page
                if row.id not in self._seen
                and any(s.takes(row.id, row.kind) for s in subscriptions)
            ]
            for start_index in range(0, len(fresh), EVENT_PAGE):
                chunk = fresh[start_index : start_index + EVENT_PAGE]
                written += await self._queue(subscriptions, chunk)
                self._seen.update(chunk)
            await self._advance(page[-1].id)
            if len(page) < ID_PAGE:
                break
            after = page[-1].id
        return written

    async def _queue(
        self, subscriptions: Sequence[_Subscription], event_ids: list[uuid.UUID]
    ) -> int:
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            events = (
                await session.execute(
                    select(
                        TimelineEvent.id,
                        TimelineEvent.kind,
                        TimelineEvent.contact_id,
                        TimelineEvent.conversation_id,
                        TimelineEvent.message_id,
                        TimelineEvent.data,
                        TimelineEvent.occurred_at,
                    ).where(TimelineEvent.id.in_(event_ids))
                )
            ).all()
            rows: list[dict[str, Any]] = []
            for event in events:
                for subscription in subscriptions:
                    if not subscription.takes(event.id, event.kind):
                        continue
                    delivery_id = new_id()
                    rows.append(
                        {
                            "id": delivery_id,
                            "subscription_id": subscription.id,
                            "event_id": event.id,
                            "event_kind": event.kind,
                            "contact_id": event.contact_id,
                            "payload": payload(delivery_id, event),
                            "status": DeliveryStatus.QUEUED.value,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "retry_from": now,
                            "created_at": now,
                        }
                    )
            if not rows:
                return 0
            connection = await session.connection()
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            # A subscription deleted meanwhile fails the foreign key: the round is retried
            # and reads the subscriptions again.
            result = await session.execute(
                insert(WebhookDelivery)
                .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
                .returning(WebhookDelivery.id),
                rows,
            )
            return len(result.all())

    async def _advance(self, event_id: uuid.UUID) -> None:
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            connection = await session.connection()
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            statement = insert(WebhookCursor).values(
                name=CURSOR_NAME, last_event_id=event_id, updated_at=now
            )
            # Forward only: a worker with an older round never moves it back.
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["name"],
                    set_={
                        "last_event_id": statement.excluded.last_event_id,
                        "updated_at": statement.excluded.updated_at,
                    },
                    where=WebhookCursor.last_event_id < statement.excluded.last_event_id,
                )
            )


def _kinds(subscriptions: Sequence[_Subscription]) -> list[str] | None:
    """The kinds any subscription wants; None when one wants every kind."""
    kinds: set[str] = set()
    for subscription in subscriptions:
        if ALL in subscription.event_types:
            return None
        kinds.update(subscription.event_types)
    return sorted(kinds)
