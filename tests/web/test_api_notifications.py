"""@mentions in private notes and the notifications they make, over the REST API: who
may be mentioned, one notification per note and user (retries included), read only by
its recipient."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiohttp import ClientResponse
from sqlalchemy import func, select

from inbox.canned_models import Notification
from inbox.mentions import mention_token
from inbox.models import Role
from inbox.workflow_models import ConversationParticipant
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory
from timeline.events import Event
from timeline.models import Conversation, Message
from web.keys import BUS_KEY

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
HANG = 20  # bounds waits so a regression fails instead of hanging; never a speed check


async def _note(
    client: Client,
    user: ApiUser,
    conversation: Conversation,
    body: dict[str, Any],
    key: str | None = None,
) -> ClientResponse:
    headers = user.headers | ({"Idempotency-Key": key} if key else {})
    return await client.post(
        f"/api/v1/conversations/{conversation.id}/messages",
        json={"private": True, **body},
        headers=headers,
    )


async def _count(sessions: SessionFactory, model: type[Any]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def _notified(sessions: SessionFactory) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Notification.user_id, Notification.message_id).order_by(Notification.user_id)
        )
        return [(user_id, message_id) for user_id, message_id in rows]


async def _drain(events: Any) -> list[Event]:
    """The events published so far. The handler publishes before it answers, and the
    in-process bus queues at once: the short wait only ends the drain, it decides nothing."""
    found = []
    while (event := await events.get(timeout=0.2)) is not None:
        found.append(event)
    return found


async def test_a_note_notifies_each_mentioned_user_once(
    client: Client, sessions: SessionFactory, agent: ApiUser, admin: ApiUser, rows: Rows
) -> None:
    colleague = await make_api_user(sessions, Role.AGENT)
    manager = await make_api_user(sessions, Role.MANAGER)
    channel = await rows.home()
    await rows.member_of(channel, colleague.user)
    conversation = await rows.conversation(await rows.contact("Ann"), channel)
    text = (
        f"{mention_token('Colleague', colleague.user.id)} and "
        f"{mention_token('Me', agent.user.id)}: see above, "
        f"{mention_token('Again', colleague.user.id)}"
    )
    body = {"text": text, "mentions": [str(manager.user.id), str(colleague.user.id)]}
    async with client.app[BUS_KEY].subscribe() as events:
        response = await _note(client, agent, conversation, body, key="note-1")
        assert response.status == 201, await response.text()
        published = await _drain(events)
    note = await response.json()
    assert note["text"] == text and note["private"] is True

    # One each for the colleague and the manager; none for the author.
    expected = sorted(
        [(colleague.user.id, uuid.UUID(note["id"])), (manager.user.id, uuid.UUID(note["id"]))]
    )
    assert await _notified(sessions) == expected
    async with sessions() as session:
        followers = set(
            await session.scalars(
                select(ConversationParticipant.user_id).where(
                    ConversationParticipant.conversation_id == conversation.id
                )
            )
        )
    assert followers == {colleague.user.id, manager.user.id}

    kinds = [event.type for event in published]
    assert kinds.count("message.created") == 1
    assert kinds.count("conversation.updated") == 1
    created = [event.data for event in published if event.type == "notification.created"]
    async with sessions() as session:
        stored = {str(n.id): str(n.user_id) for n in await session.scalars(select(Notification))}
    assert sorted(created, key=lambda data: data["user_id"]) == sorted(
        (
            {
                "user_id": user_id,
                "notification_id": notification_id,
                "conversation_id": str(conversation.id),
                "kind": "mention",
            }
            for notification_id, user_id in stored.items()
        ),
        key=lambda data: data["user_id"],
    )

    # A retry with the same key replays the answer and notifies nobody again.
    async with client.app[BUS_KEY].subscribe() as events:
        retry = await _note(client, agent, conversation, body, key="note-1")
        assert retry.status == 201
        assert retry.headers.get("Idempotent-Replayed") == "true"
        assert await _drain(events) == []
    assert await _notified(sessions) == expected
    assert await _count(sessions, Message) == 1

    # The colleague sees it; the manager's is theirs alone.
    mine = await (await client.get("/api/v1/notifications", headers=colleague.headers)).json()
    assert mine["unread_count"] == 1
    [item] = mine["items"]
    assert item["kind"] == "mention" and item["message_id"] == note["id"]
    assert item["actor_id"] == str(agent.user.id) and item["read_at"] is None
    stolen = await client.post(f"/api/v1/notifications/{item['id']}/read", headers=manager.headers)
    assert stolen.status == 404
    admin_view = await (await client.get("/api/v1/notifications", headers=admin.headers)).json()
    assert admin_view == {"items": [], "next_cursor": None, "unread_count": 0}


async def test_concurrent_retries_notify_once(
    client: Client, sessions: SessionFactory, agent: ApiUser, admin: ApiUser, rows: Rows
) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.home())
    body = {"text": f"{mention_token('Admin', admin.user.id)} look"}
    async with asyncio.timeout(HANG):
        responses = await asyncio.gather(
            *(_note(client, agent, conversation, body, key="race") for _ in range(3))
        )
    assert [r.status for r in responses] == [201, 201, 201]
    assert len({(await r.json())["id"] for r in responses}) == 1
    assert await _count(sessions, Notification) == 1
    assert await _count(sessions, Message) == 1


async def test_who_cannot_be_mentioned_is_named_and_nothing_is_stored(
    client: Client, sessions: SessionFactory, agent: ApiUser, rows: Rows
) -> None:
    outsider = await make_api_user(sessions, Role.AGENT)  # works no channel of this one
    retired = await make_api_user(sessions, Role.AGENT, active=False)
    channel = await rows.home()
    await rows.member_of(channel, retired.user)
    conversation = await rows.conversation(await rows.contact("Ann"), channel)
    unknown = uuid.uuid4()
    text = f"{mention_token('Out', outsider.user.id)} {mention_token('Who', unknown)}"
    response = await _note(
        client, agent, conversation, {"text": text, "mentions": [str(retired.user.id)]}
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["fields"] == {
        f"mentions.{outsider.user.id}": "cannot see this conversation: not a member of its channel",
        f"mentions.{unknown}": "no such user",
        f"mentions.{retired.user.id}": "this user is deactivated",
    }
    assert await _count(sessions, Message) == 0
    assert await _count(sessions, Notification) == 0
    assert await _count(sessions, ConversationParticipant) == 0


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "field"),
    [
        # A public reply would show the markup (and a user id) to the customer.
        ({"private": False, "text": "@[Bob](user:0190f3a2-7b1c-7def-8abc-0123456789ab)"}, "text"),
        ({"private": False, "text": "hi @[Bob](user:bob)"}, "text"),
        ({"private": False, "text": "hi", "mentions": [str(uuid.uuid4())]}, "mentions"),
        ({"text": "ping @[Bob](user:42)"}, "text"),
        ({"text": "ping", "mentions": ["not-a-uuid"]}, "mentions.0"),
        ({"text": "ping", "mentions": "x"}, "mentions"),
        ({"text": "ping", "mentions": [str(uuid.uuid4())] * 51}, "mentions"),
    ],
)
async def test_bad_mentions_are_422(
    client: Client, agent: ApiUser, rows: Rows, body: dict[str, Any], field: str
) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.channel("sms"))
    await rows.member(agent.user, conversation.channel_id)
    response = await _note(client, agent, conversation, body)
    assert response.status == 422, await response.text()
    assert list((await response.json())["error"]["fields"]) == [field]


async def test_reading_notifications(
    client: Client, sessions: SessionFactory, agent: ApiUser, admin: ApiUser, rows: Rows
) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.home())
    for n in range(3):
        body = {"text": f"note {n}", "mentions": [str(admin.user.id)]}
        assert (await _note(client, agent, conversation, body)).status == 201
    base = "/api/v1/notifications"
    first = await (await client.get(f"{base}?limit=2", headers=admin.headers)).json()
    assert first["unread_count"] == 3 and len(first["items"]) == 2
    rest = await (
        await client.get(f"{base}?limit=2&cursor={first['next_cursor']}", headers=admin.headers)
    ).json()
    assert rest["next_cursor"] is None
    items = first["items"] + rest["items"]
    assert len({item["id"] for item in items}) == 3
    # Newest first.
    assert [item["created_at"] for item in items] == sorted(
        (item["created_at"] for item in items), reverse=True
    )

    newest, middle, oldest = items
    read = await client.post(f"{base}/{oldest['id']}/read", headers=admin.headers)
    assert read.status == 200 and (await read.json())["read_at"] is not None
    unread = await (await client.get(f"{base}?unread=true", headers=admin.headers)).json()
    assert [item["id"] for item in unread["items"]] == [newest["id"], middle["id"]]
    done = await (await client.get(f"{base}?unread=false", headers=admin.headers)).json()
    assert [item["id"] for item in done["items"]] == [oldest["id"]]

    # "Read all" up to what the client showed leaves what came later unread.
    until = middle["created_at"].replace("+00:00", "Z")
    marked = await client.post(f"{base}/read-all?until={until}", headers=admin.headers)
    assert await marked.json() == {"marked": 1, "unread_count": 1}
    count = await client.get(f"{base}/unread-count", headers=admin.headers)
    assert await count.json() == {"unread_count": 1}
    everything = await client.post(f"{base}/read-all", headers=admin.headers)
    assert await everything.json() == {"marked": 1, "unread_count": 0}
    # The author was notified of nothing, and cannot mark the admin's.
    assert (await client.post(f"{base}/{newest['id']}/read", headers=agent.headers)).status == 404
    theirs = await client.post(f"{base}/read-all", headers=agent.headers)
    assert await theirs.json() == {"marked": 0, "unread_count": 0}


@SQLITE_ONLY
async def test_hostile_notification_requests(client: Client, admin: ApiUser) -> None:
    base = "/api/v1/notifications"
    for query in ("unread=maybe", "cursor=x", "limit=500", "other=1"):
        assert (await client.get(f"{base}?{query}", headers=admin.headers)).status == 422, query
    assert (
        await client.post(f"{base}/read-all?until=yesterday", headers=admin.headers)
    ).status == 422
    assert (
        await client.post(f"{base}/read-all?until=2026-01-01T00:00:00", headers=admin.headers)
    ).status == 422
    for notification_id in ("nope", str(uuid.uuid4())):
        response = await client.post(f"{base}/{notification_id}/read", headers=admin.headers)
        assert response.status == 404
    assert (await client.get(base)).status == 401


async def test_an_assignment_by_someone_else_notifies_the_assignee(
    client: Client, sessions: SessionFactory, agent: ApiUser, admin: ApiUser, rows: Rows
) -> None:
    channel = await rows.home()
    conversation = await rows.conversation(await rows.contact("Ann"), channel)
    other = await rows.conversation(await rows.contact("Bob"), channel)
    async with client.app[BUS_KEY].subscribe() as events:
        given = await client.patch(
            f"/api/v1/conversations/{conversation.id}",
            json={"assignee_id": str(agent.user.id)},
            headers=admin.headers,
        )
        assert given.status == 200, await given.text()
        taken = await client.patch(
            f"/api/v1/conversations/{other.id}",
            json={"assignee_id": str(agent.user.id)},
            headers=agent.headers,
        )
        assert taken.status == 200, await taken.text()
        published = await _drain(events)
    listed = await client.get("/api/v1/notifications", headers=agent.headers)
    body = await listed.json()
    # Only the assignment by the admin: taking one yourself is no news to you.
    assert [(n["kind"], n["conversation_id"], n["actor_id"]) for n in body["items"]] == [
        ("assigned", str(conversation.id), str(admin.user.id))
    ]
    created = [e.data for e in published if e.type == "notification.created"]
    assert created == [
        {
            "user_id": str(agent.user.id),
            "notification_id": body["items"][0]["id"],
            "conversation_id": str(conversation.id),
            "kind": "assigned",
        }
    ]
