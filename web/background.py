"""A loop run as a task for the lifetime of an app's cleanup context.

Each worker-role loop (outbox, attachment fetches, task notices, SLA watch, webhooks,
retention) takes a `stop` event; on shutdown the event is set and the loop is given
`grace` seconds to finish its round (so what it committed is also published), then
cancelled (whatever it claimed lapses and is done again by the next round somewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def background(
    name: str, loop: Callable[[asyncio.Event], Awaitable[None]], *, grace: float | None = 0.0
) -> AsyncIterator[None]:
    """Run `loop(stop)` as a task named `name` while the block runs; on exit wait `grace`
    seconds for it to return (None: as long as it takes), then cancel it."""
    stop = asyncio.Event()
    task = asyncio.create_task(_run(loop, stop), name=name)
    task.add_done_callback(log_crash)
    try:
        yield
    finally:
        stop.set()
        done: set[asyncio.Task[None]] = set()
        if grace is None or grace > 0:
            done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            if grace:
                logger.warning("%s did not stop in %ss; cancelling it", name, grace)
            task.cancel()
            # Its error, if it crashed, is already logged (log_crash).
            await asyncio.gather(task, return_exceptions=True)


async def _run(loop: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event) -> None:
    await loop(stop)


def log_crash(task: asyncio.Task[None]) -> None:
    """Log a background task that ended with an error (a loop is never meant to)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("%s stopped: %r", task.get_name(), error, exc_info=error)
