"""The live parts of `python -m bench.inbox`: fan-out of inbound messages to connected
websockets, and replies from the API to the provider.

Fan-out: sockets connect to GET /ws with agents' bearer tokens (the protocol of
issue 9); this process ingests inbound SMS messages on the channel every agent sees,
with timeline.ingest.Ingestor on the same database and a RedisBus on the same Redis as
the web process; for each message, the time from `ingest` returning (committed and
published) to each socket's receipt of its `message.created`.

Replies: POST /api/v1/conversations/{id}/messages on open SMS conversations, sent by a
separate worker process woken through the bus, to a Twilio stand-in in this process;
the time from the API's 201 answer to the stand-in's receipt of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.inbox_data import SMS_ACCOUNT, SMS_AUTH_TOKEN
from connectors.types import ChannelId, ExternalId, IdentityKind, Inbound, SenderHandle
from tests.connectors.sms.twilio_standin import TwilioStandin
from timeline.crypto import SecretBox
from timeline.db import session_factory
from timeline.events import RedisBus
from timeline.ingest import Ingestor

CONNECT_CONCURRENCY = 50
HELLO_TIMEOUT = 30.0
DELIVERY_TIMEOUT = 10.0


def p99(ordered: Sequence[float]) -> float:
    """The 99th percentile of sorted values (the value at rank ceil-ish 0.99 n)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def summary(values_ms: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of latencies in ms."""
    ordered = sorted(values_ms)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": p99(ordered),
        "max_ms": ordered[-1],
        "n": float(len(ordered)),
    }


# --- the Twilio stand-in ---------------------------------------------------------------


@dataclass
class TimedStandin(TwilioStandin):
    """The tests' Twilio stand-in, also noting when each message request arrived (by the
    marker in its Body)."""

    arrivals: dict[str, float] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _create_message(self, request: web.Request) -> web.Response:
        at = time.perf_counter()
        answer = await super()._create_message(request)
        body = self.requests[-1].form.get("Body", "") if self.requests else ""
        marker = body.rsplit(" ", 1)[-1]
        self.arrivals.setdefault(marker, at)
        self.arrived.set()
        return answer


def standin() -> TimedStandin:
    """A stand-in for the benchmark's SMS account."""
    return TimedStandin(SMS_ACCOUNT, SMS_AUTH_TOKEN)


# --- websockets ------------------------------------------------------------------------


class WsUnavailable(RuntimeError):
    """GET /ws does not upgrade (not built yet, or refusing)."""


@dataclass
class Socket:
    """One connected websocket and the message.created frames it received, by message id."""

    ws: aiohttp.ClientWebSocketResponse
    user_id: str
    received: dict[str, float] = field(default_factory=dict)
    frames: int = 0


async def probe_ws(session: aiohttp.ClientSession, base: str, token: str) -> str:
    """Connect once and read the hello; its type, or WsUnavailable saying why not."""
    try:
        async with session.ws_connect(
            base + "/ws", headers={"Authorization": f"Bearer {token}"}, heartbeat=None
        ) as ws:
            frame = await ws.receive_json(timeout=HELLO_TIMEOUT)
            return str(frame.get("type"))
    except aiohttp.WSServerHandshakeError as err:
        raise WsUnavailable(f"GET /ws answered {err.status}") from err
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise WsUnavailable(f"GET /ws: {err!r}") from err


async def _connect(
    session: aiohttp.ClientSession, base: str, token: str, gate: asyncio.Semaphore
) -> Socket:
    async with gate:
        ws = await session.ws_connect(
            base + "/ws", headers={"Authorization": f"Bearer {token}"}, heartbeat=None
        )
        hello = await ws.receive_json(timeout=HELLO_TIMEOUT)
        if hello.get("type") != "hello":
            raise WsUnavailable(f"first frame was {hello!r}, not hello")
        return Socket(ws, str(hello.get("data", {}).get("user_id")))


async def _read(socket: Socket) -> None:
    """Note the arrival of every message.created; answer nothing (the client pongs
    protocol pings itself)."""
    async for frame in socket.ws:
        at = time.perf_counter()
        if frame.type != aiohttp.WSMsgType.TEXT:
            continue
        socket.frames += 1
        text = frame.data
        if '"message.created"' not in text:
            continue
        event = json.loads(text)
        if event.get("type") == "message.created":
            message_id = event.get("data", {}).get("message_id")
            if message_id:
                socket.received.setdefault(str(message_id), at)


@dataclass(frozen=True)
class FanoutSetup:
    """What the fan-out run needs."""

    bases: list[str]  # web processes; sockets are spread over them
    tokens: list[str]  # one per agent
    sockets_per_agent: int
    channel_id: uuid.UUID
    messages: int
    interval: float  # seconds between messages


async def fanout(
    setup: FanoutSetup, url: str, redis_url: str, secret: str, data_dir: Path
) -> dict[str, float]:
    """Connect the sockets, ingest the messages, and time every delivery."""
    from timeline.db import create_engine

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        plan = [
            (setup.bases[(i * setup.sockets_per_agent + k) % len(setup.bases)], token)
            for i, token in enumerate(setup.tokens)
            for k in range(setup.sockets_per_agent)
        ]
        started = time.perf_counter()
        sockets = list(await asyncio.gather(*(_connect(session, b, t, gate) for b, t in plan)))
        print(
            f"    {len(sockets)} sockets connected in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        readers = [asyncio.create_task(_read(socket)) for socket in sockets]
        engine = create_engine(url)
        bus = RedisBus(redis_url)
        ingestor = Ingestor(
            session_factory(engine),
            bus,
            reopen_window=timedelta(days=7),
            data_dir=data_dir,
            secret_box=SecretBox(secret),
        )
        await ingestor.start()
        sent: dict[str, float] = {}
        run = uuid.uuid4().hex[:8]
        rng = random.Random(4)
        try:
            await asyncio.sleep(1.0)  # let presence and hello traffic settle
            for number in range(setup.messages):
                inbound = Inbound(
                    channel_id=ChannelId(str(setup.channel_id)),
                    external_id=ExternalId(f"SMbench{run}{number:08d}"),
                    sender=SenderHandle(IdentityKind.PHONE, f"+1917{rng.randrange(10**7):07d}"),
                    text=f"Fan-out message {number}: is anyone there?",
                    sent_at=datetime.now(UTC),
                )
                result = await ingestor.ingest(inbound)
                at = time.perf_counter()
                if result.message_id is None:
                    raise RuntimeError(f"message {number} was not stored: {result}")
                sent[str(result.message_id)] = at
                await asyncio.sleep(setup.interval)
            for _ in range(int(DELIVERY_TIMEOUT * 10)):  # until every socket has all
                if all(len(s.received.keys() & sent.keys()) == len(sent) for s in sockets):
                    break
                await asyncio.sleep(0.1)
        finally:
            await ingestor.close()
            await bus.close()
            await engine.dispose()
            for socket in sockets:
                await socket.ws.close()
            for reader in readers:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    latencies = []
    missing = 0
    for socket in sockets:
        for message_id, at in sent.items():
            received = socket.received.get(message_id)
            if received is None:
                missing += 1
            else:
                latencies.append((received - at) * 1000)
    if not latencies:
        raise RuntimeError("no socket received any message.created")
    figures = summary(latencies)
    figures["missing"] = float(missing)
    figures["sockets"] = float(len(sockets))
    return figures


# --- replies ---------------------------------------------------------------------------


# An SMS channel sends at most one message a second (Twilio's long-code rate; the
# dispatcher holds the channel's slot that long): replies on one number closer together
# would measure that pacing, not the path from the API to the provider.
CHANNEL_GAP = 1.2


async def replies(
    base: str,
    token: str,
    targets: Sequence[tuple[uuid.UUID, uuid.UUID]],
    api: TimedStandin,
    count: int,
) -> dict[str, float]:
    """Post `count` replies one after another (each waits until the stand-in has it, or
    a timeout) to `targets` (conversation id, channel id) in turn, no channel more than
    once per CHANNEL_GAP; from the 201 answer to the stand-in's receipt.

    First, one reply on each channel, timed apart (`cold_*`): the first send after the
    worker starts pays for what every later one reuses (the provider client's connection,
    the database's prepared statements) and would otherwise be the p99 of 100."""
    run = uuid.uuid4().hex[:8]
    rng = random.Random(5)
    last_on: dict[uuid.UUID, float] = {}
    firsts = list({channel_id: (c, channel_id) for c, channel_id in reversed(targets)}.values())
    cold: list[float] = []
    from_answer: list[float] = []
    from_request: list[float] = []
    lost = 0
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:

        async def one(number: int, target: tuple[uuid.UUID, uuid.UUID]) -> tuple[float, float]:
            conversation_id, channel_id = target
            wait = last_on.get(channel_id, 0.0) + CHANNEL_GAP - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            marker = f"r{run}n{number}"
            body = {"text": f"Thanks, we're on it. Ref {marker}"}
            api.arrived.clear()
            posted = time.perf_counter()
            async with session.post(
                f"{base}/api/v1/conversations/{conversation_id}/messages", json=body
            ) as answer:
                text = await answer.text()
                answered = time.perf_counter()
                last_on[channel_id] = answered
                if answer.status != 201:
                    raise RuntimeError(f"reply answered {answer.status}: {text[:300]}")
            deadline = answered + 5.0
            while marker not in api.arrivals and time.perf_counter() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(api.arrived.wait(), deadline - time.perf_counter())
                api.arrived.clear()
            await asyncio.sleep(rng.uniform(0.05, 0.15))
            arrived = api.arrivals.get(marker)
            if arrived is None:
                return math.nan, math.nan
            return (arrived - answered) * 1000, (arrived - posted) * 1000

        for number, target in enumerate(firsts):
            cold.append((await one(-1 - number, target))[0])
        for number in range(count):
            after_answer, after_request = await one(number, targets[number % len(targets)])
            if math.isnan(after_answer):
                lost += 1
            else:
                from_answer.append(after_answer)
                from_request.append(after_request)
    if not from_answer:
        raise RuntimeError("the stand-in received no reply")
    figures = summary(from_answer)
    figures["lost"] = float(lost)
    figures["from_request_p99_ms"] = p99(sorted(from_request))
    figures["from_request_p50_ms"] = statistics.median(from_request)
    received = [ms for ms in cold if not math.isnan(ms)]
    figures["cold_n"] = float(len(cold))
    figures["cold_lost"] = float(len(cold) - len(received))
    figures["cold_max_ms"] = max(received, default=math.nan)
    figures["cold_first_ms"] = cold[0] if cold else math.nan
    return figures


def as_text(figures: dict[str, Any]) -> str:
    """p50 / p99 / max as one line."""
    return (
        f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
        f"max {figures['max_ms']:.1f} ms (n={int(figures['n'])})"
    )
