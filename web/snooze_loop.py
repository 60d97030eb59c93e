"""Wakes snoozed conversations when their time comes (inbox/snooze.py), for the worker's
lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from inbox.snooze import SnoozeWaker
from web.background import background
from web.keys import BUS_KEY, SESSIONS_KEY, SETTINGS_KEY

# How long a stopping worker lets a round finish, so what it committed is also published.
SNOOZE_STOP_SECONDS = 10.0


async def snooze_waker(app: web.Application) -> AsyncIterator[None]:
    """Runs `SnoozeWaker` in a task while the app runs; stops it on cleanup."""
    waker = SnoozeWaker(app[SESSIONS_KEY], app[BUS_KEY])
    interval = app[SETTINGS_KEY].snooze_interval_seconds
    # A round is idempotent: a conversation it did not wake is woken by the next round.
    async with background(
        "snooze-waker",
        lambda stop: waker.run(stop, interval),
        grace=SNOOZE_STOP_SECONDS,
    ):
        yield
