"""Delivers outgoing webhooks with retries (issue 9)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def webhook_delivery(app: web.Application) -> AsyncIterator[None]:
    """The worker role's loop, run for the app's lifetime (placeholder)."""
    yield
