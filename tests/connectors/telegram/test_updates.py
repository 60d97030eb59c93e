"""What updates become: edits, groups, migrations, membership, files, deep links."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.errors import PermanentError
from connectors.telegram.connector import TelegramConnector, build, check_connection, parse_raw
from connectors.telegram.files import TOO_BIG
from connectors.telegram.text import readable
from connectors.telegram.updates import start_payload
from connectors.types import ChannelHealth, RawPayload, Reachability
from tests.connectors.telegram.bot_api_standin import BotApiStandIn
from tests.connectors.telegram.conftest import CHANNEL, SECRET, make_config
from tests.connectors.telegram.helpers import post_update, webhook_app
from tests.connectors.telegram.recording import Recorder

ANN = {"id": 555, "is_bot": False, "first_name": "Ann", "last_name": "Lee", "username": "annlee"}
GROUP = {"id": -42, "title": "Buyers", "type": "group"}
SUPERGROUP = {"id": -100042, "title": "Buyers", "type": "supergroup"}


def update(update_id: int, kind: str = "message", **message: Any) -> dict[str, Any]:
    body = {"message_id": update_id, "date": 1700000000, "from": ANN, **message}
    body.setdefault("chat", {"id": 555, "type": "private", "first_name": "Ann"})
    return {"update_id": update_id, kind: body}


async def deliver(
    aiohttp_client: Any, connector: TelegramConnector, *updates: dict[str, Any]
) -> None:
    client = await aiohttp_client(webhook_app(connector))
    for item in updates:
        body = json.dumps(item).encode()
        assert await post_update(client, connector, body, SECRET) == 200


async def test_a_private_message_is_from_the_user(
    aiohttp_client: Any, recorder: Recorder, connector: TelegramConnector
) -> None:
    await deliver(aiohttp_client, connector, update(1, text="Hello"))
    (message,) = recorder.inbound
    assert message.external_id == "555:1"
    assert message.sender is not None and message.author is None
    assert message.sender.value == "555"
    assert message.sender.display_name == "Ann Lee (@annlee)"
    assert message.thread.chat_id == "555"
    assert message.sent_at.timestamp() == 1700000000


async def test_an_edit_is_recorded_as_an_edit_of_the_original(
    aiohttp_client: Any, recorder: Recorder, connector: TelegramConnector
) -> None:
    await deliver(
        aiohttp_client,
        connector,
        update(1, text="Helo"),
        update(2, "edited_message", message_id=1, edit_date=1700000060, text="Hello"),
    )
    original, edit = recorder.inbound
    assert edit.edit_of == original.external_id == "555:1"
    assert edit.external_id == "555:1:edit:1700000060"
    assert edit.text == "Hello" and edit.sent_at.timestamp() == 1700000060


async def test_a_group_message_is_from_the_group_written_by_the_member(
    aiohttp_client: Any, recorder: Recorder, connector: TelegramConnector
) -> None:
    await deliver(
        aiohttp_client,
        connector,
        update(1, chat=GROUP, text="Hi all"),
        update(2, chat=GROUP, text="reply", reply_to_message={**update(1, chat=GROUP)["message"]}),
    )
    first, second = recorder.inbound
    assert first.sender is not None and (first.sender.value, first.sender.display_name) == (
        "-42",
        "Buyers",
    )
    assert first.author is not None and first.author.value == "555"
    assert first.external_id == "-42:1" and first.thread.chat_id == "-42"
    assert second.reply_to == "-42:1"


async def test_an_upgraded_group_keeps_its_conversation(
    aiohttp_client: Any, standin: BotApiStandIn, recorder: Recorder, connector: TelegramConnector
) -> None:
    await deliver(
        aiohttp_client,
        connector,
        update(1, chat=GROUP, text="before"),
        update(2, chat=GROUP, migrate_to_chat_id=-100042),
        update(3, chat=SUPERGROUP, message_id=1, migrate_from_chat_id=-42),
        update(4, chat=SUPERGROUP, message_id=2, text="after"),
    )
    senders = {m.sender.value for m in recorder.inbound if m.sender is not None}
    assert senders == {"-42"}
    assert [m.external_id for m in recorder.inbound] == ["-42:1", "-42:2", "-100042:1", "-100042:2"]
    assert [m.auto_submitted for m in recorder.inbound] == [False, True, True, False]
    # Replies to the conversation (addressed to -42) reach the supergroup.
    from tests.connectors.telegram.test_send import reply

    await connector.send(reply("welcome", recipient="-42"))
    assert standin.calls_of("sendMessage")[-1].params["chat_id"] == "-100042"


async def test_an_anonymous_admin_has_no_author_and_a_channel_post_is_from_the_channel(
    aiohttp_client: Any, recorder: Recorder, connector: TelegramConnector
) -> None:
    channel = {"id": -1007, "title": "News", "type": "channel"}
    await deliver(
        aiohttp_client,
        connector,
        update(1, chat=SUPERGROUP, sender_chat=SUPERGROUP, text="from the admins"),
        {
            "update_id": 2,
            "channel_post": {
                "message_id": 5,
                "date": 1700000000,
                "chat": channel,
                "text": "posted",
            },
        },
    )
    admin, post = recorder.inbound
    assert admin.author is None and admin.sender is not None and admin.sender.value == "-100042"
    assert post.sender is not None and (post.sender.value, post.sender.display_name) == (
        "-1007",
        "News",
    )
    assert post.external_id == "-1007:5"


async def test_blocking_and_unblocking_the_bot(
    aiohttp_client: Any, recorder: Recorder, connector: TelegramConnector
) -> None:
    def membership(update_id: int, old: str, new: str) -> dict[str, Any]:
        bot = {"id": 1, "is_bot": True, "first_name": "bot"}
        return {
            "update_id": update_id,
            "my_chat_member": {
                "chat": {"id": 555, "type": "private", "first_name": "Ann"},
                "from": ANN,
                "date": 1700000000,
                "old_chat_member": {"user": bot, "status": old},
                "new_chat_member": {"user": bot, "status": new, "until_date": 0}
                if new == "kicked"
                else {"user": bot, "status": new},
            },
        }

    await deliver(
        aiohttp_client,
        connector,
        membership(1, "member", "kicked"),
        membership(2, "kicked", "member"),
    )
    assert [(c.who.value, c.change) for c in recorder.reachability] == [
        ("555", Reachability.BLOCKED),
        ("555", Reachability.UNBLOCKED),
    ]
    assert recorder.inbound == []


async def test_a_file_over_20_mb_is_noted_and_a_failed_download_fetched_again(
    aiohttp_client: Any, standin: BotApiStandIn, recorder: Recorder, connector: TelegramConnector
) -> None:
    big = {"file_id": "BIG", "file_unique_id": "b", "file_name": "big.zip", "file_size": 25 << 20}
    late = {"file_id": "LATE", "file_unique_id": "l", "file_name": "late.pdf", "file_size": 9}
    hidden = {"file_id": "HUGE", "file_unique_id": "h", "file_name": "huge.bin"}  # no size given
    standin.add_file("HUGE", b"x", file_size=30 << 20)  # getFile reveals it
    await deliver(
        aiohttp_client,
        connector,
        update(1, document=big),
        update(2, document=late, caption="the contract"),
        update(3, document=hidden),
    )
    too_big, missing, huge = (m.attachments[0] for m in recorder.inbound)
    assert (too_big.data, too_big.error, too_big.source) == (b"", TOO_BIG, "BIG")
    assert too_big.size == 25 << 20
    assert "BIG" not in [c.params.get("file_id") for c in standin.calls_of("getFile")]
    assert huge.error == TOO_BIG
    assert missing.error is not None and missing.error.startswith("download failed")
    assert missing.source == "LATE" and recorder.inbound[1].text == "the contract"
    assert missing.retry and not too_big.retry and not huge.retry

    standin.add_file("LATE", b"%PDF-late")
    again = await connector.fetch_attachment(missing)
    assert (again.data, again.error, again.filename) == (b"%PDF-late", None, "late.pdf")


async def test_a_sink_that_fails_makes_the_webhook_answer_503(
    aiohttp_client: Any, recorder: Recorder, connector: TelegramConnector
) -> None:
    client = await aiohttp_client(webhook_app(connector))
    recorder.fail_inbound = True
    body = json.dumps(update(1, text="x")).encode()
    assert await post_update(client, connector, body, SECRET) == 503
    recorder.fail_inbound = False
    assert await post_update(client, connector, body, SECRET) == 200
    assert await post_update(client, connector, b"not json", SECRET) == 400
    assert [m.text for m in recorder.inbound] == ["x"]


async def test_webhook_mode_registers_the_webhook_only_on_https(
    standin: BotApiStandIn, recorder: Recorder
) -> None:
    config = make_config(standin, mode="webhook")
    secure = build(CHANNEL, config, recorder.context("https://hub.example.com"))
    try:
        await secure.run()  # returns at once: updates come to the route
    finally:
        await secure.close()
    (call,) = standin.calls_of("setWebhook")
    assert call.params["url"] == f"https://hub.example.com/webhooks/telegram/{CHANNEL}"
    assert call.params["secret_token"] == SECRET
    assert "my_chat_member" in call.params["allowed_updates"]
    assert recorder.health[-1][1] is ChannelHealth.CONNECTED
    recorder.health.clear()

    plain = build(CHANNEL, config, recorder.context("http://127.0.0.1:8080"))
    try:
        with pytest.raises(PermanentError, match="https"):
            await plain.run()
    finally:
        await plain.close()
    assert [health for _, health, _ in recorder.health] == [ChannelHealth.CONFIG_ERROR]
    assert len(standin.calls_of("setWebhook")) == 1


async def test_check_connection_with_a_good_and_a_bad_token(standin: BotApiStandIn) -> None:
    assert await check_connection(make_config(standin)) == {}
    bad = await check_connection(make_config(standin, bot_token="42:" + "z" * 35))
    assert bad == {"bot_token": "Telegram refused the token (401 Unauthorized)"}
    nowhere = await check_connection(make_config(standin, api_base_url="http://127.0.0.1:9"))
    assert list(nowhere) == ["api_base_url"]


def test_parse_raw_reads_a_stored_update_again() -> None:
    raw = json.dumps(
        update(
            7,
            photo=[{"file_id": "P", "file_unique_id": "p", "width": 9, "height": 9}],
            caption="look",
        )
    ).encode()
    inbound = parse_raw(CHANNEL, RawPayload("application/json", raw))
    assert (inbound.external_id, inbound.text) == ("555:7", "look")
    assert inbound.attachments[0].source == "P" and inbound.attachments[0].data == b""


def test_hidden_links_are_spelled_out_and_utf16_offsets_respected() -> None:
    from aiogram.types import MessageEntity

    text = "😀 see docs now"
    link = MessageEntity(type="text_link", offset=7, length=4, url="https://x.example/docs")
    assert readable(text, [link, link]) == "😀 see docs (https://x.example/docs) now"
    beyond = MessageEntity(type="text_link", offset=40, length=9, url="https://y.example")
    assert readable(text, [beyond]) == text


def test_start_payload() -> None:
    assert start_payload("/start campaign-42") == "campaign-42"
    assert start_payload("/start@shop_bot ref_7") == "ref_7"
    assert start_payload("/start") is None
    assert start_payload("hello /start x") is None


async def test_a_deep_link_start_is_recorded_for_attribution(
    aiohttp_client: Any, recorder: Recorder, connector: TelegramConnector
) -> None:
    await deliver(
        aiohttp_client,
        connector,
        update(1, text="/start spring_sale-7", entities=[_command(6)]),
        update(2, text="/start", entities=[_command(6)]),
        update(3, text="/start later", entities=[_command(6)]),
        update(4, "edited_message", message_id=3, edit_date=1700000060, text="/start edited"),
    )
    deep, plain, later, edited = recorder.inbound
    assert deep.attribution == (("source", "telegram_start"), ("start_payload", "spring_sale-7"))
    assert deep.text == "/start spring_sale-7"
    assert plain.attribution == ()
    assert later.attribution == (("source", "telegram_start"), ("start_payload", "later"))
    assert edited.attribution == ()  # an edit is not a new arrival


async def test_a_shared_own_phone_is_offered_as_an_identity_and_a_card_is_not(
    aiohttp_client: Any, recorder: Recorder, connector: TelegramConnector
) -> None:
    own = {"phone_number": "+14155550100", "first_name": "Ann", "user_id": ANN["id"]}
    friend = {"phone_number": "+14155550111", "first_name": "Bob", "user_id": 777}
    unknown = {"phone_number": "14155550122", "first_name": "Cy"}  # no Telegram account
    await deliver(
        aiohttp_client,
        connector,
        update(1, contact=own),
        update(2, contact=friend),
        update(3, contact=unknown),
    )
    mine, card, other = recorder.inbound
    assert [(h.kind, h.value, h.display_name) for h in mine.identities] == [
        ("phone", "+14155550100", "Ann")
    ]
    assert card.identities == () and other.identities == ()
    assert "+14155550111" in card.text  # still shown to the agent


def _command(length: int) -> dict[str, Any]:
    return {"type": "bot_command", "offset": 0, "length": length}
