"""Waking snoozed conversations when their time comes, exactly once across workers.

Each due conversation is claimed by one conditional UPDATE (still snoozed, still due):
however many workers run a round at once, one of them moves it to "open" and records
its "conversation.status_changed" event ({from: snoozed, to: open, by: null, reason:
snooze_ended}) in the same transaction; the others' UPDATE matches nothing. A customer
message wakes a snoozed conversation earlier (timeline/ingest_batch.py), and a person
may change it: either way it is no longer snoozed and the claim passes it by.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.conversation_changes import STATUS_CHANGED, updated_event
from timeline.due_rounds import DueRounds
from timeline.events import Event, publish_committed
from timeline.models import Conversation, ConversationStatus, TimelineEvent

logger = logging.getLogger(__name__)

SNOOZED = ConversationStatus.SNOOZED.value
OPEN = ConversationStatus.OPEN.value
REASON = "snooze_ended"


class SnoozeWaker(DueRounds):
    """Opens snoozed conversations whose `snoozed_until` has passed."""

    name = "snooze waker"

    async def run_once(self) -> int:
        """Wake up to a batch of due conversations, then publish; returns how many this
        worker woke."""
        events: list[Event] = []
        async with self._sessions() as session, session.begin():
            now = await self.now(session)
            due = (
                await session.scalars(
                    select(Conversation.id)
                    .where(*_due(now))
                    .order_by(Conversation.snoozed_until, Conversation.id)
                    .limit(self.batch_size)
                )
            ).all()
            for conversation_id in due:
                event = await self._wake(session, conversation_id, now)
                if event is not None:
                    events.append(event)
        await publish_committed(self._bus, events)
        return len(events)

    async def _wake(
        self, session: AsyncSession, conversation_id: uuid.UUID, now: datetime
    ) -> Event | None:
        woken = await session.scalar(
            update(Conversation)
            # The guard repeats the whole condition: a customer message or a person may
            # have changed it, or another worker woken it, since it was selected.
            .where(Conversation.id == conversation_id, *_due(now))
            .values(status=OPEN, snoozed_until=None)
            .returning(Conversation)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        if woken is None:
            return None
        data: dict[str, Any] = {"from": SNOOZED, "to": OPEN, "by": None, "reason": REASON}
        session.add(
            TimelineEvent(
                contact_id=woken.contact_id,
                conversation_id=woken.id,
                kind=STATUS_CHANGED,
                data=data,
                occurred_at=now,
            )
        )
        return updated_event(woken, [STATUS_CHANGED], None)


def _due(now: datetime) -> tuple[Any, ...]:
    return (Conversation.status == SNOOZED, Conversation.snoozed_until <= now)
