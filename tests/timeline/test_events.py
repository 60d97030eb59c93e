"""The event bus delivers published events to subscribers, in-process and through Redis."""

from __future__ import annotations

from timeline.events import Event, EventBus


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
