"""SLA policies: which applies, how targets stand in business time, breaches recorded once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from inbox.metric_models import SlaClock, SlaPolicy
from inbox.response_metrics import load
from inbox.sla import SLA_BREACHED, SlaWatch, applies, statuses
from tests.inbox.metric_story import Story, berlin, make_channel
from timeline.db import SessionFactory, create_engine, session_factory
from timeline.events import InProcessBus
from timeline.models import Conversation, TimelineEvent

HOUR = 3600
AGENT = uuid.uuid4()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def add_policy(sessions: SessionFactory, channel_id: uuid.UUID) -> uuid.UUID:
    policy = SlaPolicy(
        name="Standard",
        first_response_seconds=2 * HOUR,
        next_response_seconds=4 * HOUR,
        resolution_seconds=10 * HOUR,
        channel_ids=[str(channel_id)],
        team_ids=[],
        priorities=[],
    )
    async with sessions() as session, session.begin():
        session.add(policy)
    return policy.id


async def states(
    sessions: SessionFactory, story: Story, now: datetime
) -> dict[str, tuple[str, datetime, float]]:
    async with sessions() as session:
        conversation = await session.get(Conversation, story.conversation_id)
        assert conversation is not None
        found = await statuses(session, await load(session, conversation), now)
    return {s.target.value: (s.state, s.due_at, s.remaining_seconds) for s in found}


def test_policy_conditions() -> None:
    channel, team = uuid.uuid4(), uuid.uuid4()
    policy = SlaPolicy(channel_ids=[str(channel)], team_ids=[str(team)], priorities=["urgent"])
    conversation = SimpleNamespace(channel_id=channel, team_id=team, priority="urgent")
    assert applies(policy, conversation)  # type: ignore[arg-type]
    assert not applies(policy, SimpleNamespace(channel_id=channel, team_id=team, priority="low"))  # type: ignore[arg-type]
    # Without a priority column, a policy naming priorities never matches.
    assert not applies(policy, SimpleNamespace(channel_id=channel, team_id=team))  # type: ignore[arg-type]
    assert not applies(policy, SimpleNamespace(channel_id=channel, team_id=None, priority="urgent"))  # type: ignore[arg-type]
    anything = SlaPolicy(channel_ids=[], team_ids=[], priorities=[])
    assert applies(anything, SimpleNamespace(channel_id=uuid.uuid4(), team_id=None))  # type: ignore[arg-type]


async def test_targets_in_business_time_and_one_breach(sessions: SessionFactory) -> None:
    channel_id = await make_channel(sessions, office_hours=True)
    policy_id = await add_policy(sessions, channel_id)
    story = await Story(sessions, channel_id).start(berlin(2024, 4, 29, 16))
    await story.customer(berlin(2024, 4, 29, 16))  # Mon 16:00
    await story.auto_reply(berlin(2024, 4, 29, 16, 1))  # does not stop the clock

    # First response: 2 business hours from Mon 16:00 = Mon 16-17 + Tue 09-10 → Tue 10:00.
    # Resolution: 10 h = Mon 1 h + Tue 8 h + (Wed holiday) + Thu 1 h → Thu 10:00.
    assert await states(sessions, story, berlin(2024, 4, 29, 16, 30)) == {
        "first_response": ("ok", berlin(2024, 4, 30, 10), 1.5 * HOUR),
        "resolution": ("ok", berlin(2024, 5, 2, 10), 9.5 * HOUR),
    }
    # Overnight no business time passes: still 1 h 30 min... until opening.
    at_night = await states(sessions, story, berlin(2024, 4, 30, 3))
    assert at_night["first_response"] == ("ok", berlin(2024, 4, 30, 10), 1 * HOUR)
    # Tue 09:45: 15 min left, under 20% of 2 h.
    assert (await states(sessions, story, berlin(2024, 4, 30, 9, 45)))["first_response"][0] == (
        "at_risk"
    )

    bus = InProcessBus()
    clock = Clock(berlin(2024, 4, 29, 16, 30))
    watch = SlaWatch(sessions, bus, clock=clock)
    async with bus.subscribe() as subscription:
        await watch.recorder.run_once()
        assert await watch.run_once() == 0
        clock.now = berlin(2024, 4, 30, 10, 1)
        await watch.recorder.run_once()
        assert await watch.run_once() == 1
        assert await watch.run_once() == 0  # recorded once
        await watch.recorder.run_once()
        assert await watch.run_once() == 0
        event = await subscription.get(timeout=5)
    assert event is not None and event.type == SLA_BREACHED
    assert event.data["target"] == "first_response"
    assert event.data["conversation_id"] == str(story.conversation_id)
    async with sessions() as session:
        recorded = (
            await session.scalars(select(TimelineEvent).where(TimelineEvent.kind == SLA_BREACHED))
        ).all()
    assert [(e.conversation_id, e.data) for e in recorded] == [
        (
            story.conversation_id,
            {
                "target": "first_response",
                "cycle": 1,
                "due_at": "2024-04-30T08:00:00+00:00",
                "policy_id": str(policy_id),
            },
        )
    ]

    # A late reply stays a breach; the next turn is met in time (due Tue 11:00 + 4 h).
    await story.reply(berlin(2024, 4, 30, 10, 30), AGENT)
    await story.customer(berlin(2024, 4, 30, 11))
    await story.reply(berlin(2024, 4, 30, 12), AGENT)
    now = await states(sessions, story, berlin(2024, 4, 30, 12, 5))
    assert now["first_response"][0] == "breached"
    assert now["next_response"] == ("met", berlin(2024, 4, 30, 15), 3 * HOUR)
    clock.now = berlin(2024, 4, 30, 16)
    await watch.recorder.run_once()
    assert await watch.run_once() == 0
    async with sessions() as session:
        clocks = {c.target: c for c in await session.scalars(select(SlaClock))}
    assert clocks["next_response"].met_at == berlin(2024, 4, 30, 12)
    assert clocks["first_response"].breached_at == berlin(2024, 4, 30, 10, 1)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_racing_watches_record_each_breach_once(
    database_url: str, sessions: SessionFactory
) -> None:
    channel_id = await make_channel(sessions, office_hours=False)
    await add_policy(sessions, channel_id)
    for _ in range(12):
        story = await Story(sessions, channel_id).start(berlin(2024, 4, 29, 16))
        await story.customer(berlin(2024, 4, 29, 16))
    # 11 h later: the first response (2 h) and the resolution (10 h) are both overdue.
    late = berlin(2024, 4, 30, 3)
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        watches = [
            SlaWatch(session_factory(e), InProcessBus(), batch_size=5, clock=Clock(late))
            for e in engines
        ]
        await asyncio.gather(*(w.recorder.run_once() for w in watches))
        total = 0
        for _ in range(10):
            counts = await asyncio.gather(*(w.run_once() for w in watches))
            total += sum(counts)
            if sum(counts) == 0:
                break
    finally:
        for e in engines:
            await e.dispose()
    assert total == 24
    async with sessions() as session:
        recorded = (
            await session.scalars(select(TimelineEvent).where(TimelineEvent.kind == SLA_BREACHED))
        ).all()
    keys = [(e.conversation_id, e.data["target"]) for e in recorded]
    assert len(keys) == len(set(keys)) == 24
