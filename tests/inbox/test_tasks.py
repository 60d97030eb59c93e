"""Follow-up tasks, and the due notice raised exactly once however many workers run."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from connectors.types import IdentityKind
from inbox.models import Role, Task, User
from inbox.tasks import (
    TASK_DUE,
    TaskDueNotifier,
    TaskError,
    create_task,
    task_status,
    update_task,
)
from tests.timeline.test_ingest import inbound
from timeline.db import SessionFactory, create_engine, session_factory
from timeline.events import Event, InProcessBus
from timeline.ingest import Ingestor
from timeline.ingest_batch import IngestResult
from timeline.models import TimelineEvent

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the notifier."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def customer(ingestor: Ingestor, channel_id: uuid.UUID, phone: str) -> IngestResult:
    """A customer who wrote in: their contact and conversation, as ingestion makes them."""
    result = await ingestor.ingest(
        inbound(channel_id, f"sms-{uuid.uuid4().hex}", IdentityKind.PHONE, phone, text="hi")
    )
    assert result.contact_id is not None and result.conversation_id is not None
    return result


async def make_user(sessions: SessionFactory, *, active: bool = True) -> User:
    user = User(
        email=f"u-{uuid.uuid4().hex[:8]}@example.com",
        role=Role.AGENT.value,
        password_hash="x",
        is_active=active,
    )
    async with sessions() as session, session.begin():
        session.add(user)
    return user


async def new_task(
    sessions: SessionFactory,
    *,
    due_at: datetime = T0,
    contact_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
    assignee_id: uuid.UUID | None = None,
    title: str = "call back",
) -> Task:
    async with sessions() as session, session.begin():
        return await create_task(
            session,
            title=title,
            due_at=due_at,
            assignee_id=assignee_id,
            contact_id=contact_id,
            conversation_id=conversation_id,
            created_by=None,
            now=T0 - timedelta(days=1),
        )


async def due_events(sessions: SessionFactory) -> list[TimelineEvent]:
    async with sessions() as session:
        rows = await session.scalars(
            select(TimelineEvent).where(TimelineEvent.kind == TASK_DUE).order_by(TimelineEvent.id)
        )
        return list(rows)


async def test_a_due_task_is_noticed_once(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    ann = await customer(ingestor, channel_id, "+14155550100")
    agent = await make_user(sessions)
    task = await new_task(
        sessions, contact_id=ann.contact_id, assignee_id=agent.id, due_at=T0 + timedelta(hours=1)
    )
    bus = InProcessBus()
    clock = Clock(T0)
    notifier = TaskDueNotifier(sessions, bus, clock=clock)
    async with bus.subscribe() as heard:
        assert await notifier.run_once() == 0  # not due yet
        clock.now = T0 + timedelta(hours=1)  # due exactly now
        assert await notifier.run_once() == 1
        assert await notifier.run_once() == 0
        clock.now = T0 + timedelta(days=3)
        assert await notifier.run_once() == 0
        event = await heard.get(timeout=5)
    assert event == Event(
        TASK_DUE,
        {
            "task_id": str(task.id),
            "assignee_id": str(agent.id),
            "contact_id": str(ann.contact_id),
            "conversation_id": None,
        },
    )
    [recorded] = await due_events(sessions)
    assert recorded.contact_id == ann.contact_id
    assert recorded.conversation_id is None
    assert recorded.occurred_at == T0 + timedelta(hours=1)
    assert recorded.data["task_id"] == str(task.id)
    assert recorded.data["title"] == "call back"
    async with sessions() as session:
        stored = await session.get(Task, task.id)
        assert stored is not None and stored.due_notified_at == T0 + timedelta(hours=1)


async def test_a_conversation_task_lands_on_its_contact(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    ann = await customer(ingestor, channel_id, "+14155550100")
    await new_task(sessions, conversation_id=ann.conversation_id)
    assert await TaskDueNotifier(sessions, InProcessBus(), clock=Clock(T0)).run_once() == 1
    [recorded] = await due_events(sessions)
    assert (recorded.contact_id, recorded.conversation_id) == (ann.contact_id, ann.conversation_id)


async def test_completed_tasks_are_not_noticed(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    ann = await customer(ingestor, channel_id, "+14155550100")
    task = await new_task(sessions, contact_id=ann.contact_id)
    async with sessions() as session, session.begin():
        stored = await session.get(Task, task.id)
        assert stored is not None
        await update_task(session, stored, done=True, now=T0)
        assert task_status(stored) == "done"
    assert await TaskDueNotifier(sessions, InProcessBus(), clock=Clock(T0)).run_once() == 0
    assert await due_events(sessions) == []


async def test_rescheduling_later_rearms_the_notice(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    ann = await customer(ingestor, channel_id, "+14155550100")
    task = await new_task(sessions, contact_id=ann.contact_id)
    clock = Clock(T0)
    notifier = TaskDueNotifier(sessions, InProcessBus(), clock=clock)
    assert await notifier.run_once() == 1

    async def reschedule(due_at: datetime) -> None:
        async with sessions() as session, session.begin():
            stored = await session.get(Task, task.id)
            assert stored is not None
            await update_task(session, stored, due_at=due_at, now=clock.now)

    await reschedule(T0 - timedelta(hours=1))  # earlier: still noticed, not again
    assert await notifier.run_once() == 0
    await reschedule(T0 + timedelta(days=1))  # later: due again then
    assert await notifier.run_once() == 0
    clock.now = T0 + timedelta(days=1)
    assert await notifier.run_once() == 1
    assert len(await due_events(sessions)) == 2


async def test_reopening_without_rescheduling_does_not_notice_again(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    ann = await customer(ingestor, channel_id, "+14155550100")
    task = await new_task(sessions, contact_id=ann.contact_id)
    notifier = TaskDueNotifier(sessions, InProcessBus(), clock=Clock(T0))
    assert await notifier.run_once() == 1
    async with sessions() as session, session.begin():
        stored = await session.get(Task, task.id)
        assert stored is not None
        await update_task(session, stored, done=True, now=T0)
        await update_task(session, stored, done=False, now=T0)
        assert stored.completed_at is None
    assert await notifier.run_once() == 0


@pytest.mark.parametrize("workers", [2, 4])
async def test_racing_workers_notice_each_task_exactly_once(
    database_url: str,
    sessions: SessionFactory,
    ingestor: Ingestor,
    channel_id: uuid.UUID,
    workers: int,
) -> None:
    ann = await customer(ingestor, channel_id, "+14155550100")
    tasks = [
        await new_task(sessions, contact_id=ann.contact_id, due_at=T0 - timedelta(minutes=n))
        for n in range(40)
    ]
    # Each worker has its own engine (its own connections), bus and small batches, like
    # separate processes, and they all start at once.
    engines = [create_engine(database_url) for _ in range(workers)]
    notifiers = [
        TaskDueNotifier(session_factory(engine), InProcessBus(), batch_size=7, clock=Clock(T0))
        for engine in engines
    ]
    claimed = []
    try:
        for _ in range(10):  # rounds until every task is claimed
            counts = await asyncio.gather(*(notifier.run_once() for notifier in notifiers))
            claimed.append(counts)
            if sum(counts) == 0:
                break
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(map(sum, claimed)) == len(tasks)
    recorded = await due_events(sessions)
    assert sorted(event.data["task_id"] for event in recorded) == sorted(
        str(task.id) for task in tasks
    )


async def test_racing_workers_publish_each_task_once(
    database_url: str,
    sessions: SessionFactory,
    ingestor: Ingestor,
    channel_id: uuid.UUID,
) -> None:
    ann = await customer(ingestor, channel_id, "+14155550100")
    for n in range(20):
        await new_task(sessions, contact_id=ann.contact_id, due_at=T0 - timedelta(minutes=n))
    bus = InProcessBus()  # shared, so every publication is heard in one place
    engines = [create_engine(database_url) for _ in range(3)]
    notifiers = [
        TaskDueNotifier(session_factory(engine), bus, batch_size=5, clock=Clock(T0))
        for engine in engines
    ]
    heard: list[str] = []
    try:
        async with bus.subscribe() as events:
            total = 0
            for _ in range(10):
                counts = await asyncio.gather(*(notifier.run_once() for notifier in notifiers))
                total += sum(counts)
                if sum(counts) == 0:
                    break
            for _ in range(total):
                event = await events.get(timeout=5)
                assert event is not None
                heard.append(event.data["task_id"])
            # Everything was published before run_once returned: nothing more is queued.
            assert await events.get(timeout=0.5) is None
    finally:
        for engine in engines:
            await engine.dispose()
    assert total == 20
    assert len(heard) == len(set(heard)) == 20


async def test_run_loop_notices_and_stops(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    ann = await customer(ingestor, channel_id, "+14155550100")
    task = await new_task(sessions, contact_id=ann.contact_id)
    bus = InProcessBus()
    stop = asyncio.Event()
    notifier = TaskDueNotifier(sessions, bus, clock=Clock(T0))
    async with bus.subscribe() as events:
        runner = asyncio.create_task(notifier.run(stop, interval=3600))
        event = await events.get(timeout=30)
        stop.set()
        await asyncio.wait_for(runner, 30)
    assert event is not None and event.data["task_id"] == str(task.id)


async def test_the_database_clock_is_used_without_one(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    ann = await customer(ingestor, channel_id, "+14155550100")
    await new_task(sessions, contact_id=ann.contact_id, due_at=datetime.now(UTC))
    await new_task(
        sessions, contact_id=ann.contact_id, due_at=datetime.now(UTC) + timedelta(days=1)
    )
    assert await TaskDueNotifier(sessions, InProcessBus()).run_once() == 1


async def test_task_checks(
    sessions: SessionFactory, ingestor: Ingestor, channel_id: uuid.UUID
) -> None:
    ann = await customer(ingestor, channel_id, "+14155550100")
    bob = await customer(ingestor, channel_id, "+14155550111")
    retired = await make_user(sessions, active=False)
    cases: list[tuple[dict[str, object], str]] = [
        ({}, "contact_id"),
        ({"contact_id": uuid.uuid4()}, "contact_id"),
        ({"conversation_id": uuid.uuid4()}, "conversation_id"),
        ({"contact_id": ann.contact_id, "conversation_id": bob.conversation_id}, "conversation_id"),
        ({"contact_id": ann.contact_id, "assignee_id": retired.id}, "assignee_id"),
        ({"contact_id": ann.contact_id, "assignee_id": uuid.uuid4()}, "assignee_id"),
        ({"contact_id": ann.contact_id, "title": "   "}, "title"),
        ({"contact_id": ann.contact_id, "title": "a\nb"}, "title"),
        ({"contact_id": ann.contact_id, "title": "x" * 501}, "title"),
        ({"contact_id": ann.contact_id, "due_at": datetime(2026, 1, 1)}, "due_at"),
    ]
    for arguments, field in cases:
        with pytest.raises(TaskError) as refused:
            await new_task(sessions, **arguments)  # type: ignore[arg-type]
        assert list(refused.value.fields) == [field], arguments
    async with sessions() as session:
        assert (await session.scalars(select(Task))).first() is None
    # Both, when they agree, are fine.
    await new_task(sessions, contact_id=ann.contact_id, conversation_id=ann.conversation_id)
