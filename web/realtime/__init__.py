"""Realtime for the agent UI: GET /ws (issue 9; the protocol: ws_protocol).

One hub per web process follows the bus and fans events out to the sockets it holds
(hub.py); several web processes each do so, through Redis pub/sub.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from timeline.models import utcnow
from web.background import background
from web.keys import BUS_KEY, READ_SESSIONS_KEY, SESSIONS_KEY
from web.realtime.connection import GOING_AWAY
from web.realtime.handler import websocket
from web.realtime.hub import Hub
from web.realtime.keys import HUB_KEY
from web.sessions import SESSION_STORE_KEY


async def realtime(app: web.Application) -> AsyncIterator[None]:
    """The websocket hub's lifetime (cleanup context of the web role)."""
    store = app[SESSION_STORE_KEY]

    async def session_user(cookie: str) -> uuid.UUID | None:
        return await store.user_id_of(cookie, utcnow())

    hub = Hub(
        app[BUS_KEY],
        app[SESSIONS_KEY],
        app[READ_SESSIONS_KEY],
        process=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        session_user=session_user,
    )
    app[HUB_KEY] = hub
    async with background("realtime-hub", hub.run):
        yield


async def _close_sockets(app: web.Application) -> None:
    # Before the server waits for its handlers to finish: open sockets would hold it up.
    if HUB_KEY in app:
        app[HUB_KEY].drop_all(GOING_AWAY)


def add_realtime_routes(app: web.Application) -> None:
    """Registers GET /ws."""
    app.router.add_get("/ws", websocket)
    app.on_shutdown.append(_close_sockets)
