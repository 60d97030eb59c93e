"""Small helpers shared by the Telegram tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from connectors.telegram.connector import TelegramConnector


async def wait_until(predicate: Callable[[], bool], what: str, limit: float = 15.0) -> None:
    """Wait for `predicate` to hold; fails the test naming `what` when it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def webhook_app(connector: TelegramConnector) -> web.Application:
    """An application serving the connector's routes, as the hub's web role does."""
    app = web.Application()
    app.add_routes(connector.routes())
    return app


async def post_update(
    client: TestClient[Any, Any], connector: TelegramConnector, body: bytes, secret: str | None
) -> int:
    """POST one update to the connector's webhook; answers the status."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    response = await client.post(connector.webhook_path, data=body, headers=headers)
    await response.read()
    return response.status
