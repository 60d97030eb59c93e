"""Following the bus through outages (timeline/bus_follow.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from redis.exceptions import ConnectionError as RedisConnectionError

from timeline.bus_follow import follow
from timeline.events import Event, InProcessBus, Subscription


class FlakyBus(InProcessBus):
    """Refuses the first `failures` subscriptions, like Redis while it is down."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.subscribed = asyncio.Event()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        if self.failures > 0:
            self.failures -= 1
            raise RedisConnectionError("Connection refused")
        async with super().subscribe() as events:
            self.subscribed.set()
            yield events


async def test_follow_subscribes_again_after_failures_and_survives_a_bad_handler() -> None:
    bus = FlakyBus(failures=2)
    stop = asyncio.Event()
    seen: list[str] = []
    gaps: list[int] = []
    done = asyncio.Event()

    def handle(event: Event) -> None:
        if event.type == "boom":
            raise RuntimeError("handler bug")
        seen.append(event.type)
        if event.type == "last":
            done.set()

    task = asyncio.create_task(follow(bus, stop, handle, on_gap=lambda: gaps.append(1)))
    await asyncio.wait_for(bus.subscribed.wait(), 30)
    await bus.publish([Event("first"), Event("boom"), Event("last")])
    await asyncio.wait_for(done.wait(), 30)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert seen == ["first", "last"]
    assert bus.failures == 0
    assert gaps == [1]  # told once that events may have been missed


async def test_follow_returns_when_stopped_while_idle() -> None:
    bus = InProcessBus()
    stop = asyncio.Event()
    task = asyncio.create_task(follow(bus, stop, lambda event: None))
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert task.exception() is None
