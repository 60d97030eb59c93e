"""Runs routing rules and auto-assignment after inbound messages commit (issue 9), for the
worker's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def routing_engine(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context of the worker role."""
    yield
