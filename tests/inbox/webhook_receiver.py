"""A local webhook receiver for tests: an aiohttp server on 127.0.0.1 that records what
it is sent and answers from a script per path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers `script[path]` statuses in turn (the last one repeats; 200 by default)."""

    base_url: str = ""
    script: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str) -> str:
        return self.base_url + path

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        statuses = self.script.get(request.path, [200])
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        async with self.arrived:
            self.received.append(Received(request.path, dict(request.headers), body))
            self.arrived.notify_all()
        return web.Response(status=status, text=f"answer {status}")

    async def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` requests have arrived (the timeout only bounds a failing test)."""
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: len(self.received) >= count), timeout
            )


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A running receiver on a free port of 127.0.0.1."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{path:.*}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.base_url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
