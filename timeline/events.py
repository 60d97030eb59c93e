"""The event bus: in-process, or Redis pub/sub when SWITCHBOARD_REDIS_URL is set.

Events are published only after the transaction that caused them commits. Delivery is
at-most-once (pub/sub): consumers that must not miss anything read the database.

The bus gives every event an id at publish, "<a>-<b>" (two integers, ordered as a pair),
and keeps the last `LOG_SIZE` events, so a websocket client that reconnects can be sent
exactly what it missed (`replay`). With Redis the id is the entry's id in the stream
"<topic>:log", written and published in one script: ids are global across processes and
follow the order subscribers receive events in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

DEFAULT_TOPIC = "switchboard:events"
# How many of the latest events the bus keeps for `replay` (about, with Redis: the stream
# is trimmed by whole nodes).
LOG_SIZE = 10_000
_ID = re.compile(r"(\d{1,20})-(\d{1,20})")


def event_order(event_id: str) -> tuple[int, int] | None:
    """The position of an event id in the bus's order; None for what is not an id."""
    match = _ID.fullmatch(event_id)
    return None if match is None else (int(match[1]), int(match[2]))


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, e.g. `message.created` with ids in `data`; `id` is set
    by the bus at publish (it does not take part in equality: the same happening)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str | None = field(default=None, compare=False)

    def to_json(self) -> str:
        value: dict[str, Any] = {"type": self.type, "data": self.data}
        if self.id is not None:
            value = {"id": self.id, **value}
        return json.dumps(value, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes, *, id: str | None = None) -> Event:
        value = json.loads(raw)
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            raise ValueError("not an event")
        data = value.get("data")
        found = value.get("id")
        event_id = id if id is not None else found if isinstance(found, str) else None
        return cls(value["type"], data if isinstance(data, dict) else {}, event_id)


class Subscription(Protocol):
    """A stream of events, opened with `async with bus.subscribe() as events`."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after `timeout` seconds."""


class EventBus(Protocol):
    """Publish events to every subscriber (in this process, or every process via Redis)."""

    async def publish(self, events: Sequence[Event]) -> None: ...

    def subscribe(self) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def replay(self, after_id: str) -> list[Event] | None:
        """The events published after the one with `after_id`, oldest first; None when
        that id is unknown or too old to know what followed it (the client resyncs)."""

    async def latest_id(self) -> str | None:
        """The id of the newest event the bus keeps; None when it keeps none."""

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

    def __init__(
        self, max_backlog: int = 10_000, log_size: int = LOG_SIZE, *, epoch: int | None = None
    ) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self._max_backlog = max_backlog
        # Ids are "<start>-<n>": a process started later numbers after an earlier one, and
        # an id of an earlier process (a client that outlived a restart) is never taken
        # for one of ours.
        self._epoch = time.time_ns() // 1_000_000 if epoch is None else epoch
        self._count = 0
        self._log: deque[Event] = deque(maxlen=log_size)

    async def publish(self, events: Sequence[Event]) -> None:
        numbered = []
        for event in events:
            self._count += 1
            numbered.append(replace(event, id=f"{self._epoch}-{self._count}"))
        self._log.extend(numbered)
        for queue in self._queues:
            for event in numbered:
                if queue.full():
                    queue.get_nowait()
                    logger.warning("event subscriber is behind; dropped its oldest event")
                queue.put_nowait(event)

    async def replay(self, after_id: str) -> list[Event] | None:
        order = event_order(after_id)
        if order is None or order[0] != self._epoch or order[1] > self._count:
            return None
        oldest = self._count - len(self._log) + 1  # the number of the first event kept
        if order[1] < oldest - 1:
            return None
        return list(self._log)[order[1] - oldest + 1 :]

    async def latest_id(self) -> str | None:
        return self._log[-1].id if self._log else None

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


# Appends each event to the log stream and publishes it with the stream id, atomically:
# the order of ids is the order of delivery. The id is spliced into the JSON text rather
# than through cjson, which would turn an empty list into an object.
_PUBLISH_SCRIPT = """
local ids = {}
for i = 3, #ARGV do
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[i])
  redis.call('PUBLISH', ARGV[1], '{"id":"' .. id .. '",' .. string.sub(ARGV[i], 2))
  ids[#ids + 1] = id
end
return ids
"""


class RedisBus:
    """Redis pub/sub on one topic, so every web and worker process sees every event; the
    latest events are also kept in the stream "<topic>:log" for `replay`."""

    def __init__(self, url: str, topic: str = DEFAULT_TOPIC, log_size: int = LOG_SIZE) -> None:
        self._redis = aioredis.from_url(url)
        # Pub/sub channels are global to a Redis server while keys are per database: two
        # hubs on databases 1 and 2 of one server must not hear each other's events.
        database = int(self._redis.connection_pool.connection_kwargs.get("db") or 0)
        self.topic = topic if database == 0 else f"{topic}:db{database}"
        self.log_key = f"{topic}:log"
        self._log_size = log_size
        self._script = self._redis.register_script(_PUBLISH_SCRIPT)

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        texts = [replace(event, id=None).to_json() for event in events]
        await self._script(keys=[self.log_key], args=[self.topic, self._log_size, *texts])

    async def replay(self, after_id: str) -> list[Event] | None:
        if event_order(after_id) is None:
            return None
        # The id must still be in the log: then nothing after it has been trimmed.
        if not await self._redis.xrange(self.log_key, after_id, after_id, count=1):
            return None
        entries: list[Any] = await self._redis.xrange(self.log_key, f"({after_id}", "+") or []
        events = []
        for entry_id, fields in entries:
            try:
                events.append(Event.from_json(fields[b"e"], id=entry_id.decode()))
            except (KeyError, ValueError):
                logger.warning("ignored a malformed entry %s in the event log", entry_id)
        return events

    async def latest_id(self) -> str | None:
        newest: list[Any] = await self._redis.xrevrange(self.log_key, "+", "-", count=1) or []
        return str(newest[0][0].decode()) if newest else None

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
