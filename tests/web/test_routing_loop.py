"""The worker's routing loop: woken by the bus (its sweep is set to an hour here, so only
the bus can wake it in time), it routes a new message and assigns it, and assigns the
next waiting conversation as soon as capacity frees."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from inbox.assignment import Assigner
from inbox.conversation_changes import Changes, apply_changes
from inbox.routing_engine import RoutingEngine
from inbox.routing_models import AssignmentPolicy
from tests.inbox.routing_world import World, running_world
from timeline.db import SessionFactory, session_factory
from timeline.events import InProcessBus, Subscription, publish_committed
from timeline.models import ConversationStatus
from web.routing_loop import run

TIMEOUT = 20.0


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


@pytest.fixture
def bus() -> InProcessBus:
    return InProcessBus()


@pytest.fixture
async def world(
    sessions: SessionFactory, bus: InProcessBus, tmp_path: Path
) -> AsyncIterator[World]:
    async with running_world(sessions, tmp_path / "data", bus) as world:
        yield world


async def assigned(events: Subscription, conversation_id: uuid.UUID) -> str:
    """The assignee of the first `conversation.updated` event that assigns it."""

    async def wait() -> str:
        while True:
            event = await events.get(timeout=TIMEOUT)
            assert event is not None, "no event in time"
            data = event.data
            if (
                event.type == "conversation.updated"
                and data.get("conversation_id") == str(conversation_id)
                and data.get("assignee_id")
            ):
                return str(data["assignee_id"])

    return await asyncio.wait_for(wait(), TIMEOUT)


async def test_the_bus_wakes_routing_and_assignment(world: World, bus: InProcessBus) -> None:
    channel = await world.channel()
    agent = await world.user(channels=(channel,))
    await world.online(agent)
    async with world.sessions() as session, session.begin():
        session.add(AssignmentPolicy(channel_id=channel, enabled=True, default_capacity=1))
    await world.rule("label", [{"type": "add_label", "label": "new"}])
    stop = asyncio.Event()
    engine = RoutingEngine(world.sessions, bus)
    loop = asyncio.create_task(run(engine, Assigner(world.sessions, bus), bus, stop, 3600))
    try:
        async with bus.subscribe() as events:
            first = await world.inbound(channel, "first")
            assert first.conversation_id is not None
            assert await assigned(events, first.conversation_id) == str(agent)
            assert [
                e["rule_name"]
                for e in await world.events(first.conversation_id, "routing.rule_fired")
            ] == ["label"]
            second = await world.inbound(channel, "second")
            assert second.conversation_id is not None
            # Capacity 1: the second waits until the first is resolved.
            async with world.sessions() as session, session.begin():
                outcome = await apply_changes(
                    session,
                    first.conversation_id,
                    Changes(status=ConversationStatus.RESOLVED),
                    actor_id=None,
                )
            await publish_committed(bus, outcome.bus_events())
            assert await assigned(events, second.conversation_id) == str(agent)
    finally:
        stop.set()
        await asyncio.wait_for(loop, TIMEOUT)
