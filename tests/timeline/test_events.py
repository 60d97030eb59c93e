"""The event bus delivers published events to subscribers, in-process and through Redis."""

from __future__ import annotations

import asyncio

from timeline.events import Event, EventBus, next_event


async def test_subscriber_receives_published_events_in_order(bus: EventBus) -> None:
    async with bus.subscribe() as events:
        await bus.publish([Event("a", {"n": 1}), Event("b", {"n": 2})])
        first = await events.get(timeout=5)
        second = await events.get(timeout=5)
    assert first == Event("a", {"n": 1})
    assert second == Event("b", {"n": 2})


async def test_no_event_means_none_after_timeout(bus: EventBus) -> None:
    async with bus.subscribe() as events:
        assert await events.get(timeout=0.2) is None


async def test_bus_reports_reachable(bus: EventBus) -> None:
    assert await bus.ping() is True


async def test_next_event_gives_the_event_or_returns_when_stopped(bus: EventBus) -> None:
    stop = asyncio.Event()
    async with bus.subscribe() as events:
        await bus.publish([Event("channel.updated", {"n": 1})])
        event = await next_event(events, stop, 30.0)
        assert event is not None and event.data == {"n": 1}
        # Waiting without a time limit: only the stop can end it (the outer wait_for guards
        # against a hang, it measures nothing).
        waiting = asyncio.ensure_future(next_event(events, stop, None))
        await asyncio.sleep(0)
        assert not waiting.done()
        stop.set()
        assert await asyncio.wait_for(waiting, 60) is None
