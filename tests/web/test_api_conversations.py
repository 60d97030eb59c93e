"""Conversations over the REST API: filters, paging, messages, replies and notes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connectors.types import (
    ChannelId,
    ExternalId,
    IdentityKind,
    Inbound,
    SenderHandle,
    ThreadHints,
)
from tests.web.conftest import T0, ApiUser, Client, Rows, minutes
from timeline.models import Conversation, Message, OutboundJob
from web import auth
from web.keys import BUS_KEY, INGESTOR_KEY, SESSIONS_KEY


@pytest.fixture
def rows(agent_rows: Rows) -> Rows:
    """The `agent` works every channel made here (membership: test_api_accounts.py)."""
    return agent_rows


async def get_json(client: Client, user: ApiUser, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=user.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def listed(client: Client, user: ApiUser, **params: Any) -> list[str]:
    page = await get_json(client, user, "/api/v1/conversations", **params)
    return [item["id"] for item in page["items"]]


async def test_filters(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann, bob = await rows.contact("Ann"), await rows.contact("Bob")
    mail, sms = await rows.channel("email"), await rows.channel("sms")
    team = uuid.uuid4()
    a = await rows.conversation(ann, mail, last_activity_at=T0 + minutes(3))
    b = await rows.conversation(
        bob, mail, status="pending", assignee_id=agent.user.id, last_activity_at=T0 + minutes(2)
    )
    c = await rows.conversation(
        ann, sms, status="resolved", team_id=team, last_activity_at=T0 + minutes(1)
    )
    ids = {x: str(x.id) for x in (a, b, c)}

    assert await listed(client, agent) == [ids[a], ids[b], ids[c]]
    assert await listed(client, agent, status="pending") == [ids[b]]
    assert await listed(client, agent, assignee=str(agent.user.id)) == [ids[b]]
    assert await listed(client, agent, assignee="none") == [ids[a], ids[c]]
    assert await listed(client, agent, team_id=str(team)) == [ids[c]]
    assert await listed(client, agent, channel_id=str(mail.id)) == [ids[a], ids[b]]
    assert await listed(client, agent, contact_id=str(ann.id)) == [ids[a], ids[c]]
    assert await listed(client, agent, contact_id=str(ann.id), status="open") == [ids[a]]
    assert await listed(client, agent, team_id=str(uuid.uuid4())) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "closed"}, "status"),
        ({"assignee": "someone"}, "assignee"),
        ({"channel_id": "not-a-uuid"}, "channel_id"),
        ({"label": "a\x01b"}, "label"),
        ({"priority": "sky-high"}, "priority"),
        ({"unread": "maybe"}, "unread"),
    ],
)
async def test_invalid_filters_are_422(
    client: Client, agent: ApiUser, params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/v1/conversations", params=params, headers=agent.headers)
    assert response.status == 422
    assert list((await response.json())["error"]["fields"]) == [field]


async def test_list_pages_by_last_activity(client: Client, agent: ApiUser, rows: Rows) -> None:
    contact, channel = await rows.contact("Ann"), await rows.channel()
    made = []
    for n in range(5):
        other = await rows.contact(f"c{n}")
        # Two conversations per timestamp: the id orders them, across page boundaries.
        made.append(await rows.conversation(other, channel, last_activity_at=T0 + minutes(n // 2)))
    made.append(await rows.conversation(contact, channel, last_activity_at=T0 + minutes(9)))
    expected = [str(c.id) for c in sorted(made, key=lambda c: (c.last_activity_at, c.id))][::-1]

    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await get_json(client, agent, "/api/v1/conversations", **params)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert cursor is None
    assert seen == expected


async def test_get_conversation_shape(client: Client, agent: ApiUser, rows: Rows) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.channel("sms"))
    body = await get_json(client, agent, f"/api/v1/conversations/{conversation.id}")
    assert body == {
        "id": str(conversation.id),
        "contact_id": str(conversation.contact_id),
        "channel_id": str(conversation.channel_id),
        "status": "open",
        "subject": None,
        "assignee_id": None,
        "team_id": None,
        "created_at": "2024-05-01T09:00:00Z",
        "last_activity_at": "2024-05-01T09:00:00Z",
        "first_response_at": None,
        "waiting_since": None,
        "resolved_at": None,
        "message_count": 0,
        "snoozed_until": None,
        "priority": "none",
        "labels": [],
        "participants": [],
        "last_seq": 0,
        "unread": 0,
        "reopen_count": 0,
    }
    missing = await client.get(f"/api/v1/conversations/{uuid.uuid4()}", headers=agent.headers)
    assert missing.status == 404


async def test_messages_oldest_first_with_delivery_and_attachments(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.channel("email"))
    inbound = await rows.message(
        conversation, text="hi", attachment=("photo.jpg", "image/jpeg", 1234)
    )
    failed = await rows.message(
        conversation,
        direction="out",
        text="answer",
        sent_at=T0 + minutes(1),
        delivery_state="failed_permanent",
        delivery_error="mailbox unavailable",
    )
    later = await rows.message(conversation, text="thanks", sent_at=T0 + minutes(2))
    path = f"/api/v1/conversations/{conversation.id}/messages"

    first = await get_json(client, agent, path, limit=2)
    second = await get_json(client, agent, path, limit=2, cursor=first["next_cursor"])
    items = first["items"] + second["items"]
    assert [m["id"] for m in items] == [str(inbound.id), str(failed.id), str(later.id)]
    assert second["next_cursor"] is None
    assert items[0]["direction"] == "in" and items[0]["delivery"] is None
    assert items[0]["attachments"] == [
        {
            "id": items[0]["attachments"][0]["id"],
            "filename": "photo.jpg",
            "content_type": "image/jpeg",
            "size": 1234,
            "inline": False,
        }
    ]
    assert items[1]["delivery"] == {"state": "failed_permanent", "error": "mailbox unavailable"}
    assert items[1]["attachments"] == []

    missing = await client.get(
        f"/api/v1/conversations/{uuid.uuid4()}/messages", headers=agent.headers
    )
    assert missing.status == 404


async def test_a_late_message_with_an_older_date_is_never_behind_a_clients_cursor(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    channel = await rows.channel("email")
    ingestor = client.app[INGESTOR_KEY]
    now = datetime.now(UTC)

    def mail(external_id: str, at: datetime, cites: str | None = None) -> Inbound:
        return Inbound(
            channel_id=ChannelId(str(channel.id)),
            external_id=ExternalId(external_id),
            sender=SenderHandle(IdentityKind.EMAIL, "ann@example.com"),
            text=external_id,
            sent_at=at,
            thread=ThreadHints(
                message_id=f"<{external_id}@x>",
                in_reply_to=cites,
                references=(cites,) if cites else (),
            ),
        )

    first = await ingestor.ingest(mail("a", now))
    await ingestor.ingest(mail("b", now + minutes(1), "<a@x>"))
    path = f"/api/v1/conversations/{first.conversation_id}/messages"
    page_1 = await get_json(client, agent, path, limit=1)
    page_2 = await get_json(client, agent, path, limit=1, cursor=page_1["next_cursor"])
    assert [m["text"] for m in page_1["items"] + page_2["items"]] == ["a", "b"]
    assert page_2["next_cursor"] is None
    last_seen = page_2["items"][-1]["seq"]

    # Delivered late, dated three days before everything the client has seen.
    await ingestor.ingest(mail("c", now - timedelta(days=3), "<a@x>"))
    since = await get_json(client, agent, path, after_seq=last_seen)
    assert [m["text"] for m in since["items"]] == ["c"]
    late = since["items"][0]
    assert late["sent_at"] < page_2["items"][0]["sent_at"]  # its own date is kept and shown
    assert late["arrived_at"] >= page_2["items"][0]["arrived_at"]
    resumed = await get_json(client, agent, path, cursor=page_1["next_cursor"])
    assert [m["text"] for m in resumed["items"]] == ["b", "c"]


async def test_reply_is_queued_in_the_outbox(client: Client, agent: ApiUser, rows: Rows) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.channel("sms"))
    path = f"/api/v1/conversations/{conversation.id}/messages"
    async with client.app[BUS_KEY].subscribe() as events:
        response = await client.post(path, json={"text": "On its way!"}, headers=agent.headers)
        event = await events.get(timeout=5)
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["direction"] == "out"
    assert body["private"] is False
    assert body["text"] == "On its way!"
    assert body["author_id"] == str(agent.user.id)
    assert body["delivery"] == {"state": "queued", "error": None}
    assert event is not None and event.type == "message.created"
    assert event.data["message_id"] == body["id"]

    async with client.app[SESSIONS_KEY]() as session:
        job = await session.scalar(
            select(OutboundJob).where(OutboundJob.message_id == uuid.UUID(body["id"]))
        )
        stored = await session.get(Conversation, conversation.id)
    assert job is not None and job.state == "pending"
    assert stored is not None and stored.message_count == 1

    page = await get_json(client, agent, path)
    assert [m["id"] for m in page["items"]] == [body["id"]]


async def test_private_note_is_not_sent(client: Client, agent: ApiUser, rows: Rows) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.channel("sms"))
    response = await client.post(
        f"/api/v1/conversations/{conversation.id}/messages",
        json={"text": "VIP customer", "private": True},
        headers=agent.headers,
    )
    assert response.status == 201
    body = await response.json()
    assert body["private"] is True
    assert body["delivery"] is None
    async with client.app[SESSIONS_KEY]() as session:
        jobs = (await session.scalars(select(OutboundJob))).all()
        message = await session.get(Message, uuid.UUID(body["id"]))
    assert jobs == []
    assert message is not None and message.kind == "note"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"text": "   "}, "text"), ({}, "text"), ({"text": "x", "cc": "y"}, "cc")],
)
async def test_invalid_reply_is_422(
    client: Client, agent: ApiUser, rows: Rows, body: dict[str, Any], field: str
) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.channel("sms"))
    response = await client.post(
        f"/api/v1/conversations/{conversation.id}/messages", json=body, headers=agent.headers
    )
    assert response.status == 422
    assert list((await response.json())["error"]["fields"]) == [field]


async def test_reply_to_unknown_conversation_is_404(client: Client, agent: ApiUser) -> None:
    response = await client.post(
        f"/api/v1/conversations/{uuid.uuid4()}/messages", json={"text": "hi"}, headers=agent.headers
    )
    assert response.status == 404


async def test_visibility_is_enforced_through_one_function(
    client: Client, agent: ApiUser, rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = await rows.contact("Ann")
    shown_channel, hidden_channel = await rows.channel("email"), await rows.channel("sms")
    shown = await rows.conversation(ann, shown_channel)
    hidden = await rows.conversation(await rows.contact("Bob"), hidden_channel)
    monkeypatch.setattr(auth, "visible_channel_ids", lambda request: frozenset({shown_channel.id}))

    assert await listed(client, agent) == [str(shown.id)]
    for path in (f"/api/v1/conversations/{hidden.id}", f"/api/v1/channels/{hidden_channel.id}"):
        assert (await client.get(path, headers=agent.headers)).status == 404
    contacts = await get_json(client, agent, "/api/v1/contacts")
    assert [item["name"] for item in contacts["items"]] == ["Ann"]
    channels = await get_json(client, agent, "/api/v1/channels")
    assert [item["id"] for item in channels["items"]] == [str(shown_channel.id)]
