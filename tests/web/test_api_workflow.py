"""Changing conversations over the REST API: PATCH, bulk, participants, read marks, the
list's workflow filters, who may do what, and two agents changing one at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from inbox.account_models import ChannelMember
from inbox.labels import MAX_LABELS
from inbox.models import Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory
from timeline.events import Event
from timeline.models import Channel, Conversation, TimelineEvent, utcnow
from web.keys import BUS_KEY

API = "/api/v1/conversations"


async def member(sessions: SessionFactory, user: ApiUser, channel: Channel) -> None:
    async with sessions() as session, session.begin():
        session.add(ChannelMember(channel_id=channel.id, user_id=user.user.id))


async def patch(client: Client, user: ApiUser, conversation: Any, body: Any) -> Any:
    response = await client.patch(f"{API}/{conversation}", json=body, headers=user.headers)
    return response.status, await response.json()


async def kinds(sessions: SessionFactory, conversation_id: uuid.UUID) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(TimelineEvent.kind)
            .where(TimelineEvent.conversation_id == conversation_id)
            .order_by(TimelineEvent.id)
        )
        return list(rows)


async def test_patch_changes_records_and_publishes(
    client: Client, agent: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    channel = await rows.channel("sms")
    await member(sessions, agent, channel)
    conversation = await rows.conversation(await rows.contact("Ann"), channel)
    await rows.message(conversation)
    colleague = await make_api_user(sessions, Role.AGENT)
    await member(sessions, colleague, channel)
    until = (utcnow() + timedelta(days=1)).replace(microsecond=0)

    async with client.app[BUS_KEY].subscribe() as published:
        status, body = await patch(
            client,
            agent,
            conversation.id,
            {
                "status": "snoozed",
                "snoozed_until": until.isoformat(),
                # Agents hand over: they may assign a colleague who works the channel.
                "assignee_id": str(colleague.user.id),
                "priority": "urgent",
                "labels": ["  VIP ", "vip", "Billing"],
                "seen_seq": 1,
            },
        )
        assert status == 200, body
        event = await published.get(timeout=5)
        # The colleague was given it by someone else: they are told.
        notice = await published.get(timeout=5)
        assert notice is not None and notice.type == "notification.created"
        assert notice.data["user_id"] == str(colleague.user.id)
        assert notice.data["kind"] == "assigned"
        # Nothing changes: nothing recorded, nothing published (the marker comes next).
        status, again = await patch(
            client, agent, conversation.id, {"status": "snoozed", "snoozed_until": str(until)}
        )
        await client.app[BUS_KEY].publish([Event("marker")])
        after_nothing = await published.get(timeout=5)
    assert status == 200 and again == body
    assert after_nothing is not None and after_nothing.type == "marker"
    assert {k: body[k] for k in ("status", "assignee_id", "priority", "labels", "unread")} == {
        "status": "snoozed",
        "assignee_id": str(colleague.user.id),
        "priority": "urgent",
        "labels": ["billing", "vip"],
        "unread": 1,
    }
    assert body["snoozed_until"].startswith(until.strftime("%Y-%m-%dT%H:%M:%S"))
    assert body["participants"] == [str(colleague.user.id)] and body["last_seq"] == 1
    assert event is not None and event.type == "conversation.updated"
    assert event.data["conversation_id"] == str(conversation.id)
    assert event.data["by"] == str(agent.user.id)
    assert await kinds(sessions, conversation.id) == [
        "conversation.status_changed",
        "conversation.assigned",
        "conversation.participant_added",
        "conversation.priority_changed",
        "conversation.labels_changed",
    ]
    got = await client.get(f"{API}/{conversation.id}", headers=agent.headers)
    assert await got.json() == body

    # Edits of labels, unassigning, and a stale change refused with 409.
    status, body = await patch(
        client,
        agent,
        conversation.id,
        {"add_labels": ["Refund"], "remove_labels": ["vip"], "assignee_id": None},
    )
    assert status == 200 and body["labels"] == ["billing", "refund"]
    assert body["assignee_id"] is None and body["status"] == "snoozed"
    await rows.message(conversation)
    status, body = await patch(client, agent, conversation.id, {"status": "open", "seen_seq": 1})
    assert status == 409 and body["error"]["fields"] == {"seen_seq": "newest is 2"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_invalid_changes_are_422_naming_the_field(
    client: Client, admin: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.channel())
    inactive = await make_api_user(sessions, Role.AGENT, active=False)
    agent = await make_api_user(sessions, Role.AGENT)  # works no channel
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    cases: list[tuple[Any, str]] = [
        ({"status": "closed"}, "status"),
        ({"status": None}, "status"),
        ({"status": "snoozed"}, "snoozed_until"),
        ({"status": "snoozed", "snoozed_until": past}, "snoozed_until"),
        ({"status": "snoozed", "snoozed_until": "2099-01-01T00:00:00"}, "snoozed_until"),
        ({"snoozed_until": "2099-01-01T00:00:00Z"}, "snoozed_until"),
        ({"assignee_id": str(uuid.uuid4())}, "assignee_id"),
        ({"assignee_id": str(inactive.user.id)}, "assignee_id"),
        ({"assignee_id": str(agent.user.id)}, "assignee_id"),
        ({"assignee_id": "me"}, "assignee_id"),
        ({"team_id": str(uuid.uuid4())}, "team_id"),
        ({"priority": "critical"}, "priority"),
        ({"priority": None}, "priority"),
        ({"labels": ["ok", "bad\x00label"]}, "labels.1"),
        ({"labels": ["x" * 51]}, "labels.0"),
        ({"labels": ["a\u202eb"]}, "labels.0"),
        ({"labels": ["   "]}, "labels.0"),
        ({"labels": [str(n) for n in range(MAX_LABELS + 1)]}, "labels"),
        ({"labels": "vip"}, "labels"),
        ({"labels": ["a"], "add_labels": ["b"]}, "labels"),
        ({"add_labels": ["a"], "remove_labels": ["A "]}, "remove_labels"),
        ({"add_labels": [1]}, "add_labels.0"),
        ({"seen_seq": -1}, "seen_seq"),
        ({"seen_seq": "x" * 20}, "seen_seq"),
        ({"owner": "x"}, "owner"),
        ([], "body"),
    ]
    for body, field in cases:
        status, answer = await patch(client, admin, conversation.id, body)
        assert status == 422, (body, answer)
        assert list(answer["error"]["fields"]) == [field], (body, answer)
    response = await client.patch(f"{API}/{conversation.id}", data=b"{", headers=admin.headers)
    assert response.status == 400
    assert await kinds(sessions, conversation.id) == []


async def test_who_may_see_and_change_what(
    client: Client, agent: ApiUser, admin: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    mine, theirs = await rows.channel("sms"), await rows.channel("email")
    await member(sessions, agent, mine)
    contact = await rows.contact("Ann")
    visible = await rows.conversation(contact, mine)
    hidden = await rows.conversation(contact, theirs)
    for path, method in (
        (f"{API}/{hidden.id}", "PATCH"),
        (f"{API}/{uuid.uuid4()}", "PATCH"),
        (f"{API}/not-a-uuid", "PATCH"),
        (f"{API}/{hidden.id}/read", "POST"),
        (f"{API}/{hidden.id}/unread", "POST"),
        (f"{API}/{hidden.id}/participants/{agent.user.id}", "POST"),
        (f"{API}/{hidden.id}/participants/{agent.user.id}", "DELETE"),
        (f"{API}/{visible.id}/participants/{uuid.uuid4()}", "POST"),
        (f"{API}/{visible.id}/participants/{uuid.uuid4()}", "DELETE"),
    ):
        response = await client.request(
            method, path, json={"priority": "low"}, headers=agent.headers
        )
        assert response.status == 404, (method, path)
    # The admin sees every channel, and may hand a conversation to any active user.
    status, body = await patch(client, admin, hidden.id, {"assignee_id": str(admin.user.id)})
    assert status == 200 and body["assignee_id"] == str(admin.user.id)
    unauthenticated = await client.patch(f"{API}/{visible.id}", json={"priority": "low"})
    assert unauthenticated.status == 401
    assert await kinds(sessions, visible.id) == []


async def test_participants_read_marks_and_list_filters(
    client: Client, agent: ApiUser, admin: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    channel = await rows.channel("sms")
    await member(sessions, agent, channel)
    a, b, c = [await rows.conversation(await rows.contact(n), channel) for n in "abc"]
    for conversation in (a, a, b):
        await rows.message(conversation)
    await patch(client, admin, a.id, {"labels": ["vip"], "priority": "high"})
    await patch(client, admin, b.id, {"labels": ["vip", "refund"]})

    async def listed(user: ApiUser = agent, **params: str) -> list[str]:
        response = await client.get(API, params=params, headers=user.headers)
        assert response.status == 200, await response.text()
        return sorted(item["id"] for item in (await response.json())["items"])

    ids = {x: str(x.id) for x in (a, b, c)}
    assert await listed(label="VIP ") == sorted([ids[a], ids[b]])
    assert await listed(label="refund") == [ids[b]]
    assert await listed(label="none-such") == []
    assert await listed(priority="high") == [ids[a]]
    assert await listed(unread="true") == sorted([ids[a], ids[b]])
    assert await listed(unread="false") == [ids[c]]

    # Read marks are per user: the agent reads a, the admin still has it unread.
    response = await client.post(f"{API}/{a.id}/read", headers=agent.headers)
    assert response.status == 200 and (await response.json())["unread"] == 0
    assert await listed(unread="true") == [ids[b]]
    assert await listed(admin, unread="true") == sorted([ids[a], ids[b]])
    response = await client.post(f"{API}/{a.id}/unread", headers=agent.headers)
    assert response.status == 200 and (await response.json())["unread"] == 1
    page = await (await client.get(API, params={"label": "vip"}, headers=agent.headers)).json()
    assert {item["id"]: item["unread"] for item in page["items"]} == {ids[a]: 1, ids[b]: 1}

    # Participants: followed by hand, listed, and filtered on.
    path = f"{API}/{c.id}/participants/{admin.user.id}"
    response = await client.post(path, headers=agent.headers)
    assert response.status == 200
    assert (await response.json())["participants"] == [str(admin.user.id)]
    assert await listed(participant=str(admin.user.id)) == [ids[c]]
    inactive = await make_api_user(sessions, Role.AGENT, active=False)
    response = await client.post(
        f"{API}/{c.id}/participants/{inactive.user.id}", headers=agent.headers
    )
    assert response.status == 422
    response = await client.delete(path, headers=agent.headers)
    assert response.status == 200 and (await response.json())["participants"] == []
    assert await listed(participant=str(admin.user.id)) == []
    assert await kinds(sessions, c.id) == [
        "conversation.participant_added",
        "conversation.participant_removed",
    ]
    for params in ({"label": "a\x01"}, {"priority": "x"}, {"unread": "maybe"}):
        response = await client.get(API, params=params, headers=agent.headers)
        assert response.status == 422 and list((await response.json())["error"]["fields"]) == [
            next(iter(params))
        ]


async def test_bulk_changes_each_conversation_on_its_own(
    client: Client, agent: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    mine, theirs = await rows.channel("sms"), await rows.channel("email")
    await member(sessions, agent, mine)
    contact = await rows.contact("Ann")
    plain, full = await rows.conversation(contact, mine), await rows.conversation(contact, mine)
    hidden = await rows.conversation(contact, theirs)
    await patch(client, agent, full.id, {"labels": [f"l{n}" for n in range(MAX_LABELS)]})
    unknown = uuid.uuid4()
    body = {
        "ids": [str(x) for x in (plain.id, unknown, hidden.id, full.id)],
        "changes": {"status": "resolved", "add_labels": ["done"], "priority": "low"},
    }
    response = await client.post(f"{API}/bulk", json=body, headers=agent.headers)
    assert response.status == 200, await response.text()
    results = (await response.json())["results"]
    assert [(r["id"], r["status"]) for r in results] == [
        (str(plain.id), 200),
        (str(unknown), 404),
        (str(hidden.id), 404),
        (str(full.id), 422),
    ]
    changed = results[0]["conversation"]
    assert (changed["status"], changed["labels"], changed["priority"]) == (
        "resolved",
        ["done"],
        "low",
    )
    assert results[3]["error"]["fields"] == {"add_labels": "at most 20 labels per conversation"}
    # The refused conversation kept everything (its change was all or nothing).
    async with sessions() as session:
        stored = await session.get(Conversation, full.id)
    assert stored is not None and (stored.status, stored.priority) == ("open", "none")

    # Invalid for any conversation: refused as a whole.
    for bad, field in (
        ({"ids": [str(plain.id)], "changes": {"status": "snoozed"}}, "snoozed_until"),
        ({"ids": [], "changes": {}}, "ids"),
        ({"ids": [str(uuid.uuid4()) for _ in range(101)], "changes": {}}, "ids"),
        ({"ids": [str(plain.id)] * 2, "changes": {}}, "ids"),
        ({"ids": [str(plain.id)], "changes": {"labels": ["x"]}}, "changes.labels"),
    ):
        response = await client.post(f"{API}/bulk", json=bad, headers=agent.headers)
        assert response.status == 422, bad
        assert list((await response.json())["error"]["fields"]) == [field]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_concurrent_patches_of_one_conversation_both_land(
    client: Client, admin: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    conversation = await rows.conversation(await rows.contact("Ann"), await rows.channel())
    bodies = [{"add_labels": [f"label-{n}"]} for n in range(8)] + [
        {"priority": "high"},
        {"status": "pending"},
    ]
    answers = await asyncio.gather(
        *(patch(client, admin, conversation.id, body) for body in bodies)
    )
    assert [status for status, _ in answers] == [200] * len(bodies)
    final = await (await client.get(f"{API}/{conversation.id}", headers=admin.headers)).json()
    assert final["labels"] == sorted(f"label-{n}" for n in range(8))
    assert (final["priority"], final["status"]) == ("high", "pending")
    recorded = await kinds(sessions, conversation.id)
    assert recorded.count("conversation.labels_changed") == 8 and len(recorded) == 10
