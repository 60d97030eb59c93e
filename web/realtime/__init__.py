"""Realtime for the agent UI: GET /ws (issue 9)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def realtime(app: web.Application) -> AsyncIterator[None]:
    """The websocket hub's lifetime (cleanup context of the web role)."""
    yield


def add_realtime_routes(app: web.Application) -> None:
    """Registers GET /ws."""
