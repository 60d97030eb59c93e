"""One open websocket: who it is, what it may see, and its own bounded send queue.

The hub only ever puts frames in the queue (never awaits a socket), and one writer task
per connection drains it: a slow client delays nobody else. When a client falls
`SEND_QUEUE_SIZE` frames behind it is dropped with close code 1013 ("try again later");
it reconnects with its last event id and is sent what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from aiohttp import web

from web.realtime.audience import Viewer

logger = logging.getLogger(__name__)

SEND_QUEUE_SIZE = 1000
TRY_AGAIN_LATER = 1013
GOING_AWAY = 1001
UNSUPPORTED_DATA = 1003
# The user was deactivated or signed out elsewhere (4000-4999: the application's own).
SIGNED_OUT = 4401
# Closing a socket whose peer stopped reading can block; it is cut after this.
CLOSE_TIMEOUT_SECONDS = 5.0

Order = tuple[int, int]


class Connection:
    """A connected socket of a user; frames go in with `offer`."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        user_id: uuid.UUID,
        viewer: Viewer,
        *,
        cookie: str | None = None,
        token_id: uuid.UUID | None = None,
        queue_size: int = SEND_QUEUE_SIZE,
    ) -> None:
        self.id = uuid.uuid4()
        self.ws = ws
        self.user_id = user_id
        self.viewer = viewer
        self.cookie = cookie  # the session cookie that authenticated it; None for a token
        self.token_id = token_id  # the bearer token that did; None for a cookie
        self.viewing: set[uuid.UUID] = set()
        self.close_code: int | None = None
        self.dropped = asyncio.Event()
        self._queue: asyncio.Queue[tuple[Order | None, str]] = asyncio.Queue(queue_size)

    def offer(self, order: Order | None, text: str) -> None:
        """Queue a frame; a client too far behind is dropped instead."""
        if self.close_code is not None:
            return
        try:
            self._queue.put_nowait((order, text))
        except asyncio.QueueFull:
            logger.info("websocket %s is too slow; dropping it", self.id)
            self.drop(TRY_AGAIN_LATER)

    def drop(self, code: int) -> None:
        """Ask for the socket to be closed with `code` (the handler does it)."""
        if self.close_code is None:
            self.close_code = code
            self.dropped.set()

    async def write(self, skip_through: Order | None) -> None:
        """Send queued frames until cancelled; those with an order up to `skip_through`
        were already sent by a replay."""
        while True:
            order, text = await self._queue.get()
            if skip_through is not None and order is not None and order <= skip_through:
                continue
            await self.ws.send_str(text)

    async def close_when_dropped(self, writer: asyncio.Task[None]) -> None:
        """Wait for `drop`, then stop the writer and close the socket with its code."""
        await self.dropped.wait()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        code = self.close_code or GOING_AWAY
        # A peer that reads nothing never takes the close frame: give up after a while;
        # the handler then returns, and aiohttp cuts the connection.
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self.ws.close(code=code), CLOSE_TIMEOUT_SECONDS)
