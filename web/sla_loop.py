"""The worker's response-metrics recorder and SLA watch (inbox/sla.py), for the app's
lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from inbox.sla import SlaWatch
from web.keys import BUS_KEY, SESSIONS_KEY, SETTINGS_KEY

logger = logging.getLogger(__name__)

# How long a stopping worker lets a round finish, so what it committed is also published.
SLA_WATCH_STOP_SECONDS = 10.0


async def sla_watch(app: web.Application) -> AsyncIterator[None]:
    """Runs `SlaWatch` in a task while the app runs; stops it on cleanup."""
    watch = SlaWatch(app[SESSIONS_KEY], app[BUS_KEY])
    stop = asyncio.Event()
    task = asyncio.create_task(
        watch.run(stop, app[SETTINGS_KEY].sla_watch_interval_seconds), name="sla-watch"
    )
    task.add_done_callback(_log_crash)
    yield
    stop.set()
    # Every round is idempotent: one cut short is done again by the next round.
    done, _ = await asyncio.wait({task}, timeout=SLA_WATCH_STOP_SECONDS)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("%s stopped: %r", task.get_name(), error, exc_info=error)
