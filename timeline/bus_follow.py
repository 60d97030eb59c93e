"""Following the bus for as long as a process runs, through Redis outages.

`follow` hands every event to a callback until `stop` is set. When the bus fails (Redis
down at start, or a connection lost mid-stream) it subscribes again after a backoff that
grows to `backoff_cap` seconds, and calls `on_gap` once it is back: events published
while it was away are lost (pub/sub), so a follower that must not miss anything reads
the database then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from timeline.events import Event, EventBus, next_event

logger = logging.getLogger(__name__)

BACKOFF_START_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0


async def follow(
    bus: EventBus,
    stop: asyncio.Event,
    handle: Callable[[Event], None],
    *,
    on_gap: Callable[[], None] | None = None,
    backoff_cap: float = BACKOFF_CAP_SECONDS,
) -> None:
    """Call `handle(event)` for each event until `stop` is set (a failing handler is
    logged, never fatal); re-subscribe with backoff when the bus fails."""
    delay = BACKOFF_START_SECONDS
    lost = False
    while not stop.is_set():
        try:
            async with bus.subscribe() as events:
                if lost and on_gap is not None:
                    on_gap()
                lost = False
                delay = BACKOFF_START_SECONDS
                while not stop.is_set():
                    event = await next_event(events, stop, None)
                    if event is None:
                        continue
                    try:
                        handle(event)
                    except Exception:
                        logger.exception("handling %s failed", event.type)
        except (RedisError, OSError) as error:
            if not lost:
                logger.warning("event bus unavailable (%s); subscribing again", error)
            lost = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, backoff_cap)
