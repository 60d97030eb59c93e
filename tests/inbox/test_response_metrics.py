"""Response-time metrics recorded from what happened, worked out by hand."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from inbox.metric_models import ConversationMetric
from inbox.response_metrics import MetricRecorder, id_floor, id_time
from tests.inbox.metric_story import Story, berlin, make_channel
from timeline.db import SessionFactory, create_engine, session_factory
from timeline.ids import new_id

HOUR = 3600.0
AGENT_A, AGENT_B = uuid.uuid4(), uuid.uuid4()


async def tell(story: Story) -> None:
    """Business hours Mon-Fri 09-17 Berlin; Wed 2024-05-01 is a holiday."""
    await story.start(berlin(2024, 4, 29, 16))
    await story.customer(berlin(2024, 4, 29, 16))  # Mon 16:00: cycle 1 opens
    await story.auto_reply(berlin(2024, 4, 29, 16, 1))  # an acknowledgement: no answer
    await story.note(berlin(2024, 4, 29, 16, 30), AGENT_A)  # private: no answer
    await story.reply(berlin(2024, 4, 30, 10), AGENT_A)  # Tue 10:00
    await story.customer(berlin(2024, 4, 30, 16))  # Tue 16:00: a later turn
    await story.customer(berlin(2024, 4, 30, 16, 20))  # same turn: the clock runs from 16:00
    await story.reply(berlin(2024, 5, 2, 9, 30), AGENT_B)  # Thu 09:30, after the holiday
    await story.status(berlin(2024, 5, 2, 10), "resolved", agent=AGENT_B)  # Thu 10:00
    await story.reply(berlin(2024, 5, 2, 11), AGENT_B)  # on a resolved conversation: no span
    await story.customer(berlin(2024, 5, 3, 16, 30), reopens=True)  # Fri 16:30: cycle 2
    await story.reply(berlin(2024, 5, 6, 9, 15), AGENT_A)  # Mon 09:15, after the weekend
    await story.status(berlin(2024, 5, 6, 11), "resolved", agent=AGENT_A)  # Mon 11:00


# (kind, cycle, agent, wall seconds, business seconds), worked out by hand:
EXPECTED = [
    # Mon 16:00 → Tue 10:00 is 18 h; open: Mon 16-17 + Tue 09-10 = 2 h.
    ("first_response", 1, AGENT_A, 18 * HOUR, 2 * HOUR),
    # Tue 16:00 → Thu 09:30 is 41.5 h; open: Tue 16-17 + (Wed holiday) + Thu 09-09:30 = 1.5 h.
    ("reply", 1, AGENT_B, 41.5 * HOUR, 1.5 * HOUR),
    # Mon 16:00 → Thu 10:00 is 66 h; open: Mon 1 h + Tue 8 h + Wed 0 + Thu 1 h = 10 h.
    ("resolution", 1, AGENT_B, 66 * HOUR, 10 * HOUR),
    # Fri 16:30 → Mon 09:15 is 64.75 h; open: Fri 16:30-17 + Mon 09-09:15 = 45 min.
    ("first_response", 2, AGENT_A, 64.75 * HOUR, 0.75 * HOUR),
    # From the reopen (not the creation): Fri 16:30 → Mon 11:00 is 66.5 h; open 0.5 + 2 h.
    ("resolution", 2, AGENT_A, 66.5 * HOUR, 2.5 * HOUR),
]


async def recorded(sessions: SessionFactory) -> list[tuple[object, ...]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(ConversationMetric).order_by(ConversationMetric.ended_at)
        )
        return [(r.kind, r.cycle, r.agent_id, r.wall_seconds, r.business_seconds) for r in rows]


async def test_worked_example_recorded_once(sessions: SessionFactory) -> None:
    channel_id = await make_channel(sessions, office_hours=True)
    plain_channel = await make_channel(sessions, office_hours=False)
    await tell(Story(sessions, channel_id))
    recorder = MetricRecorder(sessions, clock=lambda: berlin(2024, 5, 7, 12))
    assert await recorder.run_once() == len(EXPECTED)
    assert await recorder.run_once() == 0  # run again: nothing new, nothing doubled
    assert await recorded(sessions) == EXPECTED
    async with sessions() as session:
        rows = (await session.scalars(select(ConversationMetric))).all()
    assert {r.channel_id for r in rows} == {channel_id}
    assert all(r.business_hours_id is not None for r in rows)

    # A channel without business hours: wall time only. Recorded by the next round, read
    # from its cursor on (it re-reads a few minutes back, which is harmless).
    other = Story(sessions, plain_channel)
    await tell(other)
    assert await recorder.run_once() == len(EXPECTED)
    async with sessions() as session:
        plain = (
            await session.scalars(
                select(ConversationMetric)
                .where(ConversationMetric.channel_id == plain_channel)
                .order_by(ConversationMetric.ended_at)
            )
        ).all()
    assert [(r.kind, r.wall_seconds, r.business_seconds) for r in plain] == [
        (kind, wall, None) for kind, _, _, wall, _ in EXPECTED
    ]


class CountingRecorder(MetricRecorder):
    """Counts the conversations it loads."""

    loaded: list[uuid.UUID]

    async def record(self, conversation_id: uuid.UUID, now: datetime) -> int:
        self.loaded.append(conversation_id)
        return await super().record(conversation_id, now)


async def test_a_round_loads_only_conversations_with_events_it_has_not_handled(
    sessions: SessionFactory,
) -> None:
    """Each round reads the last minutes of events again (a late commit may hide there);
    what it has handled already is not loaded again, so a busy hub's worker does not
    derive every recent conversation on every round."""
    first = Story(sessions, await make_channel(sessions, office_hours=True))
    second = Story(sessions, await make_channel(sessions, office_hours=True))
    await tell(first)
    recorder = CountingRecorder(sessions, clock=lambda: berlin(2024, 5, 7, 12))
    recorder.loaded = []
    assert await recorder.run_once() == len(EXPECTED)
    assert recorder.loaded == [first.conversation_id]
    recorder.loaded = []
    assert await recorder.run_once() == 0
    assert recorder.loaded == []  # its events are read again, but were handled

    await tell(second)
    assert await recorder.run_once() == len(EXPECTED)
    assert recorder.loaded == [second.conversation_id]

    # Another process (or a restart) knows nothing of what this one handled: it loads
    # both again and records nothing twice.
    other = CountingRecorder(sessions, clock=lambda: berlin(2024, 5, 7, 12))
    other.loaded = []
    assert await other.run_once() == 0
    assert sorted(other.loaded) == sorted([first.conversation_id, second.conversation_id])


def test_event_id_cursor_layout() -> None:
    made = new_id()
    at = id_time(made)
    assert id_floor(at) <= made
    assert id_time(id_floor(at)) == at


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_concurrent_recorders_record_each_span_once(
    database_url: str, sessions: SessionFactory
) -> None:
    channel_id = await make_channel(sessions, office_hours=True)
    for _ in range(6):
        await tell(Story(sessions, channel_id))
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        recorders = [
            MetricRecorder(session_factory(e), clock=lambda: berlin(2024, 5, 7, 12))
            for e in engines
        ]
        counts = await asyncio.gather(*(r.run_once() for r in recorders))
        counts += await asyncio.gather(*(r.run_once() for r in recorders))
    finally:
        for e in engines:
            await e.dispose()
    assert sum(counts) == 6 * len(EXPECTED)
    rows = await recorded(sessions)
    assert len(rows) == 6 * len(EXPECTED)
    assert sorted(set(rows), key=str) == sorted(set(EXPECTED), key=str)
