"""A reply queued by a web process reaches the provider through a worker in another
process without waiting for the worker's poll: the bus wakes it (issue 9)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.connectors.sms.twilio_standin import TwilioStandin, incoming_form, post_webhook, sid
from tests.hub import KEY, Hub, start_hub
from web.app import create_app
from web.settings import Settings

ACCOUNT = "AC" + "2" * 32
TOKEN = "twilio-auth-token-for-wake"
OURS = "+14155550198"
ANN = "+14155550101"
PUBLIC = "https://hub.example.test"
# Far beyond the test's deadline: only a wake can make the worker send in time.
NEVER = 3600.0


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandin]:
    async with TwilioStandin(ACCOUNT, TOKEN, phone_numbers={OURS}) as api:
        yield api


def settings(database_url: str, redis_url: str, data_dir: Path) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "redis_url": redis_url,
        "data_dir": data_dir,
        "secret_key": KEY,
        "public_url": PUBLIC,
        "outbox_poll_seconds": NEVER,
    }


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_reply_on_the_web_process_wakes_the_worker_process(
    database_url: str, redis_url: str, tmp_path: Path, aiohttp_client: Any, twilio: TwilioStandin
) -> None:
    values = settings(database_url, redis_url, tmp_path / "data")
    hub: Hub = await start_hub(aiohttp_client, **values, roles=frozenset({"web"}))
    config = {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "phone_number": OURS,
        "default_region": "US",
        "api_base_url": twilio.base_url,
    }
    channel = await hub.post("/channels", {"kind": "sms", "name": "Texts", "config": config})
    inbound = incoming_form(ACCOUNT, ANN, OURS, "Is it in stock?", message_sid=sid("SM"))

    async def delivered() -> bool:
        # The web process serves the channel's webhook once its runtime has read the new
        # channel (on the channel's bus event); until then Twilio would be told 404 and
        # redeliver, as this does.
        answer = await post_webhook(
            hub.client,
            f"/webhooks/twilio/{channel['id']}",
            public_url=PUBLIC,
            auth_token=TOKEN,
            params=inbound,
        )
        return answer.status == 200

    await hub.until(delivered, "the web process takes the inbound message")
    [conversation] = await hub.conversations()

    worker = web.AppRunner(create_app(Settings(**values), roles=frozenset({"worker"})))
    await worker.setup()  # starts the worker's loops; it serves no HTTP here
    try:
        # The worker's first round ran at its start and found nothing to send; from now
        # on it would sleep for an hour unless woken.
        note = await hub.post(
            f"/conversations/{conversation['id']}/messages", {"text": "memo", "private": True}
        )
        reply = await hub.post(
            f"/conversations/{conversation['id']}/messages", {"text": "Yes, two left."}
        )

        async def sent() -> Any:
            return twilio.messages

        [outgoing] = await hub.until(sent, "the worker sent the reply")
        assert outgoing["body"] == "Yes, two left."
        assert outgoing["to"] == ANN
        states = {m["id"]: m["delivery"] for m in await hub.messages(conversation["id"])}
        assert states[note["id"]] is None or states[note["id"]]["state"] != "sent"
        assert reply["id"] in states
    finally:
        await worker.cleanup()
