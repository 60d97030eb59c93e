"""The SMS channel end to end: signed Twilio webhooks into the real app and database, a
reply through the API out through the real twilio client to the stand-in, status
callbacks, MMS media, redeliveries and opt-outs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from tests.connectors.sms.twilio_standin import (
    TwilioStandin,
    incoming_form,
    post_webhook,
    sid,
    status_form,
)
from tests.hub import Hub, start_hub
from timeline.db import session_factory
from timeline.models import AttachmentFetch
from web.keys import ENGINE_KEY

ACCOUNT = "AC" + "1" * 32
TOKEN = "twilio-auth-token-for-e2e"
OURS = "+14155550199"
ANN = "+14155550100"
PUBLIC = "https://hub.example.test"


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandin]:
    async with TwilioStandin(ACCOUNT, TOKEN, phone_numbers={OURS}) as api:
        yield api


@pytest.fixture
async def hub(database_url: str, tmp_path: Path, aiohttp_client: Any) -> Hub:
    return await start_hub(aiohttp_client, database_url, tmp_path / "data", public_url=PUBLIC)


async def connect(hub: Hub, twilio: TwilioStandin) -> str:
    config = {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "phone_number": OURS,
        "default_region": "US",
        "api_base_url": twilio.base_url,
    }
    channel = await hub.post("/channels", {"kind": "sms", "name": "Texts", "config": config})
    checked = await hub.post(f"/channels/{channel['id']}/test", status=200)
    assert checked == {"ok": True, "checked": True, "errors": {}}
    return str(channel["id"])


async def webhook(hub: Hub, channel_id: str, params: list[tuple[str, str]], **kw: Any) -> Any:
    return await post_webhook(
        hub.client,
        f"/webhooks/twilio/{channel_id}",
        public_url=PUBLIC,
        auth_token=TOKEN,
        params=params,
        **kw,
    )


async def test_the_whole_loop(hub: Hub, twilio: TwilioStandin) -> None:
    channel_id = await connect(hub, twilio)
    first = incoming_form(ACCOUNT, ANN, OURS, "Hi, has my order shipped?", message_sid=sid("SM"))
    answer = await webhook(hub, channel_id, first)
    assert answer.status == 200
    assert "<Response>" in await answer.text()
    # Twilio redelivers: still one message.
    assert (await webhook(hub, channel_id, first)).status == 200
    [conversation] = await hub.conversations()
    assert conversation["message_count"] == 1

    reply = await hub.post(
        f"/conversations/{conversation['id']}/messages", {"text": "Yes, it left today."}
    )

    async def sent() -> Any:
        return twilio.messages

    [outgoing] = await hub.until(sent, "the stand-in received the reply")
    assert outgoing["to"] == ANN and outgoing["from"] == OURS
    assert outgoing["body"] == "Yes, it left today."
    [request] = twilio.api_requests("POST", "/Messages.json")
    assert request.form["StatusCallback"] == f"{PUBLIC}/webhooks/twilio/{channel_id}/status"

    async def state(expected: str) -> Any:
        messages = await hub.messages(conversation["id"])
        mine = next(m for m in messages if m["id"] == reply["id"])
        return mine["delivery"]["state"] == expected and mine

    await hub.until(lambda: state("sent"), "the reply is recorded as sent")
    callback = await post_webhook(
        hub.client,
        f"/webhooks/twilio/{channel_id}/status",
        public_url=PUBLIC,
        auth_token=TOKEN,
        params=status_form(ACCOUNT, outgoing["sid"], "delivered", to=ANN, from_=OURS),
    )
    assert callback.status == 200
    await hub.until(lambda: state("delivered"), "the status callback marks it delivered")

    # A tampered webhook is refused and stores nothing.
    forged = incoming_form(ACCOUNT, ANN, OURS, "forged", message_sid=sid("SM"))
    assert (await webhook(hub, channel_id, forged, signature="bm90IGEgc2lnbmF0dXJl")).status == 403
    assert len(await hub.messages(conversation["id"])) == 2


async def test_mms_media_become_attachments(hub: Hub, twilio: TwilioStandin) -> None:
    channel_id = await connect(hub, twilio)
    message_sid = sid("MM")
    media = [
        (twilio.add_media(message_sid, b"\x89PNG picture", "image/png"), "image/png"),
        (twilio.add_media(message_sid, b"%PDF-1.4 receipt", "application/pdf"), "application/pdf"),
    ]
    form = incoming_form(ACCOUNT, ANN, OURS, "Here you go", message_sid=message_sid, media=media)
    assert (await webhook(hub, channel_id, form)).status == 200
    [conversation] = await hub.conversations()
    [message] = await hub.messages(conversation["id"])
    assert sorted(a["content_type"] for a in message["attachments"]) == [
        "application/pdf",
        "image/png",
    ]
    assert sorted(a["size"] for a in message["attachments"]) == sorted(
        [len(b"\x89PNG picture"), len(b"%PDF-1.4 receipt")]
    )


async def test_media_that_failed_to_download_is_fetched_again_by_the_worker(
    database_url: str, tmp_path: Path, aiohttp_client: Any, twilio: TwilioStandin
) -> None:
    hub = await start_hub(
        aiohttp_client,
        database_url,
        tmp_path / "data",
        public_url=PUBLIC,
        attachment_fetch_interval_seconds=0.1,
    )
    channel_id = await connect(hub, twilio)
    message_sid = sid("MM")
    url = twilio.add_media(message_sid, b"\x89PNG late picture", "image/png")
    media_sid = url.rsplit("/", 1)[1]
    kept = twilio.media.pop(media_sid)  # not there yet: the stand-in answers 404
    form = incoming_form(ACCOUNT, ANN, OURS, "Here", message_sid=message_sid, media=[(url, "")])
    assert (await webhook(hub, channel_id, form)).status == 200
    [conversation] = await hub.conversations()
    [message] = await hub.messages(conversation["id"])
    assert message["attachments"] == []
    assert "not stored yet" in message["text"] and "it will be fetched again" in message["text"]

    # The media appears; the retry falls due (time is moved, not waited for).
    twilio.media[media_sid] = kept
    async with session_factory(hub.client.app[ENGINE_KEY])() as session, session.begin():
        await session.execute(update(AttachmentFetch).values(next_at=datetime.now(UTC)))

    async def fetched() -> Any:
        [now] = await hub.messages(conversation["id"])
        return now if now["attachments"] else None

    message = await hub.until(fetched, "the media fetched again")
    assert message["text"] == "Here"
    [attachment] = message["attachments"]
    assert (attachment["content_type"], attachment["size"]) == (
        "image/png",
        len(b"\x89PNG late picture"),
    )
    timeline = await hub.get(f"/contacts/{conversation['contact_id']}/timeline")
    assert "attachment.fetched" in [item["kind"] for item in timeline["items"]]


async def test_stop_opts_out_and_start_opts_back_in(hub: Hub, twilio: TwilioStandin) -> None:
    channel_id = await connect(hub, twilio)
    stop = incoming_form(ACCOUNT, ANN, OURS, "Stop", message_sid=sid("SM"))
    assert (await webhook(hub, channel_id, stop)).status == 200
    [conversation] = await hub.conversations()
    refused = await hub.post(
        f"/conversations/{conversation['id']}/messages", {"text": "But wait!"}, status=422
    )
    assert "opted out" in refused["error"]["fields"]["channel_id"]
    timeline = await hub.get(f"/contacts/{conversation['contact_id']}/timeline")
    assert "contact.opted_out" in [item["kind"] for item in timeline["items"]]
    assert twilio.messages == []

    start = incoming_form(ACCOUNT, ANN, OURS, "START", message_sid=sid("SM"))
    assert (await webhook(hub, channel_id, start)).status == 200
    await hub.post(f"/conversations/{conversation['id']}/messages", {"text": "Welcome back"})

    async def sent() -> Any:
        return twilio.messages

    [outgoing] = await hub.until(sent, "a reply goes out again after START")
    assert outgoing["body"] == "Welcome back"
