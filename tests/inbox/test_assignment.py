"""Auto-assignment: round robin over online agents under their capacity, the
longest-waiting conversation first, and never past a capacity under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from inbox.assignment import Assigner
from inbox.conversation_changes import Changes, apply_changes
from inbox.models import Role
from inbox.routing_engine import RoutingEngine
from inbox.routing_models import AgentCapacity, AssignmentPolicy
from tests.inbox.routing_world import World, running_world
from timeline.db import SessionFactory
from timeline.events import InProcessBus
from timeline.ingest_batch import IngestResult
from timeline.models import Conversation, ConversationStatus, TimelineEvent


@pytest.fixture
async def world(sessions: SessionFactory, tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(sessions, tmp_path / "data") as world:
        yield world


async def policy(
    world: World,
    *,
    channel_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
    capacity: int | None = None,
) -> uuid.UUID:
    row = AssignmentPolicy(
        channel_id=channel_id, team_id=team_id, enabled=True, default_capacity=capacity
    )
    async with world.sessions() as session, session.begin():
        session.add(row)
    return row.id


async def waiting(world: World, channel_id: uuid.UUID, minutes_ago: float) -> uuid.UUID:
    """An open unassigned conversation whose customer has waited that long, its message
    routed (no rules here), as the worker's loop routes before it assigns."""
    result = await world.inbound(channel_id)
    assert result.conversation_id is not None
    assert result.message_id is not None
    assert await RoutingEngine(world.sessions, InProcessBus()).route(result.message_id)
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(Conversation)
            .where(Conversation.id == result.conversation_id)
            .values(waiting_since=datetime.now(UTC) - timedelta(minutes=minutes_ago))
        )
    return result.conversation_id


async def assignee(world: World, conversation_id: uuid.UUID) -> uuid.UUID | None:
    return (await world.conversation(conversation_id)).assignee_id


async def resolve(world: World, conversation_id: uuid.UUID) -> None:
    async with world.sessions() as session, session.begin():
        await apply_changes(
            session,
            conversation_id,
            Changes(status=ConversationStatus.RESOLVED),
            actor_id=None,
        )


async def unrouted(world: World) -> tuple[uuid.UUID, IngestResult]:
    """An online agent of a channel with a policy, and a new message no one has routed."""
    channel = await world.channel()
    agent = await world.user(channels=(channel,))
    await world.online(agent)
    await policy(world, channel_id=channel)
    result = await world.inbound(channel)
    assert result.conversation_id is not None and result.message_id is not None
    return agent, result


async def test_a_conversation_waits_for_routing_before_round_robin(world: World) -> None:
    """A rule may assign a team or an agent: round robin must not take the conversation
    before its message was routed, even when it looks at it first."""
    agent, result = await unrouted(world)
    assert result.conversation_id is not None and result.message_id is not None
    assigner = Assigner(world.sessions, InProcessBus())
    assert await assigner.run_once() == 0
    assert await assignee(world, result.conversation_id) is None
    assert await RoutingEngine(world.sessions, InProcessBus()).route(result.message_id)
    assert await assigner.run_once() == 1
    assert await assignee(world, result.conversation_id) == agent


async def test_messages_older_than_the_routing_lookback_hold_nothing_up(world: World) -> None:
    agent, result = await unrouted(world)
    assert result.conversation_id is not None
    later = datetime.now(UTC) + timedelta(hours=2)  # the engine will never route it now
    assert await Assigner(world.sessions, InProcessBus(), clock=lambda: later).run_once() == 1
    assert await assignee(world, result.conversation_id) == agent


async def test_round_robin_skips_offline_agents_and_rotates_fairly(world: World) -> None:
    channel = await world.channel()
    ann = await world.user(channels=(channel,))
    bob = await world.user(channels=(channel,))
    away = await world.user(channels=(channel,))
    offline = await world.user(channels=(channel,))
    manager = await world.user(Role.MANAGER, channels=(channel,))  # never in the pool
    other = await world.user()  # online, but not a member
    for user in (ann, bob, manager, other):
        await world.online(user)
    await world.online(away, "away")
    assert offline  # no connection at all
    await policy(world, channel_id=channel)
    conversations = [await waiting(world, channel, 60 - i) for i in range(4)]
    assert await Assigner(world.sessions, InProcessBus()).run_once() == 4
    given = [await assignee(world, c) for c in conversations]
    assert set(given) == {ann, bob}
    # Alternating: each assignment goes to whoever this policy served longest ago.
    assert given[0] != given[1] and given[0] == given[2] and given[1] == given[3]
    # A new assigner (a restart, another worker) continues the rotation from the database.
    more = [await waiting(world, channel, 1 - i * 0.1) for i in range(2)]
    assert await Assigner(world.sessions, InProcessBus()).run_once() == 2
    assert [await assignee(world, c) for c in more] == [given[0], given[1]]
    assert [e["by"] for e in await world.events(more[0], "conversation.assigned")] == [None]


async def test_capacity_and_longest_waiting_first_when_capacity_frees(world: World) -> None:
    channel = await world.channel()
    ann = await world.user(channels=(channel,))
    bob = await world.user(channels=(channel,))
    await world.online(ann)
    await world.online(bob)
    await policy(world, channel_id=channel, capacity=1)
    async with world.sessions() as session, session.begin():
        session.add(AgentCapacity(user_id=bob, max_open=0))  # bob's own limit wins
    newest = await waiting(world, channel, 5)
    oldest = await waiting(world, channel, 30)
    middle = await waiting(world, channel, 10)
    assigner = Assigner(world.sessions, InProcessBus())
    assert await assigner.run_once() == 1
    assert await assignee(world, oldest) == ann
    assert await assigner.run_once() == 0  # ann is full, bob takes none
    await resolve(world, oldest)  # capacity frees: the longest waiting goes next
    assert await assigner.run_once() == 1
    assert await assignee(world, middle) == ann and await assignee(world, newest) is None
    # Pending does not count against capacity.
    async with world.sessions() as session, session.begin():
        await apply_changes(
            session, middle, Changes(status=ConversationStatus.PENDING), actor_id=None
        )
    assert await assigner.run_once() == 1
    assert await assignee(world, newest) == ann
    # Raising bob's capacity lets him take what comes next.
    async with world.sessions() as session, session.begin():
        row = await session.get(AgentCapacity, bob)
        assert row is not None
        row.max_open = None  # unlimited
    latest = await waiting(world, channel, 1)
    assert await assigner.run_once() == 1
    assert await assignee(world, latest) == bob


async def test_team_policy_serves_its_team_and_checks_channel_access(world: World) -> None:
    seen = await world.channel("seen")
    unseen = await world.channel("unseen")
    carol = await world.user(channels=(seen,))
    team = await world.team(members=(carol,))
    await world.online(carol)
    await policy(world, team_id=team)
    await policy(world, channel_id=seen)  # carol is in it too, but the team's wins
    on_seen = await waiting(world, seen, 10)
    on_unseen = await waiting(world, unseen, 20)
    no_team = await waiting(world, seen, 5)
    async with world.sessions() as session, session.begin():
        for conversation_id in (on_seen, on_unseen):
            await apply_changes(session, conversation_id, Changes(team_id=team), actor_id=None)
    assert await Assigner(world.sessions, InProcessBus()).run_once() == 2
    assert await assignee(world, on_seen) == carol
    assert await assignee(world, no_team) == carol  # by the channel's policy
    assert await assignee(world, on_unseen) is None  # carol cannot see that channel


async def test_disabled_policies_and_inactive_agents_assign_nothing(world: World) -> None:
    channel = await world.channel()
    inactive = await world.user(active=False, channels=(channel,))
    await world.online(inactive)
    policy_id = await policy(world, channel_id=channel)
    conversation = await waiting(world, channel, 3)
    assigner = Assigner(world.sessions, InProcessBus())
    assert await assigner.run_once() == 0
    active = await world.user(channels=(channel,))
    await world.online(active)
    async with world.sessions() as session, session.begin():
        row = await session.get(AssignmentPolicy, policy_id)
        assert row is not None
        row.enabled = False
    assert await assigner.run_once() == 0
    assert await assigner.assign_next(policy_id) is None
    assert await assignee(world, conversation) is None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_concurrent_assigners_never_exceed_a_capacity(world: World) -> None:
    """Two policies share one agent of capacity 1; their assigners run at once, several
    times over (the agent's conversation is resolved between rounds)."""
    first = await world.channel("first")
    second = await world.channel("second")
    dana = await world.user(channels=(first, second))
    await world.online(dana)
    one = await policy(world, channel_id=first, capacity=1)
    two = await policy(world, channel_id=second, capacity=1)
    rounds = 4
    conversations = [
        await waiting(world, c, 100 - i) for i, c in enumerate([first, second] * rounds)
    ]
    assigners = [Assigner(world.sessions, InProcessBus()) for _ in range(4)]
    for _ in range(rounds):
        results = await asyncio.gather(
            *(a.assign_next(p) for a, p in zip(assigners, (one, two, one, two), strict=True))
        )
        made = [r for r in results if r is not None]
        assert len(made) == 1, made
        async with world.sessions() as session:
            held = await session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.assignee_id == dana, Conversation.status == "open")
            )
        assert held == 1
        await resolve(world, made[0].conversation_id)
    async with world.sessions() as session:
        events = await session.scalar(
            select(func.count())
            .select_from(TimelineEvent)
            .where(
                TimelineEvent.kind == "conversation.assigned",
                TimelineEvent.conversation_id.in_(conversations),
            )
        )
    assert events == rounds  # and no conversation assigned twice
