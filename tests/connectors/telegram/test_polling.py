"""Long polling against the stand-in: the offset in the cursor store, restarts, failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors.errors import AuthError
from connectors.telegram.connector import TelegramConnector, build
from connectors.types import ChannelHealth
from tests.connectors.telegram.bot_api_standin import BotApiStandIn
from tests.connectors.telegram.conftest import CHANNEL, make_config
from tests.connectors.telegram.helpers import wait_until
from tests.connectors.telegram.recording import Recorder


def text_update(update_id: int, text: str, chat_id: int = 555) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
            "chat": {"id": chat_id, "first_name": "Ann", "type": "private"},
            "date": 1700000000 + update_id,
            "text": text,
        },
    }


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_restart_in_the_middle_hands_each_update_over_once(
    standin: BotApiStandIn, recorder: Recorder
) -> None:
    for n in range(1, 4):
        standin.feed(text_update(n, f"first {n}"))
    first = build(CHANNEL, make_config(standin), recorder.context())
    task = asyncio.create_task(first.run())
    await wait_until(lambda: len(recorder.inbound) == 3, "the first three updates")
    await wait_until(lambda: standin.confirmed_offset == 4, "the first batch to be confirmed")
    await _stop(task)
    await first.close()
    assert await recorder.cursors.load(CHANNEL, "telegram:offset") == "4"

    # Updates that arrive while no worker polls wait at Telegram ...
    for n in range(4, 7):
        standin.feed(text_update(n, f"second {n}"))
    # ... and a new instance (another worker, same durable cursor store) picks them up.
    second = build(CHANNEL, make_config(standin), recorder.context())
    task = asyncio.create_task(second.run())
    try:
        await wait_until(lambda: standin.confirmed_offset == 7, "the second batch")
    finally:
        await _stop(task)
        await second.close()
    ids = [m.external_id for m in recorder.inbound]
    assert ids == [f"555:{n}" for n in range(1, 7)]
    assert [c.method for c in standin.calls][:2] == ["deleteWebhook", "getUpdates"]
    offsets = [c.params.get("offset") for c in standin.calls_of("getUpdates")]
    assert offsets[0] is None  # a first start takes whatever Telegram holds
    assert "4" in offsets and "7" in offsets
    allowed = standin.calls_of("getUpdates")[0].params["allowed_updates"]
    assert {"message", "edited_message", "channel_post", "my_chat_member"} <= set(allowed)


async def test_a_worker_stopped_in_the_middle_of_a_batch_loses_and_repeats_nothing(
    standin: BotApiStandIn, recorder: Recorder
) -> None:
    for n in range(1, 7):
        standin.feed(text_update(n, f"update {n}"))
    recorder.hold_after = 2  # the third hand-over stalls: the worker is stopped there
    first = build(CHANNEL, make_config(standin), recorder.context())
    task = asyncio.create_task(first.run())
    await wait_until(lambda: len(recorder.inbound) == 2, "two hand-overs")
    await _stop(task)
    await first.close()
    assert await recorder.cursors.load(CHANNEL, "telegram:offset") == "3"
    assert standin.confirmed_offset is None  # Telegram still holds all six

    recorder.release()
    second = build(CHANNEL, make_config(standin), recorder.context())
    task = asyncio.create_task(second.run())
    try:
        await wait_until(lambda: standin.confirmed_offset == 7, "the rest of the batch")
    finally:
        await _stop(task)
        await second.close()
    assert [m.external_id for m in recorder.inbound] == [f"555:{n}" for n in range(1, 7)]
    assert standin.calls_of("getUpdates")[1].params.get("offset") == "3"


async def test_a_failed_hand_over_keeps_the_offset_so_nothing_is_lost(
    standin: BotApiStandIn, recorder: Recorder
) -> None:
    standin.feed(text_update(10, "one"))
    recorder.fail_inbound = True
    connector = build(CHANNEL, make_config(standin), recorder.context())
    try:
        with pytest.raises(Exception, match="database unavailable"):
            await connector.run()
    finally:
        await connector.close()
    assert await recorder.cursors.load(CHANNEL, "telegram:offset") is None
    assert standin.pending() == [10]

    recorder.fail_inbound = False
    again = build(CHANNEL, make_config(standin), recorder.context())
    task = asyncio.create_task(again.run())
    try:
        await wait_until(lambda: standin.confirmed_offset == 11, "the retried update")
    finally:
        await _stop(task)
        await again.close()
    assert [m.text for m in recorder.inbound] == ["one"]


async def test_an_unreadable_update_is_acknowledged_and_the_next_one_goes_on(
    standin: BotApiStandIn, recorder: Recorder, connector: TelegramConnector
) -> None:
    standin.feed('{"update_id": 20, "message": {"message_id": "not a number"}}')
    standin.feed({"update_id": 21, "new_update_kind": {"x": 1}})
    standin.feed(
        {
            "update_id": 22,
            "callback_query": {
                "id": "1",
                "chat_instance": "c",
                "from": {"id": 1, "is_bot": False, "first_name": "A"},
                "data": "*",
            },
        }
    )
    standin.feed(text_update(23, "still here"))
    task = asyncio.create_task(connector.run())
    try:
        await wait_until(lambda: standin.confirmed_offset == 24, "the updates to be confirmed")
    finally:
        await _stop(task)
    assert [m.text for m in recorder.inbound] == ["still here"]


async def test_network_trouble_is_reported_and_waited_out(
    standin: BotApiStandIn, recorder: Recorder
) -> None:
    standin.fail_next("getUpdates", 502, "Bad Gateway")
    standin.fail_next("getUpdates", 409, "Conflict: terminated by other getUpdates request")
    standin.feed(text_update(30, "after the storm"))
    connector = build(CHANNEL, make_config(standin), recorder.context())
    connector.backoff_start_seconds = 0.01  # the retries need not wait seconds
    task = asyncio.create_task(connector.run())
    try:
        await wait_until(lambda: len(recorder.inbound) == 1, "the update after the errors")
    finally:
        await _stop(task)
        await connector.close()
    states = [health for _, health, _ in recorder.health]
    assert states[:3] == [
        ChannelHealth.TRANSIENT_DISCONNECT,
        ChannelHealth.TRANSIENT_DISCONNECT,
        ChannelHealth.CONNECTED,
    ]
    assert "Bad Gateway" in (recorder.health[0][2] or "")


async def test_a_rate_limit_on_getupdates_is_waited_out(
    standin: BotApiStandIn, recorder: Recorder, connector: TelegramConnector
) -> None:
    standin.fail_next("getUpdates", 429, "Too Many Requests: retry after 1", {"retry_after": 1})
    standin.feed(text_update(40, "patience"))
    task = asyncio.create_task(connector.run())
    try:
        await wait_until(lambda: len(recorder.inbound) == 1, "the update after the 429")
    finally:
        await _stop(task)
    assert len(standin.calls_of("getUpdates")) >= 2


async def test_a_refused_token_is_bad_credentials(
    standin: BotApiStandIn, recorder: Recorder
) -> None:
    config = make_config(standin, bot_token="42:" + "x" * 35)
    connector = build(CHANNEL, config, recorder.context())
    try:
        with pytest.raises(AuthError):
            await connector.run()
    finally:
        await connector.close()
    assert recorder.health[-1][1] is ChannelHealth.BAD_CREDENTIALS
