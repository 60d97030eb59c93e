"""The event bus: in-process, or Redis pub/sub when SWITCHBOARD_REDIS_URL is set.

Events are published only after the transaction that caused them commits. Delivery is
at-most-once (pub/sub): consumers that must not miss anything read the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

DEFAULT_TOPIC = "switchboard:events"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, e.g. `message.created` with ids in `data`."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"type": self.type, "data": self.data}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        value = json.loads(raw)
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            raise ValueError("not an event")
        data = value.get("data")
        return cls(value["type"], data if isinstance(data, dict) else {})


class Subscription(Protocol):
    """A stream of events, opened with `async with bus.subscribe() as events`."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after `timeout` seconds."""


class EventBus(Protocol):
    """Publish events to every subscriber (in this process, or every process via Redis)."""

    async def publish(self, events: Sequence[Event]) -> None: ...

    def subscribe(self) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def ping(self) -> bool:
        """True when the bus can deliver (Redis reachable)."""

    async def close(self) -> None: ...


async def next_event(
    events: Subscription, stop: asyncio.Event, timeout: float | None
) -> Event | None:
    """The next event within `timeout` seconds, or None at once when `stop` is set: a
    stopping follower (and so every app shutdown) does not wait out its poll."""
    getter = asyncio.ensure_future(events.get(timeout=timeout))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((getter, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not getter.done():
            getter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await getter
    return None if getter.cancelled() else getter.result()


async def publish_committed(bus: EventBus, events: Sequence[Event]) -> None:
    """Publish events whose transaction has committed; a bus failure is logged, never raised.

    The change is durable by now: failing the caller would invite a retry of something
    already done. Subscribers that must not miss anything read the database.
    """
    if not events:
        return
    try:
        await bus.publish(events)
    except Exception:
        logger.exception(
            "could not publish %s on the bus", ", ".join(event.type for event in events)
        )


class _QueueSubscription:
    def __init__(self, queue: asyncio.Queue[Event]) -> None:
        self.queue = queue

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    async def get(self, timeout: float | None = None) -> Event | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


class InProcessBus:
    """Fan-out to subscribers of this process. A slow subscriber loses its oldest events."""

    def __init__(self, max_backlog: int = 10_000) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self._max_backlog = max_backlog

    async def publish(self, events: Sequence[Event]) -> None:
        for queue in self._queues:
            for event in events:
                if queue.full():
                    queue.get_nowait()
                    logger.warning("event subscriber is behind; dropped its oldest event")
                queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._max_backlog)
        self._queues.add(queue)
        try:
            yield _QueueSubscription(queue)
        finally:
            self._queues.discard(queue)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._queues.clear()


class _RedisSubscription:
    def __init__(self, pubsub: aioredis.client.PubSub) -> None:
        self.pubsub = pubsub

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            event = await self.get(None)
            if event is not None:
                yield event

    async def get(self, timeout: float | None = None) -> Event | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            if remaining is not None and remaining <= 0:
                return None
            message = await self.pubsub.get_message(
                ignore_subscribe_messages=True, timeout=remaining if remaining is not None else 1.0
            )
            if message is None or message.get("type") != "message":
                continue
            try:
                return Event.from_json(message["data"])
            except ValueError:
                logger.warning("ignored a malformed message on the event topic")


class RedisBus:
    """Redis pub/sub on one topic, so every web and worker process sees every event."""

    def __init__(self, url: str, topic: str = DEFAULT_TOPIC) -> None:
        self._redis = aioredis.from_url(url)
        self.topic = topic

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(self.topic, event.to_json())
            await pipe.execute()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        pubsub = self._redis.pubsub()
        # Subscribe before returning, so nothing published after this point is missed.
        await pubsub.subscribe(self.topic)
        try:
            yield _RedisSubscription(pubsub)
        finally:
            await pubsub.unsubscribe(self.topic)
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (aioredis.RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def create_bus(redis_url: str | None, topic: str = DEFAULT_TOPIC) -> EventBus:
    """Redis pub/sub when a URL is configured, else the in-process bus."""
    if redis_url:
        return RedisBus(redis_url, topic)
    return InProcessBus()
