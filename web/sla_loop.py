"""Records SLA breaches as they happen (issue 9)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def sla_watch(app: web.Application) -> AsyncIterator[None]:
    """The worker role's loop, run for the app's lifetime (placeholder)."""
    yield
