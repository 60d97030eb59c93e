"""Wakes snoozed conversations when their time comes (issue 9)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def snooze_waker(app: web.Application) -> AsyncIterator[None]:
    """The worker role's loop, run for the app's lifetime (placeholder)."""
    yield
