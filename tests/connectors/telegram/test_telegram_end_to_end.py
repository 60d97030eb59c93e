"""The Telegram channel end to end: long polling from the Bot API stand-in into the real
app and database, a reply through the API out through aiogram, an edit, a group, and a
user who blocked the bot."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.telegram.bot_api_standin import TOKEN, BotApiStandIn, running
from tests.hub import Hub, start_hub

ANN = 424242


@pytest.fixture
async def bot_api() -> AsyncIterator[BotApiStandIn]:
    async with running() as standin:
        yield standin


@pytest.fixture
async def hub(database_url: str, tmp_path: Path, aiohttp_client: Any) -> Hub:
    return await start_hub(aiohttp_client, database_url, tmp_path / "data")


def private_message(update_id: int, message_id: int, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": {"id": ANN, "is_bot": False, "first_name": "Ann", "username": "ann"},
            "chat": {"id": ANN, "type": "private", "first_name": "Ann"},
            "date": int(time.time()),
            "text": text,
            **extra,
        },
    }


async def connect(hub: Hub, bot_api: BotApiStandIn) -> str:
    config = {"bot_token": TOKEN, "mode": "polling", "api_base_url": bot_api.base_url}
    channel = await hub.post("/channels", {"kind": "telegram", "name": "Bot", "config": config})
    return str(channel["id"])


async def test_polling_reply_edit_and_block(hub: Hub, bot_api: BotApiStandIn) -> None:
    await connect(hub, bot_api)
    bot_api.feed(private_message(1, 10, "Hello, is anyone there?"))

    async def conversation() -> Any:
        items = await hub.conversations()
        return items[0] if items else None

    found = await hub.until(conversation, "the polled message is a conversation")
    [asked] = await hub.messages(found["id"])
    # A reply to another conversation's message, or to nothing, is refused.
    wrong = await hub.post(
        f"/conversations/{found['id']}/messages",
        {"text": "x", "reply_to_id": "00000000-0000-0000-0000-000000000000"},
        status=422,
    )
    assert "reply_to_id" in wrong["error"]["fields"]
    reply = await hub.post(
        f"/conversations/{found['id']}/messages",
        {"text": "Yes, we are!", "reply_to_id": asked["id"]},
    )
    assert reply["reply_to_id"] == asked["id"]

    async def delivered() -> Any:
        return [m for m in bot_api.delivered if m.get("text") == "Yes, we are!"]

    [sent] = await hub.until(delivered, "the stand-in received sendMessage")
    assert sent["chat"]["id"] == ANN
    # Sent as an answer to the customer's message (Telegram message 10).
    [call] = [c for c in bot_api.calls_of("sendMessage") if c.params.get("text") == "Yes, we are!"]
    assert call.params["reply_parameters"]["message_id"] == 10

    async def state(expected: str) -> Any:
        messages = await hub.messages(found["id"])
        mine = next(m for m in messages if m["id"] == reply["id"])
        return mine["delivery"]["state"] == expected and mine

    await hub.until(lambda: state("sent"), "the reply is recorded as sent")

    # The customer edits their first message: the same message changes, none is added.
    edited = private_message(2, 10, "Hello, is anyone there? (order 42)")
    edited["edited_message"] = edited.pop("message")
    edited["edited_message"]["edit_date"] = int(time.time()) + 5
    bot_api.feed(edited)

    async def edit_applied() -> Any:
        messages = await hub.messages(found["id"])
        first = next(m for m in messages if m["direction"] == "in")
        return first["edited_at"] is not None and first

    first = await hub.until(edit_applied, "the edit is applied to the original")
    assert first["text"] == "Hello, is anyone there? (order 42)"
    assert len(await hub.messages(found["id"])) == 2

    # Ann blocks the bot: the next reply fails with the reason, shown on the message.
    bot_api.blocked_chats.add(ANN)
    refused = await hub.post(f"/conversations/{found['id']}/messages", {"text": "Still there?"})
    failed = await hub.until(
        lambda: _state_of(hub, found["id"], refused["id"], "failed_permanent"),
        "the reply to a blocked bot fails",
    )
    assert "blocked" in failed["delivery"]["error"]
    # ... and the channel knows: further replies are refused up front.
    later = await hub.post(f"/conversations/{found['id']}/messages", {"text": "Hello?"}, status=422)
    assert "blocked" in later["error"]["fields"]["channel_id"]


async def _state_of(hub: Hub, conversation_id: str, message_id: str, expected: str) -> Any:
    messages = await hub.messages(conversation_id)
    mine = next(m for m in messages if m["id"] == message_id)
    return mine["delivery"]["state"] == expected and mine


async def test_group_messages_share_a_conversation(hub: Hub, bot_api: BotApiStandIn) -> None:
    await connect(hub, bot_api)
    group = {"id": -100555, "type": "supergroup", "title": "Printer owners"}
    for update_id, (user_id, name) in enumerate([(1001, "Ann"), (1002, "Bob")], start=1):
        bot_api.feed(
            {
                "update_id": update_id,
                "message": {
                    "message_id": update_id,
                    "from": {"id": user_id, "is_bot": False, "first_name": name},
                    "chat": group,
                    "date": int(time.time()),
                    "text": f"{name} says hi",
                },
            }
        )

    async def both() -> Any:
        items = await hub.conversations()
        return len(items) == 1 and items[0]["message_count"] == 2 and items[0]

    conversation = await hub.until(both, "both group messages are in one conversation")
    contact = await hub.get(f"/contacts/{conversation['contact_id']}")
    assert contact["name"] == "Printer owners"
    assert [i["value"] for i in contact["identities"]] == ["-100555"]


async def test_a_deep_link_and_a_shared_phone_join_the_contact(
    hub: Hub, bot_api: BotApiStandIn
) -> None:
    """t.me/bot?start=spring opens the chat: the payload is on the contact's timeline. The
    user then shares their phone: later texts from that number are the same customer's."""
    await connect(hub, bot_api)
    start = {"type": "bot_command", "offset": 0, "length": 6}
    bot_api.feed(private_message(1, 10, "/start spring", entities=[start]))
    phone = {"phone_number": "+14155550100", "first_name": "Ann", "user_id": ANN}
    shared = private_message(2, 11, "", contact=phone)
    del shared["message"]["text"]
    bot_api.feed(shared)

    async def both() -> Any:
        items = await hub.conversations()
        return items if items and len(await hub.messages(items[0]["id"])) == 2 else None

    [conversation] = await hub.until(both, "both updates stored")
    contact_id = conversation["contact_id"]
    contact = await hub.get(f"/contacts/{contact_id}")
    assert {(i["kind"], i["value"]) for i in contact["identities"]} == {
        ("telegram", str(ANN)),
        ("phone", "+14155550100"),
    }
    found = await hub.get("/contacts?identity=phone:%2B14155550100")
    assert [item["id"] for item in found["items"]] == [contact_id]
    timeline = await hub.get(f"/contacts/{contact_id}/timeline")
    [attributed] = [i for i in timeline["items"] if i["kind"] == "contact.attributed"]
    assert attributed["data"]["start_payload"] == "spring"
    assert "identity.added" in [i["kind"] for i in timeline["items"]]
