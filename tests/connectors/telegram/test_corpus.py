"""Every update in ../shared/corpus/telegram/ handled as its `_corpus.expected` says,
through the webhook route and through long polling."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from connectors.telegram.connector import TelegramConnector, build
from connectors.types import Inbound, Reachability
from tests.connectors.telegram.bot_api_standin import BotApiStandIn
from tests.connectors.telegram.conftest import (
    CHANNEL,
    CORPUS,
    SECRET,
    corpus_expected,
    corpus_updates,
    make_config,
)
from tests.connectors.telegram.helpers import post_update, wait_until, webhook_app
from tests.connectors.telegram.recording import Recorder

FILES = sorted(path.name for path in CORPUS.glob("*.json"))
MESSAGE_KINDS = {"message", "edited_message", "channel_post"}
BATCH = "telegrambots__getUpdates_testListUpdates3_batch.json"


def test_the_corpus_is_there() -> None:
    assert len(FILES) == 30, f"expected the 30 Telegram fixtures in {CORPUS}"


def _offer_files(standin: BotApiStandIn, updates: list[dict[str, Any]]) -> None:
    """Make every file id mentioned in the updates downloadable."""
    text = json.dumps(updates)
    for chunk in text.split('"file_id": "')[1:]:
        file_id = chunk.split('"', 1)[0]
        standin.add_file(file_id, f"data of {file_id}".encode())


def check(name: str, inbound: list[Inbound], recorder: Recorder) -> None:
    """What the corpus expects of one single-update file."""
    expected = corpus_expected(name)
    kind = expected.get("update_kind")
    if name == "telegrambots__Update_multiple_kinds_invalid.json":
        # Ambiguous by construction: read as aiogram reads it, its `message`.
        assert len(inbound) == 1
        assert inbound[0].text.endswith("Bold and italics")
        assert {a.filename for a in inbound[0].attachments} >= {"Testfile.pdf"}
        return
    if kind not in MESSAGE_KINDS:
        assert inbound == [], f"{name}: a {kind} update is not a message"
        if kind == "my_chat_member":
            assert [c.change for c in recorder.reachability] == [Reachability.BLOCKED]
            assert recorder.reachability[0].who.value == "0"
        else:
            assert recorder.reachability == []
        return
    assert len(inbound) == 1, name
    message = inbound[0]
    assert message.text.strip(), f"{name}: the text is never empty"
    assert message.sent_at.tzinfo is not None
    assert message.raw is not None and message.raw.content_type == "application/json"
    assert (message.edit_of is not None) == (kind == "edited_message"), name
    chat_type = expected.get("chat_type")
    sender = expected.get("sender", "absent")
    if chat_type in ("group", "supergroup"):
        assert message.sender is not None and message.sender.value.startswith("-")
        assert message.thread.chat_id == message.sender.value
        if sender is None:
            assert message.author is None
        elif sender != "absent":
            assert message.author is not None and message.author.value == str(sender)
    elif chat_type == "private" and sender != "absent":
        assert message.sender is not None and message.sender.value == str(sender)
        assert message.author is None
    if kind == "channel_post" or chat_type == "channel":
        assert message.sender is not None and message.sender.value == "-1001065170817"
        assert message.author is None
    if isinstance(expected.get("text"), str):
        assert message.text == expected["text"]
    if "caption" in expected:
        assert message.text == expected["caption"]
    if "chat_id" in expected:
        assert message.thread.chat_id == str(expected["chat_id"])
    if expected.get("is_reply"):
        assert message.reply_to is not None
    if expected.get("is_forward"):
        assert message.text.startswith("[forwarded from ")
    if "service" in expected:
        assert message.auto_submitted
    attachment = expected.get("attachment")
    if attachment in ("photo", "document", "voice", "sticker"):
        assert len(message.attachments) == 1
        file = message.attachments[0]
        assert file.error is None and file.data.startswith(b"data of ")
        prefix = {"photo": "image/", "voice": "audio/ogg", "sticker": "application/x-tgsticker"}
        assert file.content_type.startswith(prefix.get(attachment, ""))
    if attachment in ("location", "venue", "contact"):
        assert message.text.startswith(f"[live {attachment}]") or message.text.startswith(
            f"[{attachment}]"
        )
    if attachment in ("location", "venue"):
        assert "https://www.openstreetmap.org/?mlat=" in message.text
    for key in ("poll_question", "phone_number", "emoji"):
        if key in expected:
            assert expected[key] in message.text
    if "file_name" in expected:
        assert message.attachments[0].filename == expected["file_name"]


@pytest.mark.parametrize("name", [f for f in FILES if f != BATCH])
async def test_each_fixture_through_the_webhook(
    name: str, standin: BotApiStandIn, recorder: Recorder, aiohttp_client: Any
) -> None:
    updates = corpus_updates(name)
    _offer_files(standin, updates)
    connector = build(CHANNEL, make_config(standin, mode="webhook"), recorder.context())
    client = await aiohttp_client(webhook_app(connector))
    try:
        for update in updates:
            body = json.dumps(update, ensure_ascii=False).encode()
            assert await post_update(client, connector, body, "wrong") == 403
            assert await post_update(client, connector, body, None) == 403
            assert recorder.inbound == [] and recorder.reachability == []
            assert await post_update(client, connector, body, SECRET) == 200
        check(name, recorder.inbound, recorder)
        for message in recorder.inbound:
            assert message.raw is not None
            assert json.loads(message.raw.data) == updates[0]
    finally:
        await connector.close()


@pytest.mark.parametrize("name", [f for f in FILES if f != BATCH])
async def test_each_fixture_through_polling(
    name: str, standin: BotApiStandIn, recorder: Recorder
) -> None:
    updates = corpus_updates(name)
    _offer_files(standin, updates)
    for update in updates:
        standin.feed(update)
    last = max(update["update_id"] for update in updates)
    connector = build(CHANNEL, make_config(standin), recorder.context())
    task = asyncio.create_task(connector.run())
    try:
        await wait_until(lambda: standin.confirmed_offset == last + 1, "the offset to pass")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await connector.close()
    check(name, recorder.inbound, recorder)


async def test_the_whole_batch_through_polling(
    standin: BotApiStandIn, recorder: Recorder, connector: TelegramConnector
) -> None:
    """47 real updates in one getUpdates answer: every one handed over once, in order."""
    raw = json.loads((CORPUS / BATCH).read_text(encoding="utf-8"))["_corpus"]["raw_json"]
    updates = json.loads(raw)["result"]
    _offer_files(standin, updates)
    for update in updates:
        standin.feed(update)
    task = asyncio.create_task(connector.run())
    try:
        await wait_until(lambda: standin.confirmed_offset == 259894349, "the batch to be confirmed")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    messages = [u for u in updates if {"message", "edited_message"} & u.keys()]
    assert len(updates) == 47
    assert len(recorder.inbound) == len(messages)
    ids = [m.external_id for m in recorder.inbound]
    assert len(set(ids)) == len(ids)
    edits = [m for m in recorder.inbound if m.edit_of is not None]
    assert len(edits) == sum(1 for u in updates if "edited_message" in u)
    assert await recorder.cursors.load(CHANNEL, "telegram:offset") == "259894349"
