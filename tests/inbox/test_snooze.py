"""Snoozed conversations open when their time comes, exactly once however many workers run;
a customer message wakes (or reopens) a conversation before that."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.types import IdentityKind
from inbox.conversation_changes import Changes, apply_changes
from inbox.snooze import SnoozeWaker
from tests.timeline.test_ingest import inbound
from timeline.db import SessionFactory, create_engine, session_factory
from timeline.events import InProcessBus
from timeline.ingest import Ingestor
from timeline.models import Conversation, ConversationStatus, TimelineEvent

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PHONE = "+14155550100"


class Clock:
    """A settable clock for the waker."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def conversation_from(ingestor: Ingestor, channel_id: uuid.UUID, n: int) -> uuid.UUID:
    """A new conversation of its own contact, opened by an inbound SMS."""
    result = await ingestor.ingest(
        inbound(channel_id, f"first-{n}", IdentityKind.PHONE, f"+1415555{n:04d}", at=T0)
    )
    assert result.conversation_id is not None
    return result.conversation_id


async def snooze(sessions: SessionFactory, conversation_id: uuid.UUID, until: datetime) -> None:
    async with sessions() as session, session.begin():
        await apply_changes(
            session,
            conversation_id,
            Changes(status=ConversationStatus.SNOOZED, snoozed_until=until),
            actor_id=None,
        )


async def status_events(
    sessions: SessionFactory, conversation_id: uuid.UUID
) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(TimelineEvent.data)
            .where(
                TimelineEvent.conversation_id == conversation_id,
                TimelineEvent.kind == "conversation.status_changed",
            )
            .order_by(TimelineEvent.id)
        )
        return list(rows)


async def test_a_snoozed_conversation_opens_when_its_time_comes_once(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    conv = await conversation_from(ingestor, channel_id, 1)
    until = datetime.now(UTC) + timedelta(hours=1)
    await snooze(sessions, conv, until)
    bus = InProcessBus()
    clock = Clock(until - timedelta(seconds=1))
    waker = SnoozeWaker(sessions, bus, clock=clock)
    async with bus.subscribe() as published:
        assert await waker.run_once() == 0  # not yet
        clock.now = until
        assert await waker.run_once() == 1
        assert await waker.run_once() == 0  # once
        event = await published.get(timeout=5)
    assert event is not None and event.type == "conversation.updated"
    assert event.data["conversation_id"] == str(conv) and event.data["status"] == "open"
    async with sessions() as session:
        stored = await session.get(Conversation, conv)
    assert stored is not None and (stored.status, stored.snoozed_until) == ("open", None)
    assert (await status_events(sessions, conv))[-1] == {
        "from": "snoozed",
        "to": "open",
        "by": None,
        "reason": "snooze_ended",
    }


async def test_a_customer_message_wakes_or_reopens_before_the_waker(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    snoozed = await conversation_from(ingestor, channel_id, 2)
    resolved = await conversation_from(ingestor, channel_id, 3)
    pending = await conversation_from(ingestor, channel_id, 4)
    until = datetime.now(UTC) + timedelta(hours=1)
    await snooze(sessions, snoozed, until)
    for conversation_id, status in ((resolved, "resolved"), (pending, "pending")):
        async with sessions() as session, session.begin():
            await apply_changes(
                session,
                conversation_id,
                Changes(status=ConversationStatus(status)),
                actor_id=None,
            )
    for n, conversation_id in ((2, snoozed), (3, resolved), (4, pending)):
        again = await ingestor.ingest(
            inbound(channel_id, f"again-{n}", IdentityKind.PHONE, f"+1415555{n:04d}")
        )
        assert again.conversation_id == conversation_id
    async with sessions() as session:
        rows = {
            c.id: c
            for c in await session.scalars(
                select(Conversation).where(Conversation.id.in_([snoozed, resolved, pending]))
            )
        }
    assert {c.status for c in rows.values()} == {"open"}
    assert rows[snoozed].snoozed_until is None and rows[snoozed].reopen_count == 0
    assert rows[resolved].reopen_count == 1 and rows[resolved].resolved_at is None
    assert rows[pending].reopen_count == 0
    # Nothing is left for the waker when the snooze would have ended.
    waker = SnoozeWaker(sessions, InProcessBus(), clock=Clock(until + timedelta(days=1)))
    assert await waker.run_once() == 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_concurrent_wakers_wake_each_conversation_once(
    database_url: str, sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    until = datetime.now(UTC) + timedelta(hours=1)
    conversations = [await conversation_from(ingestor, channel_id, n) for n in range(10, 30)]
    for conversation_id in conversations:
        await snooze(sessions, conversation_id, until)
    # Separate engines, like separate worker processes; small batches so they overlap.
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        wakers = [
            SnoozeWaker(session_factory(e), InProcessBus(), batch_size=4, clock=Clock(until))
            for e in engines
        ]

        async def drain(waker: SnoozeWaker) -> int:
            total = 0
            while (woken := await waker.run_once()) > 0:
                total += woken
            return total

        counts = await asyncio.gather(*(drain(w) for w in wakers))
    finally:
        for e in engines:
            await e.dispose()
    assert sum(counts) == len(conversations)
    async with sessions() as session:
        wake_events = await session.scalar(
            select(func.count())
            .select_from(TimelineEvent)
            .where(
                TimelineEvent.kind == "conversation.status_changed",
                TimelineEvent.data["reason"].as_string() == "snooze_ended",
            )
        )
        still = await session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.status == "snoozed")
        )
    assert (wake_events, still) == (len(conversations), 0)


async def test_the_loop_wakes_and_stops(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    conv = await conversation_from(ingestor, channel_id, 5)
    until = datetime.now(UTC) + timedelta(hours=1)
    await snooze(sessions, conv, until)
    bus = InProcessBus()
    waker = SnoozeWaker(sessions, bus, clock=Clock(until))
    stop = asyncio.Event()
    async with bus.subscribe() as published:
        task = asyncio.create_task(waker.run(stop, interval=3600))
        event = await published.get(timeout=30)
        stop.set()
        await task  # returns at once when stopped, not after the interval
    assert event is not None and event.data["conversation_id"] == str(conv)
