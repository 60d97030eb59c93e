"""The whole app as end-to-end tests drive it: real processes' code, one event loop, a
real database, an admin's API token, and polling helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from inbox.models import Role
from inbox.users import create_user, issue_token
from timeline.db import session_factory
from web.app import ROLES, create_app
from web.keys import ENGINE_KEY
from web.settings import Settings

Client = TestClient[web.Request, web.Application]
KEY = "end-to-end-test-secret-key-0123456789abcdef"
# Only there so that a broken pipeline fails the test instead of hanging it.
DEADLINE = 60.0


@dataclass
class Hub:
    """The running app (web and worker roles) with an admin's token."""

    client: Client
    headers: dict[str, str]

    async def get(self, path: str) -> Any:
        answer = await self.client.get(f"/api/v1{path}", headers=self.headers)
        assert answer.status == 200, await answer.text()
        return await answer.json()

    async def post(self, path: str, body: Any = None, status: int = 201) -> Any:
        answer = await self.client.post(f"/api/v1{path}", json=body, headers=self.headers)
        assert answer.status == status, await answer.text()
        return await answer.json()

    async def conversations(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.get("/conversations?limit=100"))["items"]
        return items

    async def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (
            await self.get(f"/conversations/{conversation_id}/messages?limit=100")
        )["items"]
        return items

    async def until(self, check: Callable[[], Awaitable[Any]], what: str) -> Any:
        """Poll `check` until it answers something true; that answer is returned."""
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while True:
            result = await check()
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not reached: {what}")
            await asyncio.sleep(0.1)


async def start_hub(
    aiohttp_client: Any,
    database_url: str,
    data_dir: Path,
    *,
    roles: frozenset[str] = ROLES,
    **settings: Any,
) -> Hub:
    """The app (`roles`) on `database_url` with an admin; `settings` override Settings
    fields."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": KEY,
        "redis_url": None,
        **settings,
    }
    client: Client = await aiohttp_client(create_app(Settings(**values), roles=roles))
    async with session_factory(client.app[ENGINE_KEY])() as session:
        admin = await create_user(
            session, email="admin@example.org", password="long-enough-pw", role=Role.ADMIN.value
        )
        token = await issue_token(session, admin, name="e2e")
    return Hub(client, {"Authorization": f"Bearer {token}"})
