"""The hub of one web process: ONE bus subscription, fanned out to its sockets.

Each bus event is looked at once: its audience computed (a conversation's channel
resolved through a cache), its frame serialized once, then offered to every local
connection allowed to receive it (a set lookup per socket). Upkeep runs beside it:
agents' visible channels re-read when memberships change and every minute, users
re-checked when `user.updated` names them, viewers expired, presence rows refreshed.

After a bus outage the hub asks the bus for what it missed (`replay`), or tells every
client to resync when the bus no longer has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from connectors.webform.ratelimit import MemoryRateLimiter
from inbox import presence
from inbox.membership import visible_channels
from inbox.models import ApiToken, Role, User
from timeline.bus_follow import follow
from timeline.db import SessionFactory
from timeline.events import Event, EventBus, event_order, publish_committed
from web.auth import SIGNED_OUT_EVENT
from web.realtime.audience import (
    COLLISION,
    TYPING,
    VIEWERS,
    Audience,
    Viewer,
    audience_of,
    contact_to_resolve,
    conversation_to_resolve,
    id_in,
)
from web.realtime.connection import CLOSE_TIMEOUT_SECONDS, SIGNED_OUT, Connection, Order
from web.realtime.conversation_channels import ConversationChannels
from web.realtime.frames import RESYNC, server_frame
from web.realtime.viewers import Viewers

logger = logging.getLogger(__name__)

TICK_SECONDS = 10.0  # viewers are swept this often
HEARTBEAT_SECONDS = 30.0  # presence rows refreshed (well within presence.PRESENCE_TTL)
MEMBERSHIP_REFRESH_SECONDS = 60.0
# Events waiting for the dispatcher; past this the hub is hopelessly behind and treats
# it as an outage (replay, else resync) rather than growing without bound.
INBOX_SIZE = 10_000
MEMBERSHIP_EVENTS = frozenset(
    {"channel.members_changed", "team.created", "team.updated", "team.deleted"}
)
# A user's sockets may send FRAME_BURST frames at once, then that many per window.
FRAME_BURST = 60
FRAME_WINDOW_SECONDS = 10.0
ASSIGNED = "conversation.assigned"
_USER_CHANGES = frozenset({"user.updated", SIGNED_OUT_EVENT})
PRESENCE_CHANGED = "presence.changed"
_GAP = None  # in the inbox: the bus was lost for a while

SessionCheck = Callable[[str], Any]  # cookie -> awaitable user id of the session, or None


class Hub:
    """Fan-out of bus events to this process's websockets, presence and collision."""

    def __init__(
        self,
        bus: EventBus,
        sessions: SessionFactory,
        read_sessions: SessionFactory,
        *,
        process: str,
        session_user: SessionCheck | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.bus = bus
        self._sessions = sessions
        self._read_sessions = read_sessions
        self.process = process
        self._session_user = session_user
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self.channels = ConversationChannels(read_sessions)
        self.viewers = Viewers(self._clock)
        self.connections: dict[uuid.UUID, Connection] = {}
        self.last_id: str | None = None
        self._last_order: Order | None = None
        self._inbox: asyncio.Queue[Event | None] = asyncio.Queue(INBOX_SIZE)
        self._overflowed = False
        self._wake = asyncio.Event()
        self._recheck: set[uuid.UUID] = set()
        self._refresh_all = False
        self._releasing: set[asyncio.Future[None]] = set()
        # Frames a user's sockets may send (web/realtime/handler.py), across their tabs.
        self.frame_limiter = MemoryRateLimiter(FRAME_BURST, FRAME_WINDOW_SECONDS)

    # --- connections --------------------------------------------------------------------

    def count_of(self, user_id: uuid.UUID) -> int:
        return sum(1 for c in self.connections.values() if c.user_id == user_id)

    async def open(self, conn: Connection) -> None:
        """Register a connection (it gets live events from now on) and record its
        presence; the user's availability change, if any, is announced."""
        self.connections[conn.id] = conn
        async with self._sessions() as session:
            before = (await presence.presence_of(session, [conn.user_id]))[conn.user_id]
            status = before.value if before is presence.Availability.AWAY else "online"
            await presence.connect(
                session,
                connection_id=conn.id,
                user_id=conn.user_id,
                status=status,
                process=self.process,
            )
            await session.commit()
        if before.value != status:
            await self._announce(conn.user_id, status)

    async def close(self, conn: Connection) -> None:
        """Forget a closed connection: its viewing ends, and the user goes offline when
        no fresh connection of theirs is left anywhere."""
        self.connections.pop(conn.id, None)
        for conversation_id in list(conn.viewing):
            await self.left(conn, conversation_id)
        async with self._sessions() as session:
            await presence.disconnect(session, conn.id)
            after = (await presence.presence_of(session, [conn.user_id]))[conn.user_id]
            await session.commit()
        if after is presence.Availability.OFFLINE:
            await self._announce(conn.user_id, after.value)

    def release(self, conn: Connection, *tasks: asyncio.Task[None] | None) -> asyncio.Future[None]:
        """End a connection whose handler is done: stop its `tasks`, close the socket and
        `close` it, in a task of the hub's that finishes even if the handler is
        cancelled (the hub waits for it when it stops)."""
        task = asyncio.ensure_future(self._release(conn, [t for t in tasks if t is not None]))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        return task

    async def _release(self, conn: Connection, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            with contextlib.suppress(ConnectionError):
                await asyncio.wait_for(conn.ws.close(), CLOSE_TIMEOUT_SECONDS)
            await self.close(conn)
        except Exception:
            logger.exception("could not record the end of websocket %s", conn.id)

    async def set_presence(self, user_id: uuid.UUID, status: str) -> None:
        async with self._sessions() as session:
            before = (await presence.presence_of(session, [user_id]))[user_id]
            await presence.set_status(session, user_id, status)
            await session.commit()
        if before.value != status:
            await self._announce(user_id, status)

    async def presence_now(self) -> dict[str, str]:
        """Everyone with a fresh connection: user id → online or away."""
        async with self._read_sessions() as session:
            found = await presence.presence_of(session)
        return {str(user_id): status.value for user_id, status in found.items()}

    async def _announce(self, user_id: uuid.UUID, status: str) -> None:
        event = Event(PRESENCE_CHANGED, {"user_id": str(user_id), "status": status})
        await publish_committed(self.bus, [event])

    def drop_all(self, code: int) -> None:
        for conn in list(self.connections.values()):
            conn.drop(code)

    # --- collision ----------------------------------------------------------------------

    async def conversation_channel(self, viewer: Viewer, conversation_id: uuid.UUID) -> uuid.UUID:
        """The channel of a conversation `viewer` may see; LookupError otherwise (the same
        answer for one that does not exist, so ids cannot be probed)."""
        channel_id = await self.channels.channel_of(conversation_id)
        if channel_id is None or not viewer.sees_channel(channel_id):
            raise LookupError("no such conversation")
        return channel_id

    async def viewing(self, conn: Connection, conversation_id: uuid.UUID) -> None:
        channel_id = await self.conversation_channel(conn.viewer, conversation_id)
        if conversation_id not in conn.viewing:
            conn.viewing.add(conversation_id)
            # The newcomer gets the current viewers at once, whatever the bus does.
            viewers = {*self.viewers.of(conversation_id), conn.user_id}
            data = {"conversation_id": str(conversation_id), "viewers": _ids(viewers)}
            conn.offer(None, server_frame(VIEWERS, data))
        await self._collision(VIEWERS, conversation_id, channel_id, conn.user_id, viewing=True)

    async def left(self, conn: Connection, conversation_id: uuid.UUID) -> None:
        channel_id = await self.conversation_channel(conn.viewer, conversation_id)
        conn.viewing.discard(conversation_id)
        still = any(
            c.user_id == conn.user_id and conversation_id in c.viewing
            for c in self.connections.values()
        )
        if not still:
            await self._collision(VIEWERS, conversation_id, channel_id, conn.user_id, viewing=False)

    async def typing(self, conn: Connection, conversation_id: uuid.UUID, typing: bool) -> None:
        channel_id = await self.conversation_channel(conn.viewer, conversation_id)
        await self._collision(TYPING, conversation_id, channel_id, conn.user_id, typing=typing)

    async def _collision(
        self,
        kind: str,
        conversation_id: uuid.UUID,
        channel_id: uuid.UUID,
        user_id: uuid.UUID,
        **flags: bool,
    ) -> None:
        data = {
            "conversation_id": str(conversation_id),
            "channel_id": str(channel_id),
            "user_id": str(user_id),
            **flags,
        }
        await publish_committed(self.bus, [Event(kind, data)])

    # --- following the bus --------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the bus, dispatch, and keep things fresh until `stop` is set."""
        tasks = [
            asyncio.create_task(follow(self.bus, stop, self._receive, on_gap=self._gap)),
            asyncio.create_task(self._dispatch_loop(stop)),
            asyncio.create_task(self._upkeep_loop(stop)),
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Connections ending now still record it (their database work is short).
            await asyncio.gather(*self._releasing, return_exceptions=True)

    def _receive(self, event: Event) -> None:
        if self._overflowed:
            return
        try:
            self._inbox.put_nowait(event)
        except asyncio.QueueFull:
            logger.warning("the websocket hub is behind; recovering what it missed")
            self._overflowed = True

    def _gap(self) -> None:
        if self._inbox.full():
            self._overflowed = True  # recovered the same way once the inbox drains
        else:
            self._inbox.put_nowait(_GAP)

    async def _dispatch_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._overflowed and self._inbox.empty():
                self._overflowed = False
                await self._recover()
                continue
            item = await self._inbox.get()
            try:
                if item is _GAP:
                    await self._recover()
                else:
                    await self.dispatch(item)
            except Exception:
                logger.exception("websocket fan-out of %s failed", getattr(item, "type", "a gap"))

    async def _recover(self) -> None:
        missed = None if self.last_id is None else await self.bus.replay(self.last_id)
        if missed is None:
            for conn in self.connections.values():
                conn.offer(None, RESYNC)
            return
        for event in missed:
            await self.dispatch(event)

    async def dispatch(self, event: Event) -> None:
        """Send one bus event to every local connection that may receive it."""
        order = None if event.id is None else event_order(event.id)
        if order is not None:
            if self._last_order is not None and order <= self._last_order:
                return  # already sent (a replay after an outage overlaps live events)
            self._last_order, self.last_id = order, event.id
        self._observe(event)
        frames = self._live_frames(event)
        if not frames:
            return
        audience = await self.audience(event)
        receivers = [c for c in self.connections.values() if c.viewer.may_receive(audience)]
        for text in frames:
            for conn in receivers:
                conn.offer(order, text)

    async def audience(self, event: Event) -> Audience:
        conversation_id = conversation_to_resolve(event)
        channel_id = None
        if conversation_id is not None:
            channel_id = await self.channels.channel_of(conversation_id)
        contact_channels = None
        contact_id = contact_to_resolve(event)
        # Only agents' sockets need a contact's channels: staff see every contact.
        if contact_id is not None and any(
            conn.viewer.channels is not None for conn in self.connections.values()
        ):
            contact_channels = await self.channels.channels_of_contact(contact_id)
        return audience_of(event, channel_id, contact_channels)

    def _observe(self, event: Event) -> None:
        """What the hub learns from an event for itself."""
        data = event.data
        if event.type.startswith("conversation.") and event.type not in COLLISION:
            conversation_id, channel_id = id_in(data, "conversation_id"), id_in(data, "channel_id")
            if conversation_id is not None and channel_id is not None:
                self.channels.remember(conversation_id, channel_id)
        if event.type in MEMBERSHIP_EVENTS:
            self._refresh_all = True
            self._wake.set()
        elif event.type in _USER_CHANGES and (user_id := id_in(data, "user_id")) is not None:
            self._recheck.add(user_id)  # only users connected here are looked at
            self._wake.set()

    def _live_frames(self, event: Event) -> list[str]:
        if event.type == VIEWERS:
            conversation_id, user_id = (
                id_in(event.data, "conversation_id"),
                id_in(event.data, "user_id"),
            )
            if conversation_id is None or user_id is None:
                return []
            if event.data.get("viewing") is True:
                changed = self.viewers.see(conversation_id, user_id)
            else:
                changed = self.viewers.leave(conversation_id, user_id)
            return [self._viewers_frame(conversation_id, event.id)] if changed else []
        return frames_of(event)

    def _viewers_frame(self, conversation_id: uuid.UUID, event_id: str | None) -> str:
        data = {
            "conversation_id": str(conversation_id),
            "viewers": _ids(self.viewers.of(conversation_id)),
        }
        return server_frame(VIEWERS, data, event_id)

    async def replay_for(self, viewer: Viewer, after_id: str) -> list[tuple[Order, str]] | None:
        """The frames of the events after `after_id` that `viewer` may receive; None when
        the bus no longer has them. Collision signals are moments, not history: skipped."""
        missed = await self.bus.replay(after_id)
        if missed is None:
            return None
        frames: list[tuple[Order, str]] = []
        for event in missed:
            order = None if event.id is None else event_order(event.id)
            if order is None or event.type in COLLISION:
                continue
            if viewer.may_receive(await self.audience(event)):
                frames.extend((order, text) for text in frames_of(event))
        return frames

    # --- upkeep -------------------------------------------------------------------------

    async def _upkeep_loop(self, stop: asyncio.Event) -> None:
        last_heartbeat = last_refresh = self._clock()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_SECONDS)
            self._wake.clear()
            now = self._clock()
            try:
                if self._refresh_all or now - last_refresh >= MEMBERSHIP_REFRESH_SECONDS:
                    self._refresh_all = False
                    last_refresh = now
                    await self.refresh_memberships()
                if self._recheck:
                    users, self._recheck = self._recheck, set()
                    await self.recheck_users(users)
                self.sweep_viewers()
                if now - last_heartbeat >= HEARTBEAT_SECONDS:
                    last_heartbeat = now
                    await self.heartbeat()
            except Exception:
                logger.exception("websocket hub upkeep failed; trying again next round")

    def sweep_viewers(self) -> None:
        for conversation_id in self.viewers.sweep():
            channel_id = self.channels.known(conversation_id)
            audience = Audience(channel_id=channel_id) if channel_id else Audience()
            text = self._viewers_frame(conversation_id, None)
            for conn in self.connections.values():
                if conn.viewer.may_receive(audience):
                    conn.offer(None, text)

    async def heartbeat(self) -> None:
        """Refresh this process's presence rows; expire those of processes that died."""
        async with self._sessions() as session:
            await presence.heartbeat(session, list(self.connections))
            gone = await presence.expire_stale(session)
            await session.commit()
        for user_id in gone:
            await self._announce(user_id, presence.Availability.OFFLINE.value)

    async def refresh_memberships(self) -> None:
        """Re-read the visible channels of every agent connected here (one query each)."""
        agents = {c.user_id for c in self.connections.values() if c.viewer.channels is not None}
        if not agents:
            return
        async with self._read_sessions() as session:
            seen = {user_id: await visible_channels(session, user_id) for user_id in agents}
        for conn in self.connections.values():
            if conn.user_id in seen and conn.viewer.channels is not None:
                conn.viewer.channels = seen[conn.user_id]

    async def recheck_users(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Apply a user's change to their sockets: deactivated (or signed out, for a
        cookie) closes them with 4401; a new role changes what they see."""
        connected = {c.user_id for c in self.connections.values()}
        for user_id in set(user_ids) & connected:
            async with self._read_sessions() as session:
                user = await session.get(User, user_id)
                active = user is not None and user.is_active
                channels = None
                if user is not None and user.role not in (Role.ADMIN, Role.MANAGER):
                    channels = await visible_channels(session, user_id)
            for conn in [c for c in self.connections.values() if c.user_id == user_id]:
                if not active or not await self._session_holds(conn):
                    conn.drop(SIGNED_OUT)
                else:
                    conn.viewer.channels = channels

    async def _session_holds(self, conn: Connection) -> bool:
        """Whether what opened the socket still stands: its session, or its token."""
        if conn.token_id is not None:
            async with self._read_sessions() as session:
                return await session.get(ApiToken, conn.token_id) is not None
        if conn.cookie is None or self._session_user is None:
            return True
        return bool(await self._session_user(conn.cookie) == conn.user_id)


def frames_of(event: Event) -> list[str]:
    """The frames a bus event becomes (serialized once for every receiver)."""
    if event.type == SIGNED_OUT_EVENT:
        return []  # for the hubs only: the sockets it concerns are closed
    frames = [server_frame(event.type, event.data, event.id)]
    if event.type == "conversation.updated" and ASSIGNED in (event.data.get("changes") or ()):
        data = {
            "conversation_id": event.data.get("conversation_id"),
            "assignee_id": event.data.get("assignee_id"),
            "by": event.data.get("by"),
        }
        frames.append(server_frame(ASSIGNED, data, event.id))
    return frames


def _ids(user_ids: Iterable[uuid.UUID]) -> list[str]:
    return sorted(str(user_id) for user_id in user_ids)
