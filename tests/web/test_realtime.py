"""GET /ws: the protocol (ws_protocol), who receives what, presence, collision signals,
resume, and a hub that outlives a bus outage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from inbox.models import Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from tests.web.test_sessions import login, make_user, with_cookie
from timeline.channel_state import HEALTH_CHANGED
from timeline.events import Event, InProcessBus
from web.keys import BUS_KEY, SESSIONS_KEY
from web.realtime.audience import Viewer
from web.realtime.connection import TRY_AGAIN_LATER, Connection
from web.realtime.frames import RESYNC
from web.realtime.hub import Hub
from web.realtime.keys import HUB_KEY
from web.realtime.viewers import Viewers

WS = aiohttp.ClientWebSocketResponse
# Only there so that a broken pipeline fails the test instead of hanging it.
DEADLINE = 30.0
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def connect(client: Client, who: ApiUser | dict[str, str], path: str = "/ws") -> WS:
    headers = who.headers if isinstance(who, ApiUser) else who
    ws: WS = await client.ws_connect(path, headers=headers)
    return ws


async def frame(ws: WS) -> dict[str, Any]:
    message = await ws.receive(timeout=DEADLINE)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    value: dict[str, Any] = message.json()
    return value


async def answer(ws: WS) -> dict[str, Any]:
    """The next frame that is not presence news (which may come at any time)."""
    while (value := await frame(ws))["type"] == "presence.changed":
        pass
    return value


async def hello(ws: WS) -> dict[str, Any]:
    first = await frame(ws)
    assert first["type"] == "hello" and first["id"] is None, first
    data: dict[str, Any] = first["data"]
    return data


async def until(ws: WS, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Frames up to and including the first for which `done` is true."""
    seen = []
    while True:
        value = await frame(ws)
        seen.append(value)
        if done(value):
            return seen


def of_type(kind: str, **data: Any) -> Callable[[dict[str, Any]], bool]:
    def check(value: dict[str, Any]) -> bool:
        return value["type"] == kind and all(value["data"].get(k) == v for k, v in data.items())

    return check


async def publish(client: Client, *events: Event) -> None:
    await client.app[BUS_KEY].publish(events)


@contextlib.asynccontextmanager
async def opened(
    client: Client, who: ApiUser | dict[str, str], path: str = "/ws"
) -> AsyncIterator[WS]:
    ws = await connect(client, who, path)
    try:
        yield ws
    finally:
        await ws.close()


# --- the protocol ----------------------------------------------------------------------------


@SQLITE
async def test_handshake_hello_ping_and_bad_frames(client: Client, agent: ApiUser) -> None:
    for headers, status in [
        ({}, 401),
        ({"Authorization": "Bearer sb_nonsense"}, 401),
        ({**agent.headers, "Origin": "https://evil.example"}, 403),
    ]:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws", headers=headers)
        assert refused.value.status == status

    async with opened(client, agent) as ws:  # a bearer token needs no Origin
        first = await hello(ws)
        assert first["user_id"] == str(agent.user.id)
        assert first["resumed"] is False
        assert first["presence"] == {str(agent.user.id): "online"}
        uuid.UUID(first["connection_id"])

        hostile = [
            "not json",
            "[1, 2]",
            '{"type": 5}',
            '{"type": "subscribe"}',
            '{"type": "presence", "status": "offline"}',
            '{"type": "viewing"}',
            '{"type": "viewing", "conversation_id": "../etc"}',
            '{"type": "viewing", "conversation_id": "\\u0000"}',
            json.dumps({"type": "typing", "conversation_id": str(uuid.uuid4()), "typing": "yes"}),
            json.dumps({"type": "viewing", "conversation_id": str(uuid.uuid4())}),  # unknown
            json.dumps({"type": "ping", "pad": "x" * 5000}),
        ]
        for text in hostile:
            await ws.send_str(text)
            error = await answer(ws)
            assert error["type"] == "error" and error["id"] is None, (text, error)
            assert error["data"]["message"]
        await ws.send_str('{"type": "ping"}')
        assert await answer(ws) == {"id": None, "type": "pong", "data": {}}

        await ws.send_bytes(b"\x00binary")
        while (closing := await ws.receive(timeout=DEADLINE)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1003


@SQLITE
async def test_cookie_sessions_need_our_origin(client: Client) -> None:
    user = await make_user(client.app[SESSIONS_KEY])
    _, cookie = await login(client, user.email)
    assert cookie is not None
    for origin, status in [(None, 403), ("https://evil.example", 403)]:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws", headers=with_cookie(cookie, origin=origin))
        assert refused.value.status == status
    async with opened(client, with_cookie(cookie)) as ws:
        assert (await hello(ws))["user_id"] == str(user.id)


# --- who receives what ---------------------------------------------------------------------


async def test_agents_get_their_channels_only(
    client: Client, agent: ApiUser, admin: ApiUser, rows: Rows
) -> None:
    manager = await make_api_user(client.app[SESSIONS_KEY], Role.MANAGER)
    contact = await rows.contact("Ann")
    mine = await rows.conversation(contact, await rows.home())
    other_channel = await rows.channel(name="not the agent's")
    theirs = await rows.conversation(contact, other_channel)
    stranger = await rows.contact("Olga")  # only on a channel the agent does not work
    await rows.conversation(stranger, other_channel)
    async with (
        opened(client, agent) as agent_ws,
        opened(client, admin) as admin_ws,
        opened(client, manager) as manager_ws,
    ):
        for ws in (agent_ws, admin_ws, manager_ws):
            await hello(ws)
        # A real change of a conversation the agent cannot see, by the admin.
        patched = await client.patch(
            f"/api/v1/conversations/{theirs.id}",
            json={"assignee_id": str(admin.user.id)},
            headers=admin.headers,
        )
        assert patched.status == 200, await patched.text()
        await publish(
            client,
            # No channel_id: the hub finds the conversation's channel.
            Event("message.created", {"conversation_id": str(theirs.id), "message_id": "m1"}),
            Event("message.delivery", {"conversation_id": str(theirs.id), "state": "sent"}),
            Event("notification.created", {"user_id": str(admin.user.id), "notification_id": "n1"}),
            # A contact the agent sees through one of its conversations, and one they do not.
            Event("contact.updated", {"contact_id": str(contact.id)}),
            Event("contact.updated", {"contact_id": str(stranger.id)}),
            Event("contact.merged", {"survivor_id": str(stranger.id), "merged_id": "x"}),
            Event("contact.merged", {"survivor_id": str(contact.id), "merged_id": "y"}),
            Event("note.added", {"note_id": "n3", "contact_id": str(stranger.id)}),
            Event("note.added", {"note_id": "n4", "contact_id": str(contact.id)}),
            # The agent's own channel, yet its health (the provider's error) is staff only.
            Event(HEALTH_CHANGED, {"channel_id": str(mine.channel_id), "health": "connected"}),
            Event("message.created", {"conversation_id": str(mine.id), "message_id": "marker"}),
            Event("notification.created", {"user_id": str(agent.user.id), "notification_id": "n2"}),
        )
        marker = of_type("notification.created", notification_id="n2")
        got = await until(agent_ws, marker)
        got = [f for f in got if f["type"] != "presence.changed"]
        assert [(f["type"], f["data"].get("message_id")) for f in got] == [
            ("contact.updated", None),
            ("contact.merged", None),
            ("note.added", None),
            ("message.created", "marker"),
            ("notification.created", None),
        ]
        assert got[0]["data"] == {"contact_id": str(contact.id)}
        assert got[1]["data"]["survivor_id"] == str(contact.id)
        assert got[2]["data"]["note_id"] == "n4"
        assert all(f["id"] for f in got)

        for ws in (admin_ws, manager_ws):
            seen = await until(ws, of_type("message.created", message_id="marker"))
            kinds = [f["type"] for f in seen if not f["type"].startswith("presence.")]
            assert kinds == [
                "conversation.updated",
                "conversation.assigned",
                "message.created",
                "message.delivery",
                *(["notification.created"] if ws is admin_ws else []),
                "contact.updated",
                "contact.updated",
                "contact.merged",
                "contact.merged",
                "note.added",
                "note.added",
                HEALTH_CHANGED,
                "message.created",
            ]
            assigned = next(f for f in seen if f["type"] == "conversation.assigned")
            assert assigned["data"] == {
                "conversation_id": str(theirs.id),
                "assignee_id": str(admin.user.id),
                "by": str(admin.user.id),
            }
            updated = next(f for f in seen if f["type"] == "conversation.updated")
            assert assigned["id"] == updated["id"]

        # Collision on a conversation the agent cannot see is refused, like an unknown one.
        await agent_ws.send_json({"type": "viewing", "conversation_id": str(theirs.id)})
        refused = await answer(agent_ws)
        assert refused["type"] == "error"
        # Events naming the same conversation cost one lookup however many sockets; each
        # contact event one more (a contact's conversations change).
        assert client.app[HUB_KEY].channels.queries <= 2 + 6


async def test_membership_and_deactivation_apply_to_open_sockets(
    client: Client, agent: ApiUser, admin: ApiUser, rows: Rows
) -> None:
    contact = await rows.contact("Ann")
    await rows.home()
    later = await rows.channel(name="joined later")
    conversation = await rows.conversation(contact, later)
    async with opened(client, agent) as ws:
        await hello(ws)
        answer = await client.put(
            f"/api/v1/channels/{later.id}/members",
            json={"user_ids": [str(agent.user.id)], "team_ids": []},
            headers=admin.headers,
        )
        assert answer.status in (200, 204), await answer.text()
        hub = client.app[HUB_KEY]
        await hub.refresh_memberships()  # what the membership event triggers, done now
        await publish(client, Event("message.created", {"conversation_id": str(conversation.id)}))
        await until(ws, of_type("message.created", conversation_id=str(conversation.id)))

        patched = await client.patch(
            f"/api/v1/users/{agent.user.id}", json={"is_active": False}, headers=admin.headers
        )
        assert patched.status == 200
        while (message := await ws.receive(timeout=DEADLINE)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 4401


# --- presence and collision -----------------------------------------------------------------


async def test_presence_is_seen_by_others_and_a_second_tab_keeps_a_user_online(
    client: Client, agent: ApiUser, admin: ApiUser
) -> None:
    me = str(agent.user.id)
    async with opened(client, admin) as watcher:
        await hello(watcher)
        first = await connect(client, agent)
        assert (await hello(first))["presence"][me] == "online"
        await until(watcher, of_type("presence.changed", user_id=me, status="online"))
        second = await connect(client, agent)
        await hello(second)
        await first.send_json({"type": "presence", "status": "away"})
        await until(watcher, of_type("presence.changed", user_id=me, status="away"))
        await first.close()
        # The second tab holds the user: the next presence news is the one it causes.
        await second.send_json({"type": "presence", "status": "online"})
        news = await until(watcher, of_type("presence.changed", user_id=me))
        assert [f["data"]["status"] for f in news if f["type"] == "presence.changed"] == ["online"]
        await second.close()
        await until(watcher, of_type("presence.changed", user_id=me, status="offline"))


async def test_viewers_and_typing_between_two_agents(client: Client, rows: Rows) -> None:
    sessions = client.app[SESSIONS_KEY]
    ann = await make_api_user(sessions, Role.AGENT)
    bob = await make_api_user(sessions, Role.AGENT)
    rows.members.extend([ann.user, bob.user])
    conversation = await rows.conversation(await rows.contact("Cy"), await rows.home())
    cid = str(conversation.id)
    async with opened(client, ann) as ann_ws, opened(client, bob) as bob_ws:
        await hello(ann_ws)
        await hello(bob_ws)
        await ann_ws.send_json({"type": "viewing", "conversation_id": cid})
        await until(ann_ws, of_type("conversation.viewers", viewers=[str(ann.user.id)]))
        await bob_ws.send_json({"type": "viewing", "conversation_id": cid})
        both = sorted([str(ann.user.id), str(bob.user.id)])
        await until(bob_ws, of_type("conversation.viewers", viewers=both))
        await until(ann_ws, of_type("conversation.viewers", viewers=both))

        await bob_ws.send_json({"type": "typing", "conversation_id": cid, "typing": True})
        typing = await until(ann_ws, of_type("conversation.typing"))
        assert typing[-1]["data"]["user_id"] == str(bob.user.id)
        assert typing[-1]["data"]["typing"] is True

        await bob_ws.send_json({"type": "left", "conversation_id": cid})
        await until(ann_ws, of_type("conversation.viewers", viewers=[str(ann.user.id)]))


def test_viewers_expire_without_a_resend() -> None:
    now = [0.0]
    viewers = Viewers(lambda: now[0], expiry=60)
    conversation, ann, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert viewers.see(conversation, ann) is True
    now[0] = 30
    assert viewers.see(conversation, bob) is True
    now[0] = 40
    assert viewers.see(conversation, ann) is False  # a re-send refreshes: until 100
    now[0] = 89
    assert viewers.sweep() == []
    now[0] = 90
    assert viewers.sweep() == [conversation] and viewers.of(conversation) == [ann]
    assert viewers.leave(conversation, ann) is True and viewers.leave(conversation, ann) is False
    assert viewers.of(conversation) == []


# --- resume ---------------------------------------------------------------------------------


async def test_resume_sends_exactly_the_missed_events(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    mine = await rows.conversation(await rows.contact("Ann"), await rows.home())
    theirs = await rows.conversation(await rows.contact("Bo"), await rows.channel(name="x"))

    def created(conversation: Any, n: int) -> Event:
        data = {"conversation_id": str(conversation.id), "message_id": str(n)}
        return Event("message.created", data)

    async with opened(client, agent) as ws:
        await hello(ws)
        await publish(client, created(mine, 1))
        last = (await until(ws, of_type("message.created")))[-1]["id"]
    await publish(client, created(mine, 2), created(theirs, 3), created(mine, 4))
    async with opened(client, agent, f"/ws?last_event_id={last}") as ws:
        first = await hello(ws)
        assert first["resumed"] is True
        await publish(client, created(mine, 5))
        got = await until(ws, of_type("message.created", message_id="5"))
        assert [f["data"].get("message_id") for f in got if f["type"] == "message.created"] == [
            "2",
            "4",
            "5",
        ]
    for stale in ("1-1", "garbage", "9" * 19 + "-0"):
        async with opened(client, agent, f"/ws?last_event_id={stale}") as ws:
            assert (await hello(ws))["resumed"] is False
            assert (await answer(ws))["type"] == "resync"


# --- the hub itself -------------------------------------------------------------------------


class FlakyBus(InProcessBus):
    """An in-process bus whose first subscriptions fail, as Redis does when it is down."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Any]:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("redis is down")
        async with super().subscribe() as events:
            yield events


@SQLITE
async def test_the_hub_survives_a_bus_that_fails_at_first(client: Client, rows: Rows) -> None:
    bus = FlakyBus(failures=2)
    sessions = client.app[SESSIONS_KEY]
    hub = Hub(bus, sessions, sessions, process="test")
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.home())
    conn = Connection(Any, uuid.uuid4(), Viewer(uuid.uuid4(), None))  # type: ignore[arg-type]
    hub.connections[conn.id] = conn
    stop = asyncio.Event()
    running = asyncio.create_task(hub.run(stop))
    try:
        event = Event("message.created", {"conversation_id": str(conversation.id)})
        queue = conn._queue
        while queue.qsize() < 2:  # publish until the hub is subscribed again
            await bus.publish([event])
            await asyncio.sleep(0.05)
        # What was published while it was away is lost: its clients are told to resync.
        assert queue.get_nowait() == (None, RESYNC)
        order, text = queue.get_nowait()
        assert order is not None and '"message.created"' in text
    finally:
        stop.set()
        await asyncio.wait_for(running, DEADLINE)


def test_a_slow_client_is_dropped_not_waited_for() -> None:
    conn = Connection(Any, uuid.uuid4(), Viewer(uuid.uuid4(), None), queue_size=2)  # type: ignore[arg-type]
    conn.offer(None, "a")
    conn.offer(None, "b")
    assert conn.close_code is None
    conn.offer(None, "c")
    assert conn.close_code == TRY_AGAIN_LATER and conn.dropped.is_set()


async def closed_with(ws: WS) -> int:
    """The close code, after whatever frames were still on their way."""
    while (message := await ws.receive(timeout=DEADLINE)).type is aiohttp.WSMsgType.TEXT:
        pass
    assert message.type is aiohttp.WSMsgType.CLOSE, message
    return int(message.data)


@SQLITE
async def test_signing_out_and_revoking_a_token_close_what_they_opened(
    client: Client, agent: ApiUser
) -> None:
    user = await make_user(client.app[SESSIONS_KEY])
    signed_in, cookie = await login(client, user.email)
    _, other_cookie = await login(client, user.email)
    assert cookie is not None and other_cookie is not None
    async with (
        opened(client, with_cookie(cookie)) as signed_out,
        opened(client, with_cookie(other_cookie)) as still_in,
        opened(client, agent) as by_token,
    ):
        for ws in (signed_out, still_in, by_token):
            await hello(ws)
        ended = await client.delete(
            "/api/v1/session", headers=with_cookie(cookie, signed_in["csrf_token"])
        )
        assert ended.status == 204
        assert await closed_with(signed_out) == 4401
        # The user's other session is still good: its socket answers.
        await still_in.send_json({"type": "ping"})
        assert (await answer(still_in))["type"] == "pong"

        tokens = await client.get(f"/api/v1/users/{agent.user.id}/tokens", headers=agent.headers)
        [token] = (await tokens.json())["items"]
        revoked = await client.delete(
            f"/api/v1/users/{agent.user.id}/tokens/{token['id']}", headers=agent.headers
        )
        assert revoked.status == 204
        assert await closed_with(by_token) == 4401


@SQLITE
async def test_a_flooding_client_is_refused_not_relayed(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.home())
    typing = {"type": "typing", "conversation_id": str(conversation.id), "typing": True}
    async with client.app[BUS_KEY].subscribe() as events, opened(client, agent) as ws:
        await hello(ws)
        burst = client.app[HUB_KEY].frame_limiter.burst
        for _ in range(burst + 5):
            await ws.send_json(typing)
        await ws.send_json({"type": "ping"})
        refused = await until(ws, lambda value: value["type"] == "error")
        assert "too many frames" in refused[-1]["data"]["message"]
        relayed = 0
        while (event := await events.get(timeout=1.0)) is not None:
            relayed += event.type == "conversation.typing"
        # At most the burst went out on the bus; the rest was dropped at the door.
        assert 0 < relayed <= burst
