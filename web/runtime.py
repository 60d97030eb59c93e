"""The connector runtime: one connector per active channel, in every process.

Every process builds the connectors of the channels that are not paused and whose kind
has a factory (connectors/registry.py), each handed a `ConnectorContext` wired to the
timeline: inbound messages to the Ingestor, delivery reports to the outbox, health to the
channel row, cursors to channel_cursors. The web role serves their webhook routes through
one dispatching route; the worker role sends through them (the dispatcher looks them up
in the same dict) and runs their receiving side, `run()`, under a per-channel lease
(timeline/leases.py), so a mailbox is read by exactly one process however many run.

Channels created, changed, paused or deleted through the API are picked up on the
`channel.*` events the API publishes, and by a periodic re-read in case an event was
missed (the bus is fire-and-forget). A receiving side that fails is run again after a
capped exponential backoff, its health and reason recorded; one channel's failure never
touches another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import Connector, ConnectorContext, InboundSink
from connectors.errors import AuthError, TransientError
from connectors.registry import ConnectorSpec, spec_for
from connectors.types import (
    ChannelHealth,
    ChannelId,
    DeliveryUpdate,
    Inbound,
    ReachabilityChange,
)
from timeline import leases
from timeline.acknowledge import acknowledge
from timeline.channel_state import DatabaseCursorStore, record_health
from timeline.crypto import SecretBox, SecretBoxError
from timeline.db import SessionFactory, is_conflict, is_unavailable
from timeline.events import EventBus, Subscription, next_event, publish_committed
from timeline.ingest import Ingestor, IngestResult
from timeline.models import Channel
from timeline.outbox import apply_delivery_update
from timeline.reachability import record_reachability

logger = logging.getLogger(__name__)
# A channel id inside a webhook path (connectors put it there: /webhooks/<kind>/<id>…).
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SpecLookup = Callable[[str], ConnectorSpec]

# A receiving side that ran this long before failing counts as having worked: the next
# failure starts the backoff from the beginning again.
_HEALTHY_RUN_SECONDS = 60.0
_FIRST_DELAY_SECONDS = 1.0


@dataclass(slots=True)
class _Running:
    """One channel's connector in this process."""

    fingerprint: tuple[str, str]  # kind and encrypted configuration: a change rebuilds it
    connector: Connector
    routes: dict[tuple[str, str], Handler]
    receiver: asyncio.Task[None] | None


class ChannelRuntime:
    """Builds, runs, rebuilds and stops the connectors of the active channels."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        box: SecretBox,
        ingestor: Ingestor,
        bus: EventBus,
        connectors: dict[ChannelId, Connector],
        receive: bool,
        holder: str,
        lease_ttl: timedelta = timedelta(seconds=30),
        reload_seconds: float = 30.0,
        backoff_cap_seconds: float = 300.0,
        specs: SpecLookup = spec_for,
        on_change: Callable[[], None] | None = None,
        public_url: str = "http://127.0.0.1:8080",
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._ingestor = ingestor
        self._bus = bus
        self._connectors = connectors  # shared with the dispatcher, which sends through them
        self._receive = receive
        self._holder = holder
        self._lease_ttl = lease_ttl
        self._renew_seconds = lease_ttl.total_seconds() / 3
        self._reload_seconds = reload_seconds
        self._backoff_cap = backoff_cap_seconds
        self._specs = specs
        self._on_change = on_change
        self._public_url = public_url.rstrip("/")
        self._running: dict[ChannelId, _Running] = {}
        # Every running connector's webhook routes, by (method, path): one look-up a request.
        self._routes: dict[tuple[str, str], Handler] = {}
        # Configurations that could not be built, so a broken channel is reported once,
        # not on every re-read.
        self._broken: dict[ChannelId, tuple[str, str]] = {}
        self._lock = asyncio.Lock()
        self._cursors = DatabaseCursorStore(sessions)

    @property
    def holder(self) -> str:
        """This process's name on the leases it holds."""
        return self._holder

    def running(self) -> frozenset[ChannelId]:
        """The channels whose connectors this process has built."""
        return frozenset(self._running)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the connectors in step with the channels table until `stop` is set."""
        while not stop.is_set():
            try:
                async with self._bus.subscribe() as events:
                    # Subscribed before reading, so no change between the two is missed.
                    await self._reload_logged()
                    await self._follow(events, stop)
            except Exception as err:  # the bus (Redis) failed: re-read on a timer meanwhile
                logger.warning(
                    "channel runtime lost the event bus (%r); re-reading on a timer", err
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._reload_seconds)

    async def _follow(self, events: Subscription, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_reload = loop.time() + self._reload_seconds
        while not stop.is_set():
            event = await next_event(events, stop, max(0.0, next_reload - loop.time()))
            if stop.is_set():
                return
            due = loop.time() >= next_reload
            if due or (event is not None and event.type.startswith("channel.")):
                await self._reload_logged()
                next_reload = loop.time() + self._reload_seconds

    async def reload_logged(self) -> None:
        """`reload`, logging instead of raising: the database may be down at start."""
        await self._reload_logged()

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except (SQLAlchemyError, OSError) as err:
            # The database is down or not migrated: the connectors running keep running.
            logger.warning("re-reading the channels failed: %s", err)
        except Exception as err:
            logger.warning("re-reading the channels failed: %r", err, exc_info=True)

    async def reload(self) -> None:
        """Build connectors for new channels, rebuild changed ones, stop removed or paused ones."""
        async with self._lock:
            async with self._sessions() as session:
                rows = (
                    await session.execute(
                        select(Channel.id, Channel.kind, Channel.config_encrypted).where(
                            Channel.paused.is_(False)
                        )
                    )
                ).all()
            wanted: dict[ChannelId, tuple[ConnectorSpec, tuple[str, str]]] = {}
            for row in rows:
                try:
                    spec = self._specs(row.kind)
                except KeyError:
                    continue  # a kind this version does not know (written by a newer one)
                if spec.factory is not None:
                    wanted[ChannelId(str(row.id))] = (spec, (row.kind, row.config_encrypted))
            changed = False
            for channel_id in list(self._running):
                want = wanted.get(channel_id)
                if want is None or want[1] != self._running[channel_id].fingerprint:
                    await self._stop(channel_id)
                    changed = True
            for channel_id in list(self._broken):
                if channel_id not in wanted or wanted[channel_id][1] != self._broken[channel_id]:
                    del self._broken[channel_id]
            for channel_id, (spec, fingerprint) in wanted.items():
                if channel_id not in self._running and channel_id not in self._broken:
                    changed |= await self._start(channel_id, spec, fingerprint)
        if changed and self._on_change is not None:
            self._on_change()

    async def close(self) -> None:
        """Stop every connector: receivers cancelled (their leases released), then closed."""
        async with self._lock:
            for channel_id in list(self._running):
                await self._stop(channel_id)

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        """The one route under /webhooks/: hands the request to the connector that serves it."""
        key = (request.method, request.path)
        handler = self._routes.get(key)
        if handler is None and await self._not_loaded_yet(request.path):
            # A channel created a moment ago, before its event reached this process: the
            # provider's first delivery must not be refused with 404.
            await self._reload_logged()
            handler = self._routes.get(key)
        if handler is None:
            raise web.HTTPNotFound(text="no running channel serves this webhook")
        return await handler(request)

    async def _not_loaded_yet(self, path: str) -> bool:
        """Whether the path names a channel that is active but not running here (one
        indexed look-up, so an unknown path costs no reload)."""
        ids = []
        for text in _UUID.findall(path.lower()):
            channel_id = ChannelId(text)
            if channel_id not in self._running and channel_id not in self._broken:
                ids.append(uuid.UUID(text))
        if not ids:
            return False
        try:
            async with self._sessions() as session:
                found = await session.scalar(
                    select(Channel.id)
                    .where(Channel.id.in_(ids), Channel.paused.is_(False))
                    .limit(1)
                )
        except (SQLAlchemyError, OSError):
            return False
        return found is not None

    async def _start(
        self, channel_id: ChannelId, spec: ConnectorSpec, fingerprint: tuple[str, str]
    ) -> bool:
        assert spec.factory is not None
        try:
            values = self._box.decrypt(fingerprint[1])
            config = spec.config.model_validate(values)
            # An optional configuration key of the kinds that can reply.
            acknowledgement = getattr(config, "acknowledgement", None)
            connector = spec.factory(channel_id, config, self._context(acknowledgement))
        except (SecretBoxError, ValidationError) as err:
            await self._broken_config(
                channel_id, fingerprint, f"stored configuration is unusable: {err}"
            )
            return False
        except Exception as err:  # a connector's bug must not stop the other channels
            logger.exception("channel %s: building its connector failed", channel_id)
            await self._broken_config(
                channel_id, fingerprint, f"the connector cannot start: {err!r}"
            )
            return False
        routes: dict[tuple[str, str], Handler] = {}
        for route in connector.routes():
            routes[(route.method.upper(), route.path)] = route.handler
        receiver = None
        if self._receive:
            receiver = asyncio.create_task(
                self._receive_loop(channel_id, connector), name=f"receive:{channel_id}"
            )
        self._running[channel_id] = _Running(fingerprint, connector, routes, receiver)
        self._routes.update(routes)
        self._connectors[channel_id] = connector
        logger.info("channel %s (%s): connector started", channel_id, spec.kind.value)
        return True

    async def _stop(self, channel_id: ChannelId) -> None:
        running = self._running.pop(channel_id)
        self._connectors.pop(channel_id, None)
        for key in running.routes:
            self._routes.pop(key, None)
        if running.receiver is not None:
            running.receiver.cancel()
            await asyncio.gather(running.receiver, return_exceptions=True)
        try:
            await running.connector.close()
        except Exception:
            logger.exception("channel %s: closing its connector failed", channel_id)
        logger.info("channel %s: connector stopped", channel_id)

    async def _broken_config(
        self, channel_id: ChannelId, fingerprint: tuple[str, str], reason: str
    ) -> None:
        self._broken[channel_id] = fingerprint
        await self._health(channel_id, ChannelHealth.CONFIG_ERROR, reason)

    def _context(self, acknowledgement: str | None) -> ConnectorContext:
        inbound: InboundSink = self._ingestor.ingest
        if acknowledgement:
            inbound = functools.partial(self._ingest_and_acknowledge, acknowledgement)
        return ConnectorContext(
            inbound=inbound,
            status=self._status,
            health=self._health,
            cursors=self._cursors,
            reachability=self._reachability,
            public_url=self._public_url,
        )

    async def _ingest_and_acknowledge(self, text: str, inbound: Inbound) -> IngestResult:
        result = await self._ingestor.ingest(inbound)
        try:
            await acknowledge(self._sessions, self._bus, inbound, result, text)
        except Exception:
            # The message is stored: failing here must not make the connector fetch it again.
            logger.exception("channel %s: queueing the acknowledgement failed", inbound.channel_id)
        return result

    async def _reachability(self, change: ReachabilityChange) -> bool:
        region = await self._ingestor.region(uuid.UUID(change.channel_id))
        try:
            return await record_reachability(self._sessions, self._bus, change, region=region)
        except Exception as err:
            if not is_conflict(err):
                raise
            # Two first reports for one contact raced to create its row: the other won.
            return await record_reachability(self._sessions, self._bus, change, region=region)

    async def _status(self, update: DeliveryUpdate) -> bool:
        return await apply_delivery_update(self._sessions, update, self._bus)

    async def _health(
        self, channel_id: ChannelId, health: ChannelHealth, reason: str | None
    ) -> None:
        try:
            event = await record_health(self._sessions, channel_id, health, reason)
        except Exception as err:
            logger.warning("channel %s: recording health %s failed: %r", channel_id, health, err)
            return
        if event is not None:
            await publish_committed(self._bus, [event])

    async def _receive_loop(self, channel_id: ChannelId, connector: Connector) -> None:
        """Run the channel's receiving side whenever this process holds its lease."""
        channel_uuid = uuid.UUID(channel_id)
        loop = asyncio.get_running_loop()
        delay = _FIRST_DELAY_SECONDS
        try:
            while True:
                if not await self._take_lease(channel_uuid):
                    await asyncio.sleep(self._renew_seconds * random.uniform(0.8, 1.2))
                    continue
                started = loop.time()
                try:
                    if await self._run_holding(channel_uuid, connector):
                        return  # nothing to receive here (webhook-only); the lease goes below
                    continue  # the lease went to another process: wait to take it back
                except AuthError as err:
                    await self._health(channel_id, ChannelHealth.BAD_CREDENTIALS, str(err))
                except TransientError as err:
                    await self._health(channel_id, ChannelHealth.TRANSIENT_DISCONNECT, str(err))
                except Exception as err:
                    logger.exception("channel %s: receiving failed", channel_id)
                    await self._health(
                        channel_id,
                        ChannelHealth.TRANSIENT_DISCONNECT,
                        f"the connector stopped unexpectedly: {err!r}",
                    )
                # Let another process try while this one backs off: its network may be fine.
                await self._release(channel_uuid)
                if loop.time() - started >= _HEALTHY_RUN_SECONDS:
                    delay = _FIRST_DELAY_SECONDS
                logger.info("channel %s: receiving again in %.0fs", channel_id, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self._backoff_cap)
        finally:
            await asyncio.shield(self._release(channel_uuid))

    async def _run_holding(self, channel_uuid: uuid.UUID, connector: Connector) -> bool:
        """Run the receiving side while renewing the lease. True when `run()` returned on
        its own, False when the lease was lost; the connector's errors propagate."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        logger.info("channel %s: receiving in this process (%s)", channel_uuid, self._holder)
        task = asyncio.create_task(connector.run(), name=f"connector:{channel_uuid}")
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._renew_seconds)
                if done:
                    task.result()
                    return True
                held = await self._take_lease(channel_uuid)
                if held:
                    renewed = loop.time()
                    continue
                # Not renewed: either another process has it, or the database cannot say.
                # Either way, once our lease may have expired someone else may receive.
                if held is False or loop.time() - renewed >= self._lease_ttl.total_seconds() * 0.9:
                    logger.warning("channel %s: lease lost; stopping its receiver", channel_uuid)
                    return False
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _take_lease(self, channel_uuid: uuid.UUID) -> bool | None:
        """True: held; False: another process holds it; None: the database did not answer."""
        try:
            return await leases.acquire(self._sessions, channel_uuid, self._holder, self._lease_ttl)
        except Exception as err:
            if not is_unavailable(err):
                # A deleted channel (foreign key) or a bug: the next re-read settles it.
                logger.warning("channel %s: taking its lease failed: %r", channel_uuid, err)
            return None

    async def _release(self, channel_uuid: uuid.UUID) -> None:
        with contextlib.suppress(Exception):
            await leases.release(self._sessions, channel_uuid, self._holder)
