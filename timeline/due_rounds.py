"""The shape of a worker loop that handles what has become due, a batch at a time.

Task notices, snooze wake-ups and SLA breaches all claim due rows with the database's
clock (shared by every worker, so two workers agree on what is due), commit, then
publish. A full batch means more may be due right now, so the next round starts at once;
otherwise the loop sleeps until the interval passes or it is stopped. A failing round is
logged and tried again: a worker loop never dies of one bad round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from timeline.clock import database_now
from timeline.events import EventBus

logger = logging.getLogger(__name__)


class DueRounds:
    """Subclasses implement `run_once` (handle up to `batch_size`, return how many)."""

    name = "due rounds"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        *,
        batch_size: int = 100,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self._sessions = sessions
        self._bus = bus
        self.batch_size = batch_size
        self._clock = clock  # None: the database's clock, shared by every worker

    async def now(self, session: AsyncSession) -> datetime:
        """The time due-ness is judged by."""
        return self._clock() if self._clock is not None else await database_now(session)

    async def before_round(self) -> None:
        """Work each round does first (nothing by default)."""

    async def run_once(self) -> int:
        raise NotImplementedError

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Run rounds until `stop` is set."""
        while not stop.is_set():
            try:
                await self.before_round()
                handled = await self.run_once()
            except Exception:
                logger.exception("%s: round failed; trying again", self.name)
                handled = 0
            if handled < self.batch_size:  # a full batch: more may be due right now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
