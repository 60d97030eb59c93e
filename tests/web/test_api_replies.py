"""Replies over the REST API: `Idempotency-Key`, attachments, and what a channel can carry."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from sqlalchemy import func, select, update

from connectors.registry import REGISTRY
from connectors.types import ChannelKind
from inbox.models import IdempotencyKey, Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.files import blob_path
from timeline.models import (
    Attachment,
    ContactReachability,
    Conversation,
    Message,
    OutboundJob,
    utcnow,
)
from web.api import conversations
from web.api.schemas import AttachmentIn
from web.keys import SESSIONS_KEY, SETTINGS_KEY


@pytest.fixture
def rows(agent_rows: Rows) -> Rows:
    """The `agent` works every channel made here (membership: test_api_accounts.py)."""
    return agent_rows


# Bounds waits only so that a regression fails instead of hanging; never a speed check.
HANG = 20
KEY = "Idempotency-Key"


def path_of(conversation: Conversation) -> str:
    return f"/api/v1/conversations/{conversation.id}/messages"


async def post(
    client: Client, user: ApiUser, conversation: Conversation, body: dict[str, Any], key: str | None
) -> ClientResponse:
    headers = user.headers | ({KEY: key} if key is not None else {})
    return await client.post(path_of(conversation), json=body, headers=headers)


async def count(client: Client, model: type[Any]) -> int:
    async with client.app[SESSIONS_KEY]() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
async def sms_conversation(rows: Rows) -> Conversation:
    return await rows.conversation(await rows.contact("Ann"), await rows.channel("sms"))


@pytest.fixture
async def telegram_conversation(rows: Rows) -> Conversation:
    """On a channel that carries attachments (SMS replies carry text only)."""
    return await rows.conversation(await rows.contact("Ann"), await rows.channel("telegram"))


# --- Idempotency-Key ------------------------------------------------------------------------


async def test_a_retry_answers_the_first_result_and_sends_nothing_more(
    client: Client, agent: ApiUser, sms_conversation: Conversation
) -> None:
    body = {"text": "On its way!"}
    first = await post(client, agent, sms_conversation, body, "retry-1")
    assert first.status == 201, await first.text()
    assert "Idempotent-Replayed" not in first.headers
    again = await post(client, agent, sms_conversation, body | {"private": False}, "retry-1")
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert await count(client, Message) == 1
    assert await count(client, OutboundJob) == 1


async def test_the_same_key_with_another_body_is_409(
    client: Client, agent: ApiUser, rows: Rows, sms_conversation: Conversation
) -> None:
    first = await post(client, agent, sms_conversation, {"text": "On its way!"}, "k-409")
    assert first.status == 201
    other = await post(client, agent, sms_conversation, {"text": "Something else"}, "k-409")
    assert other.status == 409
    error = (await other.json())["error"]
    assert error["code"] == "idempotency_key_reused"
    assert "another request" in error["message"]
    assert list(error["fields"]) == [KEY]
    # The same body to another conversation is another request (another path).
    other = await rows.conversation(await rows.contact("Bob"), await rows.channel("sms"))
    elsewhere = await post(client, agent, other, {"text": "On its way!"}, "k-409")
    assert elsewhere.status == 409
    assert await count(client, Message) == 1
    assert await count(client, OutboundJob) == 1


async def test_keys_belong_to_their_user(
    client: Client, agent: ApiUser, sms_conversation: Conversation, rows: Rows
) -> None:
    other = await make_api_user(client.app[SESSIONS_KEY], Role.AGENT)
    await rows.member(other.user, sms_conversation.channel_id)
    body = {"text": "Hello"}
    mine = await post(client, agent, sms_conversation, body, "shared-key")
    theirs = await post(client, other, sms_conversation, body, "shared-key")
    assert mine.status == theirs.status == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert (await mine.json())["id"] != (await theirs.json())["id"]
    assert await count(client, OutboundJob) == 2


async def test_concurrent_requests_with_one_key_make_one_message(
    client: Client,
    agent: ApiUser,
    telegram_conversation: Conversation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both requests pass the "key unused?" look-up before either writes, so the unique
    # key in the database, not the look-up, has to decide between them.
    both_checked = asyncio.Barrier(2)
    store_files = conversations._store_files

    async def store_after_both(data_dir: Path, attachments: Sequence[AttachmentIn]) -> Any:
        await both_checked.wait()
        return await store_files(data_dir, attachments)

    monkeypatch.setattr(conversations, "_store_files", store_after_both)
    body = {
        "text": "Only once",
        "attachments": [{"filename": "a.txt", "content_type": "text/plain", "data": b64(b"hi")}],
    }
    async with asyncio.timeout(HANG):
        responses = await asyncio.gather(
            post(client, agent, telegram_conversation, body, "race"),
            post(client, agent, telegram_conversation, body, "race"),
        )
        answers = [await response.json() for response in responses]
    assert [response.status for response in responses] == [201, 201]
    assert answers[0] == answers[1]
    # One answered as the creator, the other replayed its result.
    replayed = [response.headers.get("Idempotent-Replayed") for response in responses]
    assert sorted(replayed, key=str) == [None, "true"]
    assert await count(client, Message) == 1
    assert await count(client, OutboundJob) == 1
    assert await count(client, IdempotencyKey) == 1


async def test_a_key_older_than_a_day_may_be_used_again(
    client: Client, agent: ApiUser, sms_conversation: Conversation, rows: Rows
) -> None:
    stranger = await make_api_user(client.app[SESSIONS_KEY], Role.AGENT)
    await rows.member(stranger.user, sms_conversation.channel_id)
    assert (await post(client, agent, sms_conversation, {"text": "first"}, "daily")).status == 201
    assert (await post(client, stranger, sms_conversation, {"text": "x"}, "theirs")).status == 201
    async with client.app[SESSIONS_KEY]() as session:
        await session.execute(
            update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=24, minutes=1))
        )
        await session.commit()

    again = await post(client, agent, sms_conversation, {"text": "second"}, "daily")
    assert again.status == 201
    assert "Idempotent-Replayed" not in again.headers
    assert (await again.json())["text"] == "second"
    assert await count(client, OutboundJob) == 3
    async with client.app[SESSIONS_KEY]() as session:
        keys = (await session.scalars(select(IdempotencyKey))).all()
    # The expired key was replaced; the other user's expired key was cleaned up.
    assert [(row.user_id, row.key) for row in keys] == [(agent.user.id, "daily")]
    assert str(keys[0].message_id) == (await again.json())["id"]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9", "tab\there"])
async def test_a_malformed_key_is_422(
    client: Client, agent: ApiUser, sms_conversation: Conversation, key: str
) -> None:
    response = await post(client, agent, sms_conversation, {"text": "hi"}, key)
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == [KEY]
    assert await count(client, Message) == 0


async def test_a_refused_request_is_not_remembered(
    client: Client, agent: ApiUser, sms_conversation: Conversation
) -> None:
    too_long = await post(client, agent, sms_conversation, {"text": "x" * 1601}, "fix-me")
    assert too_long.status == 422
    fixed = await post(client, agent, sms_conversation, {"text": "x" * 1600}, "fix-me")
    assert fixed.status == 201
    assert await count(client, IdempotencyKey) == 1


# --- what the channel can carry ---------------------------------------------------------------


async def test_a_channel_that_cannot_send_refuses_replies_but_takes_notes(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    form = await rows.conversation(await rows.contact("Ann"), await rows.channel("webform"))
    reply = await post(client, agent, form, {"text": "Thanks!"}, None)
    assert reply.status == 422
    assert list((await reply.json())["error"]["fields"]) == ["channel_id"]
    note = await post(client, agent, form, {"text": "Called them back", "private": True}, None)
    assert note.status == 201
    assert await count(client, OutboundJob) == 0


async def test_too_long_text_is_422_naming_the_limit(
    client: Client, agent: ApiUser, sms_conversation: Conversation
) -> None:
    response = await post(client, agent, sms_conversation, {"text": "x" * 1601}, None)
    assert response.status == 422
    fields = (await response.json())["error"]["fields"]
    assert list(fields) == ["text"]
    assert "1,600" in fields["text"]
    # A note is never sent: the channel's limit does not apply.
    note = await post(client, agent, sms_conversation, {"text": "x" * 1601, "private": True}, None)
    assert note.status == 201
    assert await count(client, OutboundJob) == 0


async def test_attachments_the_channel_cannot_carry_are_422(
    client: Client,
    agent: ApiUser,
    telegram_conversation: Conversation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = REGISTRY[ChannelKind.TELEGRAM]
    body = {
        "text": "see attached",
        "attachments": [
            {
                "filename": "a.bin",
                "content_type": "application/octet-stream",
                "data": b64(b"0123456789" * 2),
            }
        ],
    }

    small = dataclasses.replace(spec.capabilities, max_attachment_bytes=19)
    monkeypatch.setitem(
        REGISTRY, ChannelKind.TELEGRAM, dataclasses.replace(spec, capabilities=small)
    )
    over = await post(client, agent, telegram_conversation, body, None)
    assert over.status == 422
    fields = (await over.json())["error"]["fields"]
    assert list(fields) == ["attachments"]
    assert "19 bytes" in fields["attachments"] and "20 bytes" in fields["attachments"]

    none = dataclasses.replace(spec.capabilities, supports_attachments=False)
    monkeypatch.setitem(
        REGISTRY, ChannelKind.TELEGRAM, dataclasses.replace(spec, capabilities=none)
    )
    refused = await post(client, agent, telegram_conversation, body, None)
    assert refused.status == 422
    assert (await refused.json())["error"]["fields"] == {
        "attachments": "this channel cannot send attachments"
    }
    assert await count(client, Message) == 0


async def test_another_channel_needs_an_address_of_the_contact_there(
    client: Client, agent: ApiUser, rows: Rows, sms_conversation: Conversation
) -> None:
    other = await rows.channel("email")
    elsewhere = await post(
        client, agent, sms_conversation, {"text": "hi", "channel_id": str(other.id)}, None
    )
    assert elsewhere.status == 422
    fields = (await elsewhere.json())["error"]["fields"]
    assert list(fields) == ["channel_id"]
    assert "no email address" in fields["channel_id"]
    same = await post(
        client,
        agent,
        sms_conversation,
        {"text": "hi", "channel_id": str(sms_conversation.channel_id)},
        None,
    )
    assert same.status == 201
    assert await count(client, OutboundJob) == 1


# --- attachments ------------------------------------------------------------------------------


async def test_a_reply_with_attachments_stores_and_shows_them(
    client: Client, agent: ApiUser, telegram_conversation: Conversation
) -> None:
    photo, notes = b"\x89PNG fake image bytes", b"line one\nline two\n"
    body = {
        "text": "Here you are",
        "attachments": [
            {"filename": "photo.png", "content_type": "Image/PNG", "data": b64(photo)},
            {"filename": "notes.txt", "content_type": "text/plain", "data": b64(notes)},
        ],
    }
    response = await post(client, agent, telegram_conversation, body, None)
    assert response.status == 201, await response.text()
    shown = (await response.json())["attachments"]
    assert [(a["filename"], a["content_type"], a["size"]) for a in shown] == [
        ("photo.png", "image/png", len(photo)),
        ("notes.txt", "text/plain", len(notes)),
    ]
    async with client.app[SESSIONS_KEY]() as session:
        stored = (await session.scalars(select(Attachment).order_by(Attachment.size))).all()
    data_dir = client.app[SETTINGS_KEY].data_dir
    assert sorted(blob_path(data_dir, row.sha256).read_bytes() for row in stored) == sorted(
        [photo, notes]
    )
    listed = await client.get(path_of(telegram_conversation), headers=agent.headers)
    assert (await listed.json())["items"][0]["attachments"] == shown


@pytest.mark.parametrize(
    ("attachment", "field"),
    [
        ({"filename": "../etc/passwd"}, "attachments.0.filename"),
        ({"filename": "a\\b.txt"}, "attachments.0.filename"),
        ({"filename": "bell\x07.txt"}, "attachments.0.filename"),
        ({"filename": ""}, "attachments.0.filename"),
        ({"filename": "x" * 256}, "attachments.0.filename"),
        ({"content_type": "text"}, "attachments.0.content_type"),
        ({"content_type": "text/plain; charset=utf-8"}, "attachments.0.content_type"),
        ({"data": "not base64!"}, "attachments.0.data"),
        ({"data": "aGk"}, "attachments.0.data"),  # unpadded
        ({"size": 3}, "attachments.0.size"),
    ],
)
async def test_invalid_attachments_are_422(
    client: Client,
    agent: ApiUser,
    sms_conversation: Conversation,
    attachment: dict[str, Any],
    field: str,
) -> None:
    item = {"filename": "a.txt", "content_type": "text/plain", "data": b64(b"hi")} | attachment
    response = await post(
        client, agent, sms_conversation, {"text": "hi", "attachments": [item]}, None
    )
    assert response.status == 422
    assert list((await response.json())["error"]["fields"]) == [field]


async def test_too_many_attachments_are_422(
    client: Client, agent: ApiUser, sms_conversation: Conversation
) -> None:
    item = {"filename": "a.txt", "content_type": "text/plain", "data": b64(b"hi")}
    response = await post(
        client, agent, sms_conversation, {"text": "hi", "attachments": [item] * 11}, None
    )
    assert response.status == 422
    assert list((await response.json())["error"]["fields"]) == ["attachments"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "nul \u0000 inside"}, "text"),
        ({"text": "half a pair \ud800"}, "text"),
        (
            {
                "text": "see attached",
                "attachments": [
                    {"filename": "a\ud800.txt", "content_type": "text/plain", "data": b64(b"x")}
                ],
            },
            "attachments",
        ),
    ],
    ids=["nul", "lone-surrogate", "surrogate-filename"],
)
async def test_text_that_cannot_be_stored_is_422_not_a_server_error(
    client: Client,
    agent: ApiUser,
    sms_conversation: Conversation,
    body: dict[str, Any],
    field: str,
) -> None:
    # PostgreSQL refuses NUL and unpaired surrogates (SQLite would store them).
    response = await post(client, agent, sms_conversation, body, key=None)
    assert response.status == 422, await response.text()
    fields = list((await response.json())["error"]["fields"])
    assert len(fields) == 1 and fields[0].startswith(field)
    assert await count(client, Message) == 0


async def test_a_contact_who_opted_out_is_refused_a_reply_but_notes_are_kept(
    client: Client, agent: ApiUser, sms_conversation: Conversation
) -> None:
    async with client.app[SESSIONS_KEY]() as session, session.begin():
        session.add(
            ContactReachability(
                channel_id=sms_conversation.channel_id,
                contact_id=sms_conversation.contact_id,
                opted_out=True,
                blocked=False,
                detail="STOP",
            )
        )
    refused = await post(client, agent, sms_conversation, {"text": "Hello?"}, None)
    assert refused.status == 422
    reason = (await refused.json())["error"]["fields"]["channel_id"]
    assert "opted out" in reason and "STOP" in reason
    assert await count(client, Message) == 0
    note = await post(client, agent, sms_conversation, {"text": "mind", "private": True}, None)
    assert note.status == 201
