"""GET /ws: authenticate, upgrade, say hello, resume, then relay frames both ways.

Authentication is the session cookie (a browser: its Origin must then be ours, or 403)
or a bearer token (Origin optional, checked when sent); 401 without either, all before
the upgrade. Client frames are checked at the edge (frames.py): a bad one gets an error
frame and the socket stays open; a binary frame closes it (1003).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from inbox.models import Role
from web.auth import TOKEN_ID_KEY, VISIBLE_CHANNELS_KEY, authenticate, session_cookie
from web.csrf import check_origin
from web.errors import ApiError
from web.realtime.audience import Viewer
from web.realtime.connection import UNSUPPORTED_DATA, Connection
from web.realtime.frames import (
    PONG,
    RESYNC,
    ClientFrame,
    FrameError,
    Kind,
    error_frame,
    parse_frame,
    server_frame,
)
from web.realtime.hub import FRAME_BURST, FRAME_WINDOW_SECONDS, Hub
from web.realtime.keys import HUB_KEY

logger = logging.getLogger(__name__)

# Sockets one user may hold on one process (tabs, devices); more is a runaway client.
MAX_CONNECTIONS_PER_USER = 20
FRAMES_REFUSED = (
    f"too many frames: at most {FRAME_BURST} every {FRAME_WINDOW_SECONDS:g} seconds;"
    " this one was dropped"
)
# aiohttp pings this often and drops a peer that does not answer in half of it.
PING_SECONDS = 30.0
# Frames over MAX_FRAME_BYTES get an error frame; past this, aiohttp closes the socket
# (1009) without reading it all into memory.
MAX_MESSAGE_BYTES = 64 * 1024


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /ws (ws_protocol)."""
    hub = request.app[HUB_KEY]
    user = await authenticate(request)
    cookie = session_cookie(request)
    check_origin(request, required=cookie is not None)
    if hub.count_of(user.id) >= MAX_CONNECTIONS_PER_USER:
        raise ApiError(
            429, "too_many_connections", f"at most {MAX_CONNECTIONS_PER_USER} sockets per user"
        )
    staff = user.role in (Role.ADMIN, Role.MANAGER)
    viewer = Viewer(user.id, None if staff else request.get(VISIBLE_CHANNELS_KEY, frozenset()))
    resume_from = request.query.get("last_event_id")

    ws = web.WebSocketResponse(heartbeat=PING_SECONDS, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    conn = Connection(ws, user.id, viewer, cookie=cookie, token_id=request.get(TOKEN_ID_KEY))
    writer: asyncio.Task[None] | None = None
    closer: asyncio.Task[None] | None = None
    try:
        # Registered first: every event after `last_id` reaches the queue from now on.
        await hub.open(conn)
        last_id = hub.last_id or await hub.bus.latest_id()
        replayed = None if resume_from is None else await hub.replay_for(viewer, resume_from)
        hello = {
            "connection_id": str(conn.id),
            "user_id": str(user.id),
            "last_event_id": last_id,
            "presence": await hub.presence_now(),
            "resumed": replayed is not None,
        }
        await ws.send_str(server_frame("hello", hello))
        if resume_from is not None and replayed is None:
            await ws.send_str(RESYNC)
        for _, text in replayed or ():
            await ws.send_str(text)
        skip_through = replayed[-1][0] if replayed else None
        writer = asyncio.create_task(conn.write(skip_through), name=f"ws-writer-{conn.id}")
        closer = asyncio.create_task(conn.close_when_dropped(writer), name=f"ws-close-{conn.id}")
        await _read(hub, conn)
    finally:
        # Shielded: aiohttp may cancel the handler when the peer goes (handler
        # cancellation), and the connection must still be forgotten and its presence
        # ended.
        await asyncio.shield(hub.release(conn, closer, writer))
    return ws


async def _read(hub: Hub, conn: Connection) -> None:
    async for message in conn.ws:
        if message.type is WSMsgType.BINARY:
            await conn.ws.close(code=UNSUPPORTED_DATA, message=b"text frames only")
            return
        if message.type is not WSMsgType.TEXT:
            continue
        if not hub.frame_limiter.hit_now(str(conn.user_id)):
            # Each frame may become a bus event seen by every process: a client that
            # floods is refused (it is told, and its frames are dropped) until it slows.
            conn.offer(None, error_frame(FRAMES_REFUSED))
            continue
        try:
            await handle_frame(hub, conn, parse_frame(message.data))
        except FrameError as err:
            conn.offer(None, error_frame(str(err)))
        except LookupError as err:
            conn.offer(None, error_frame(str(err)))


async def handle_frame(hub: Hub, conn: Connection, frame: ClientFrame) -> None:
    """Act on one checked client frame."""
    if frame.kind is Kind.PING:
        conn.offer(None, PONG)
    elif frame.kind is Kind.PRESENCE:
        assert frame.status is not None
        await hub.set_presence(conn.user_id, frame.status)
    else:
        assert frame.conversation_id is not None
        if frame.kind is Kind.VIEWING:
            await hub.viewing(conn, frame.conversation_id)
        elif frame.kind is Kind.LEFT:
            await hub.left(conn, frame.conversation_id)
        else:
            await hub.typing(conn, frame.conversation_id, frame.typing)
