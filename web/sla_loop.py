"""The worker's response-metrics recorder and SLA watch (inbox/sla.py), for the app's
lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from inbox.sla import SlaWatch
from web.background import background
from web.keys import BUS_KEY, SESSIONS_KEY, SETTINGS_KEY

logger = logging.getLogger(__name__)

# How long a stopping worker lets a round finish, so what it committed is also published.
SLA_WATCH_STOP_SECONDS = 10.0


async def sla_watch(app: web.Application) -> AsyncIterator[None]:
    """Runs `SlaWatch` in a task while the app runs; stops it on cleanup."""
    watch = SlaWatch(app[SESSIONS_KEY], app[BUS_KEY])
    interval = app[SETTINGS_KEY].sla_watch_interval_seconds
    # Every round is idempotent: one cut short is done again by the next round.
    async with background(
        "sla-watch", lambda stop: watch.run(stop, interval), grace=SLA_WATCH_STOP_SECONDS
    ):
        yield
