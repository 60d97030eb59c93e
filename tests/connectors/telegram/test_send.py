"""Replies through the real aiogram client against the stand-in: splitting, files, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import AuthError, PermanentError, TransientError
from connectors.telegram.connector import TelegramConnector, build
from connectors.telegram.split import split_text
from connectors.telegram.text import utf16_len
from connectors.types import ChannelId, Outbound, OutboundAttachment, Reachability
from tests.connectors.telegram.bot_api_standin import BLOCKED, BotApiStandIn
from tests.connectors.telegram.conftest import CHANNEL, make_config
from tests.connectors.telegram.recording import Recorder


def reply(
    text: str, recipient: str = "555", *, message_id: str = "m1", **kwargs: object
) -> Outbound:
    return Outbound(
        channel_id=ChannelId(CHANNEL),
        message_id=message_id,
        recipient=recipient,
        text=text,
        **kwargs,  # type: ignore[arg-type]
    )


def test_split_prefers_paragraphs_then_sentences_then_words() -> None:
    paragraph = "word " * 700  # 3,500 characters
    text = paragraph.strip() + "\n\n" + paragraph.strip()
    assert split_text(text) == [paragraph.strip(), paragraph.strip()]
    sentences = ("This is a sentence. " * 300).strip()  # 6,000 characters, no paragraphs
    parts = split_text(sentences)
    assert len(parts) == 2 and parts[0].endswith(".") and parts[1].startswith("This")
    words = "abcdefghi " * 500
    assert all(part.endswith("abcdefghi") for part in split_text(words))


def test_split_counts_utf16_units_and_never_cuts_a_surrogate_pair() -> None:
    # 3,000 emoji are 3,000 Python characters but 6,000 UTF-16 units.
    text = "😀" * 3000
    parts = split_text(text)
    assert len(parts) == 2
    assert all(utf16_len(part) <= 4096 for part in parts)
    assert "".join(parts) == text
    assert utf16_len(parts[0]) == 4096


@given(st.text(alphabet=st.sampled_from(["a", " ", "\n", ".", "😀", "é"]), max_size=3000))
def test_split_loses_nothing_and_keeps_within_the_limit(text: str) -> None:
    parts = split_text(text, limit=300)
    assert all(0 < utf16_len(part) <= 300 for part in parts)
    # Only whitespace at the cuts is dropped.
    assert "".join("".join(parts).split()) == "".join(text.split())


async def test_a_long_reply_goes_out_as_several_messages(
    standin: BotApiStandIn, connector: TelegramConnector
) -> None:
    text = "\n\n".join(["Paragraph 😀 " * 300] * 3)
    result = await connector.send(reply(text))
    calls = standin.calls_of("sendMessage")
    assert len(calls) >= 3
    assert all(utf16_len(call.params["text"]) <= 4096 for call in calls)
    assert all(call.params["chat_id"] == "555" for call in calls)
    assert result.provider_message_id == f"555:{len(calls)}"


async def test_attachments_go_as_photo_and_document(
    standin: BotApiStandIn, connector: TelegramConnector
) -> None:
    photo = OutboundAttachment("p.jpg", "image/jpeg", b"\xff\xd8jpeg")
    pdf = OutboundAttachment("a.pdf", "application/pdf", b"%PDF-1.4")
    result = await connector.send(reply("Here you go", attachments=(photo, pdf)))
    assert [c.method for c in standin.calls] == ["sendMessage", "sendPhoto", "sendDocument"]
    assert standin.calls_of("sendPhoto")[0].files["photo"].data == photo.data
    sent = standin.calls_of("sendDocument")[0].files["document"]
    assert (sent.filename, sent.data) == ("a.pdf", pdf.data)
    assert result.provider_message_id == "555:3"


async def test_429_is_transient_with_retry_after(
    standin: BotApiStandIn, connector: TelegramConnector
) -> None:
    standin.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", {"retry_after": 7})
    with pytest.raises(TransientError) as caught:
        await connector.send(reply("hi"))
    assert caught.value.retry_after == 7


async def test_a_retry_after_a_failure_in_the_middle_sends_only_the_rest(
    standin: BotApiStandIn, connector: TelegramConnector
) -> None:
    text = "\n\n".join(["x" * 4000, "y" * 4000, "z" * 4000])
    standin.fail_next("sendMessage", 429, "Too Many Requests", {"retry_after": 1}, after=1)
    with pytest.raises(TransientError):
        await connector.send(reply(text, message_id="long"))
    standin.fail_next("sendMessage", 429, "Too Many Requests", {"retry_after": 1}, after=1)
    with pytest.raises(TransientError):
        await connector.send(reply(text, message_id="long"))
    result = await connector.send(reply(text, message_id="long"))
    assert [m["text"][0] for m in standin.delivered] == ["x", "y", "z"]
    assert result.provider_message_id == "555:3"
    # Another reply is not taken for a retry of this one.
    await connector.send(reply(text, message_id="other"))
    assert len(standin.delivered) == 6


async def test_a_user_who_blocked_the_bot_is_a_permanent_failure_with_the_reason(
    standin: BotApiStandIn, recorder: Recorder, connector: TelegramConnector
) -> None:
    standin.blocked_chats.add(777)
    with pytest.raises(PermanentError, match="bot was blocked by the user"):
        await connector.send(reply("hello?", recipient="777"))
    assert [(c.who.value, c.change) for c in recorder.reachability] == [
        ("777", Reachability.BLOCKED)
    ]
    assert recorder.reachability[0].detail == BLOCKED


async def test_bad_request_is_permanent_and_bad_token_is_auth(
    standin: BotApiStandIn, recorder: Recorder, connector: TelegramConnector
) -> None:
    standin.fail_next("sendMessage", 400, "Bad Request: chat not found")
    with pytest.raises(PermanentError, match="chat not found"):
        await connector.send(reply("hi"))
    other = build(CHANNEL, make_config(standin, bot_token="42:" + "y" * 35), recorder.context())
    try:
        with pytest.raises(AuthError):
            await other.send(reply("hi"))
    finally:
        await other.close()
    with pytest.raises(PermanentError, match="not a Telegram chat id"):
        await connector.send(reply("hi", recipient="ann@example.com"))


async def test_a_reply_to_an_upgraded_group_goes_to_the_supergroup(
    standin: BotApiStandIn, connector: TelegramConnector
) -> None:
    standin.migrated[-42] = -100042
    first = await connector.send(reply("to the group", recipient="-42"))
    assert first.provider_message_id == "-100042:1"
    second = await connector.send(reply("again", recipient="-42", message_id="m2"))
    assert second.provider_message_id == "-100042:2"
    # The second reply went straight to the supergroup: the migration was remembered.
    assert [c.params["chat_id"] for c in standin.calls_of("sendMessage")] == [
        "-42",
        "-100042",
        "-100042",
    ]
