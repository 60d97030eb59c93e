"""Runs routing rules and auto-assignment after inbound messages commit (issue 9), for the
worker's lifetime.

Each round routes the inbound messages nobody has routed yet (inbox/routing_engine.py),
then assigns what auto-assignment can (inbox/assignment.py). The database is the source
of truth; the bus only wakes the loop early: a new message, a changed conversation
(resolved, unassigned, snoozed: capacity frees), an agent's presence, changed routing
settings. A sweep every `SWEEP_SECONDS` catches what a lost bus event missed, and an
agent whose presence lapsed without an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from inbox.assignment import Assigner
from inbox.routing_engine import RoutingEngine
from timeline.bus_follow import follow
from timeline.events import Event, EventBus
from web.background import background
from web.keys import BUS_KEY, SESSIONS_KEY

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
# Rounds woken by the bus are spaced at least this much: a burst of events is one round.
MIN_GAP_SECONDS = 0.1
STOP_GRACE_SECONDS = 5.0
# Bus events that may make routing or assignment do something.
WAKE_TYPES = frozenset(
    {
        "message.created",
        "conversation.created",
        "conversation.reopened",
        "conversation.updated",
        "presence.changed",
        "routing.settings_changed",
    }
)


async def run(
    engine: RoutingEngine,
    assigner: Assigner,
    bus: EventBus,
    stop: asyncio.Event,
    interval: float = SWEEP_SECONDS,
) -> None:
    """Route and assign until `stop` is set; a failing round is logged and retried."""
    wake = asyncio.Event()

    def handle(event: Event) -> None:
        if event.type in WAKE_TYPES:
            wake.set()

    follower = asyncio.create_task(follow(bus, stop, handle, on_gap=wake.set))
    try:
        while not stop.is_set():
            wake.clear()
            busy = False
            try:
                busy = await engine.run_once() >= engine.batch_size
                await assigner.run_once()
            except Exception:
                logger.exception("routing round failed; trying again")
            if stop.is_set():
                break
            if busy:  # a full batch: more may be waiting right now
                await asyncio.sleep(0)
                continue
            waiter = asyncio.ensure_future(wake.wait())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    (waiter, stopping), timeout=interval, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
                stopping.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MIN_GAP_SECONDS)
    finally:
        stop.set()
        await follower


async def routing_engine(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context of the worker role."""
    sessions, bus = app[SESSIONS_KEY], app[BUS_KEY]
    engine = RoutingEngine(sessions, bus)
    assigner = Assigner(sessions, bus)
    async with background(
        "routing-engine",
        lambda stop: run(engine, assigner, bus, stop),
        grace=STOP_GRACE_SECONDS,
    ):
        yield
