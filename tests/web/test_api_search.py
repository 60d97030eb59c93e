"""The inbox's API (web/api/search.py) and the list's `sort`: search over contacts and
messages, the sidebar's counts, the list rows' previews, longest waiting first. On both
databases, always through an agent who sees one channel and not another."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update

from inbox.account_models import Team
from inbox.workflow_models import ConversationLabel
from tests.web.conftest import T0, ApiUser, Client, Rows, minutes
from timeline.models import Conversation, Message


async def get_json(
    client: Client, user: ApiUser, path: str, expect: int = 200, **params: Any
) -> Any:
    response = await client.get(f"/api/v1{path}", params=params, headers=user.headers)
    assert response.status == expect, await response.text()
    return await response.json()


async def test_search_finds_contacts_and_messages_with_literal_wildcards(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    home = await rows.home()
    hidden = await rows.channel(name="not theirs")
    ann = await rows.contact("Ann 50% Off", [("email", "ann_x@example.com")], T0)
    bob = await rows.contact("Bob 500 Off", [("email", "annax@example.com")], T0 + minutes(1))
    zed = await rows.contact("Ann 50% Off too", [("email", "zed@example.com")])
    ann_conversation = await rows.conversation(ann, home)
    bob_conversation = await rows.conversation(bob, home)
    await rows.conversation(zed, hidden)  # a contact seen on another channel only
    await rows.message(ann_conversation, text="Refund for order_42 please", sent_at=T0)
    await rows.message(bob_conversation, text="Refund for orderX42 please", sent_at=T0)
    await rows.message(
        await rows.conversation(zed, hidden), text="order_42 from the hidden channel"
    )

    found = await get_json(client, agent, "/search", q="50% OFF")
    assert [c["name"] for c in found["contacts"]] == ["Ann 50% Off"]
    assert found["contacts"][0]["identities"] == ["email:ann_x@example.com"]
    assert found["contacts"][0]["conversation_id"] == str(ann_conversation.id)
    # "_" is a plain character: ann_x, not annax.
    found = await get_json(client, agent, "/search", q="ANN_X")
    assert [c["name"] for c in found["contacts"]] == ["Ann 50% Off"]

    found = await get_json(client, agent, "/search", q="order_42")
    assert [(m["conversation_id"], m["text"]) for m in found["messages"]] == [
        (str(ann_conversation.id), "Refund for order_42 please")
    ]
    assert found["messages"][0]["contact_name"] == "Ann 50% Off"
    assert found["messages"][0]["channel_kind"] == "webform"
    assert found["more_messages"] is False

    found = await get_json(client, agent, "/search", q="refund", limit=1)
    assert len(found["messages"]) == 1 and found["more_messages"] is True

    # Blank, too long or unknown parameters are refused.
    await get_json(client, agent, "/search", expect=422, q="   ")
    await get_json(client, agent, "/search", expect=422, q="x" * 201)
    await get_json(client, agent, "/search", expect=422, q="x", limit=26)


async def test_search_cuts_long_texts_around_the_match(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    conversation = await rows.conversation(await rows.contact("Long"), await rows.home())
    await rows.message(conversation, text="a" * 500 + " needle " + "b" * 500)
    [hit] = (await get_json(client, agent, "/search", q="NEEDLE"))["messages"]
    assert "needle" in hit["text"] and len(hit["text"]) <= 160
    assert hit["text"].startswith("…") and hit["text"].endswith("…")


async def test_counts_per_view_only_of_visible_conversations(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    home = await rows.home()
    other = await rows.channel(name="not theirs")
    team = Team(name="Billing")
    async with rows.sessions() as session:
        session.add(team)
        await session.commit()
    contact = await rows.contact("Ann")
    mine = await rows.conversation(contact, home, assignee_id=agent.user.id, team_id=team.id)
    await rows.conversation(contact, home)
    await rows.conversation(contact, home, status="pending")
    await rows.conversation(contact, other)  # not visible
    await rows.conversation(contact, other, assignee_id=agent.user.id)  # not visible either
    async with rows.sessions() as session:
        session.add(ConversationLabel(conversation_id=mine.id, label="vip"))
        await session.commit()

    answer = await get_json(client, agent, "/conversations/counts")
    assert answer["status"] == "open"
    assert answer["counts"] == {
        "all": 2,
        "mine": 1,
        "unassigned": 1,
        f"team:{team.id}": 1,
        f"channel:{home.id}": 2,
        "label:vip": 1,
    }
    pending = await get_json(client, agent, "/conversations/counts", status="pending")
    assert pending["counts"] == {
        "all": 1,
        "mine": 0,
        "unassigned": 1,
        f"channel:{home.id}": 1,
    }
    await get_json(client, agent, "/conversations/counts", expect=422, view="mine")


async def test_previews_of_visible_conversations(
    client: Client, agent: ApiUser, admin: ApiUser, rows: Rows
) -> None:
    home = await rows.home()
    other = await rows.channel(name="not theirs")
    named = await rows.contact("Ann <b>Customer</b>")
    unnamed = await rows.contact(None, [("phone", "+14155550100")])
    first = await rows.conversation(named, home, assignee_id=admin.user.id)
    second = await rows.conversation(unnamed, home)
    hidden = await rows.conversation(named, other)
    await rows.message(first, text="older")
    newest = await rows.message(first, direction="out", text="  newest\n\nreply " + "x" * 300)
    activity = await rows.message(first, text="assigned")
    async with rows.sessions() as session:
        await session.execute(
            update(Message).where(Message.id == activity.id).values(kind="activity")
        )
        await session.commit()

    ids = ",".join(str(i) for i in (second.id, hidden.id, first.id, uuid.uuid4()))
    items = (await get_json(client, agent, "/conversations/previews", ids=ids))["items"]
    assert [item["id"] for item in items] == [str(second.id), str(first.id)]
    assert items[0]["contact_name"] is None
    assert items[0]["contact_identity"] == "+14155550100"
    assert items[0]["last_message"] is None
    assert items[1]["contact_name"] == "Ann <b>Customer</b>"
    assert items[1]["channel_kind"] == "webform" and items[1]["channel_name"] == "home"
    assert items[1]["assignee_name"] == admin.user.email.split("@")[0]
    last = items[1]["last_message"]
    assert last["direction"] == "out" and last["text"].startswith("newest reply xxx")
    assert len(last["text"]) <= 160 and newest.text.strip().startswith("newest")

    await get_json(client, agent, "/conversations/previews", expect=422, ids="nope")
    too_many = ",".join(str(uuid.uuid4()) for _ in range(101))
    await get_json(client, agent, "/conversations/previews", expect=422, ids=too_many)


async def test_longest_waiting_first_pages_through_every_conversation(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    home = await rows.home()
    contact = await rows.contact("Ann")
    made = [
        await rows.conversation(contact, home, last_activity_at=T0 + minutes(n)) for n in range(5)
    ]
    waiting = {made[0].id: T0 + minutes(30), made[3].id: T0 + minutes(10), made[4].id: T0}
    async with rows.sessions() as session:
        for conversation_id, since in waiting.items():
            await session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(waiting_since=since)
            )
        await session.commit()

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sort": "waiting", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await get_json(client, agent, "/conversations", **params)
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    not_waiting = sorted([str(made[1].id), str(made[2].id)])
    assert seen == [str(made[4].id), str(made[3].id), str(made[0].id), *not_waiting]

    default = await get_json(client, agent, "/conversations")
    assert [item["id"] for item in default["items"]] == [str(c.id) for c in reversed(made)]
    await get_json(client, agent, "/conversations", expect=422, sort="oldest")
