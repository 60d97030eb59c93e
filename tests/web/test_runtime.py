"""The connector runtime: connectors follow the channels table; receiving runs under a
lease in exactly one runtime; failures are recorded and retried; webhooks are dispatched."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.base import Capabilities, Connector, ConnectorContext
from connectors.config import ChannelConfig
from connectors.errors import AuthError
from connectors.registry import REGISTRY, ConnectorSpec
from connectors.types import ChannelId, ChannelKind, Outbound, ProviderMessageId, SendResult
from timeline import leases
from timeline.crypto import SecretBox
from timeline.db import SessionFactory, session_factory
from timeline.events import InProcessBus
from timeline.ingest import Ingestor
from timeline.models import Channel
from web.runtime import ChannelRuntime

KEY = "runtime-test-secret-key-0123456789abcdef"


class FakeConnector:
    """Records its life; `run` does what the test scripts through `behaviour`."""

    def __init__(self, channel_id: ChannelId, config: ChannelConfig, world: World) -> None:
        self.channel_id = channel_id
        self.capabilities = Capabilities()
        self.config = config
        self.world = world
        self.closed = False

    async def run(self) -> None:
        self.world.runs.append(self)
        self.world.active.add(id(self))
        try:
            behaviour = self.world.behaviours.pop(0) if self.world.behaviours else None
            if behaviour is not None:
                await behaviour()
            await asyncio.Event().wait()  # receive until cancelled
        finally:
            self.world.active.discard(id(self))

    async def close(self) -> None:
        self.closed = True

    async def send(self, message: Outbound) -> SendResult:
        return SendResult(ProviderMessageId("p-1"))

    def routes(self) -> list[web.RouteDef]:
        async def hook(request: web.Request) -> web.Response:
            return web.Response(text=f"hook of {self.channel_id}")

        return [web.post(f"/webhooks/fake/{self.channel_id}", hook)]


class World:
    """Everything the fake connectors did, shared by every runtime of a test."""

    def __init__(self) -> None:
        self.built: list[FakeConnector] = []
        self.runs: list[FakeConnector] = []
        self.active: set[int] = set()
        self.behaviours: list[Callable[[], Awaitable[None]]] = []

    def factory(
        self, channel_id: ChannelId, config: ChannelConfig, context: ConnectorContext
    ) -> Connector:
        connector = FakeConnector(channel_id, config, self)
        self.built.append(connector)
        return connector

    def specs(self, kind: str) -> ConnectorSpec:
        spec = REGISTRY[ChannelKind(kind)]
        return replace(spec, factory=self.factory) if kind == "webform" else spec


async def eventually(check: Callable[[], Any], timeout: float = 30.0) -> None:
    """Wait until `check()` is true (polls; the timeout only bounds a failing test)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(KEY)


@pytest.fixture
async def ingestor(
    sessions: SessionFactory, box: SecretBox, tmp_path: Path
) -> AsyncIterator[Ingestor]:
    ing = Ingestor(
        sessions, InProcessBus(), reopen_window=timedelta(days=7), data_dir=tmp_path, secret_box=box
    )
    await ing.start()
    yield ing
    await ing.close()


@pytest.fixture
def world() -> World:
    return World()


class Runtimes:
    """Starts runtimes as a process would, and stops them as a clean shutdown does."""

    def __init__(self, sessions: SessionFactory, box: SecretBox, ingestor: Ingestor, world: World):
        self.started: dict[int, tuple[ChannelRuntime, asyncio.Event, asyncio.Task[None]]] = {}
        self._sessions = sessions
        self._box = box
        self._ingestor = ingestor
        self._world = world

    async def __call__(self, holder: str, **options: Any) -> ChannelRuntime:
        sessions, box, ingestor, world = self._sessions, self._box, self._ingestor, self._world
        bus = options.pop("bus", InProcessBus())
        runtime = ChannelRuntime(
            sessions=sessions,
            box=box,
            ingestor=ingestor,
            bus=bus,
            connectors={},
            receive=options.pop("receive", True),
            holder=holder,
            lease_ttl=options.pop("lease_ttl", timedelta(seconds=3)),
            reload_seconds=options.pop("reload_seconds", 3600.0),
            backoff_cap_seconds=options.pop("backoff_cap_seconds", 1.0),
            specs=world.specs,
            **options,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        self.started[id(runtime)] = (runtime, stop, task)
        return runtime

    async def stop(self, runtime: ChannelRuntime) -> None:
        _, stop, task = self.started.pop(id(runtime))
        stop.set()
        await task
        await runtime.close()


MakeRuntime = Runtimes


@pytest.fixture
async def make_runtime(
    sessions: SessionFactory, box: SecretBox, ingestor: Ingestor, world: World
) -> AsyncIterator[Runtimes]:
    runtimes = Runtimes(sessions, box, ingestor, world)
    yield runtimes
    for runtime, _, _ in list(runtimes.started.values()):
        await runtimes.stop(runtime)


async def add_channel(sessions: SessionFactory, box: SecretBox, **config: Any) -> uuid.UUID:
    values = {"allowed_origins": ["https://example.com"], **config}
    channel = Channel(kind="webform", name="form", config_encrypted=box.encrypt(values))
    async with sessions() as session, session.begin():
        session.add(channel)
    return channel.id


async def test_connectors_follow_the_channels_table(
    sessions: SessionFactory, box: SecretBox, world: World, make_runtime: MakeRuntime
) -> None:
    bus = InProcessBus()
    runtime = await make_runtime("a", bus=bus)
    channel_id = await add_channel(sessions, box)
    # Not yet announced: the runtime learns of it from the event (or the periodic re-read).
    await bus.publish([_event("channel.created", channel_id)])
    await eventually(lambda: ChannelId(str(channel_id)) in runtime.running())
    first = world.built[-1]
    await eventually(lambda: first in world.runs)

    async with sessions() as session, session.begin():
        await session.execute(
            update(Channel)
            .where(Channel.id == channel_id)
            .values(config_encrypted=box.encrypt({"allowed_origins": ["https://other.example"]}))
        )
    await bus.publish([_event("channel.updated", channel_id)])
    await eventually(lambda: len(world.built) == 2)
    second = world.built[-1]
    assert first.closed and not second.closed
    assert second.config.model_dump()["allowed_origins"] == ["https://other.example"]

    async with sessions() as session, session.begin():
        await session.execute(update(Channel).where(Channel.id == channel_id).values(paused=True))
    await bus.publish([_event("channel.updated", channel_id)])
    await eventually(lambda: second.closed)
    assert runtime.running() == frozenset()
    assert world.active == set()

    async with sessions() as session, session.begin():
        await session.execute(update(Channel).where(Channel.id == channel_id).values(paused=False))
    await bus.publish([_event("channel.updated", channel_id)])
    await eventually(lambda: len(world.built) == 3)

    async with sessions() as session, session.begin():
        await session.execute(delete(Channel).where(Channel.id == channel_id))
    await bus.publish([_event("channel.deleted", channel_id)])
    await eventually(lambda: world.built[-1].closed)
    assert runtime.running() == frozenset()


async def test_a_missed_event_is_caught_by_the_periodic_reread(
    sessions: SessionFactory, box: SecretBox, world: World, make_runtime: MakeRuntime
) -> None:
    runtime = await make_runtime("a", reload_seconds=0.2)
    channel_id = await add_channel(sessions, box)
    await eventually(lambda: ChannelId(str(channel_id)) in runtime.running())


async def test_receiving_runs_in_exactly_one_runtime_and_moves_when_it_stops(
    sessions: SessionFactory, box: SecretBox, world: World, make_runtime: MakeRuntime
) -> None:
    channel_id = await add_channel(sessions, box)
    a = await make_runtime("a")
    b = await make_runtime("b")
    await eventually(lambda: len(world.built) == 2 and len(world.runs) == 1)
    # Both built the connector (sending and webhooks work everywhere); one receives.
    holder = await leases.holder_of(sessions, channel_id)
    assert holder in ("a", "b")
    # Several renewals later it is still the same one, and only one.
    await asyncio.sleep(2.5)
    assert len(world.runs) == 1 and len(world.active) == 1
    assert await leases.holder_of(sessions, channel_id) == holder

    await make_runtime.stop(a if holder == "a" else b)  # a clean stop gives the lease up
    await eventually(lambda: len(world.runs) == 2 and len(world.active) == 1)
    assert await leases.holder_of(sessions, channel_id) == ("b" if holder == "a" else "a")


async def test_a_dead_holders_lease_is_taken_over_only_after_it_expires(
    sessions: SessionFactory, box: SecretBox, world: World, make_runtime: MakeRuntime
) -> None:
    channel_id = await add_channel(sessions, box)
    ttl = timedelta(seconds=2)
    # A holder that died without releasing: its lease row is still there, unexpired.
    assert await leases.acquire(sessions, channel_id, "dead", ttl)
    await make_runtime("b", lease_ttl=ttl)
    await eventually(lambda: len(world.built) == 1)
    assert world.runs == []
    assert await leases.holder_of(sessions, channel_id) == "dead"
    await eventually(lambda: len(world.runs) == 1)
    assert await leases.holder_of(sessions, channel_id) == "b"


async def test_leases_are_exclusive_renewable_and_released(
    sessions: SessionFactory, box: SecretBox
) -> None:
    channel_id = await add_channel(sessions, box)
    ttl = timedelta(seconds=60)
    assert await leases.acquire(sessions, channel_id, "a", ttl)
    assert not await leases.acquire(sessions, channel_id, "b", ttl)
    assert await leases.acquire(sessions, channel_id, "a", ttl)  # renewal
    await leases.release(sessions, channel_id, "b")  # not b's: nothing happens
    assert await leases.holder_of(sessions, channel_id) == "a"
    await leases.release(sessions, channel_id, "a")
    assert await leases.holder_of(sessions, channel_id) is None
    assert await leases.acquire(sessions, channel_id, "b", ttl)


async def test_racing_takers_get_one_lease(sessions: SessionFactory, box: SecretBox) -> None:
    channel_id = await add_channel(sessions, box)
    won = await asyncio.gather(
        *(leases.acquire(sessions, channel_id, f"w{i}", timedelta(seconds=60)) for i in range(8)),
        return_exceptions=True,
    )
    # On SQLite a taker may find the database busy (an error, not a lease); never two winners.
    assert sum(1 for result in won if result is True) == 1


async def test_a_failing_receiver_is_recorded_and_run_again(
    sessions: SessionFactory, box: SecretBox, world: World, make_runtime: MakeRuntime
) -> None:
    async def crash() -> None:
        raise RuntimeError("socket exploded")

    async def refused() -> None:
        raise AuthError("535 authentication failed")

    world.behaviours = [crash, refused]
    channel_id = await add_channel(sessions, box)
    await make_runtime("a")
    await eventually(lambda: len(world.runs) == 3)  # crashed, refused, then running
    async with sessions() as session:
        channel = await session.get(Channel, channel_id)
        assert channel is not None
        # The last failure is what health shows until the connector reports otherwise.
        assert channel.health == "bad_credentials"
        assert channel.health_reason == "535 authentication failed"
    assert len(world.active) == 1


async def test_one_channels_broken_configuration_does_not_stop_another(
    sessions: SessionFactory, box: SecretBox, world: World, make_runtime: MakeRuntime
) -> None:
    broken = Channel(kind="webform", name="broken", config_encrypted="not-a-token")
    async with sessions() as session, session.begin():
        session.add(broken)
    good = await add_channel(sessions, box)
    runtime = await make_runtime("a")
    await eventually(lambda: ChannelId(str(good)) in runtime.running())
    assert ChannelId(str(broken.id)) not in runtime.running()
    async with sessions() as session:
        row = await session.get(Channel, broken.id)
        assert row is not None and row.health == "config_error"
        assert row.health_reason is not None and "unusable" in row.health_reason


async def test_webhooks_reach_the_connector_that_serves_them(
    sessions: SessionFactory,
    box: SecretBox,
    world: World,
    make_runtime: MakeRuntime,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Any,
    database_url: str,
    tmp_path: Path,
) -> None:
    from web.app import create_app
    from web.settings import Settings

    monkeypatch.setitem(REGISTRY, ChannelKind.WEBFORM, world.specs("webform"))
    channel_id = await add_channel(sessions, box)
    settings = Settings(database_url=database_url, data_dir=tmp_path, secret_key=KEY)
    client = await aiohttp_client(create_app(settings, roles=frozenset({"web"})))
    answer = await client.post(f"/webhooks/fake/{channel_id}")
    assert answer.status == 200
    assert await answer.text() == f"hook of {channel_id}"
    assert (await client.post(f"/webhooks/fake/{uuid.uuid4()}")).status == 404
    # A channel created a moment ago (no event reached this process yet) is served on
    # the provider's first delivery, not refused with 404.
    late = await add_channel(sessions, box)
    answer = await client.post(f"/webhooks/fake/{late}")
    assert answer.status == 200
    assert await answer.text() == f"hook of {late}"
    # The web role serves webhooks but never receives.
    assert world.runs == []


def _event(kind: str, channel_id: uuid.UUID) -> Any:
    from timeline.events import Event

    return Event(kind, {"channel_id": str(channel_id), "kind": "webform"})
