"""Incoming SMS/MMS through the webhook: storage hand-off, media, opt-out keywords."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from connectors.sms.connector import SmsConnector, build, parse_raw
from connectors.types import IdentityKind, Reachability
from tests.connectors.sms.conftest import ACCOUNT_SID, AUTH_TOKEN, CHANNEL, CUSTOMER, PHONE
from tests.connectors.sms.recording import Recording
from tests.connectors.sms.twilio_standin import (
    TwilioStandin,
    incoming_form,
    post_webhook,
    sid,
)

PATH = f"/webhooks/twilio/{CHANNEL}"
PUBLIC = "https://switchboard.example.com"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x01" * 3000


async def _post(client: TestClient[Any, Any], params: list[tuple[str, str]]) -> Any:
    return await post_webhook(client, PATH, public_url=PUBLIC, auth_token=AUTH_TOKEN, params=params)


async def test_sms_becomes_one_inbound(
    webhook_client: TestClient[Any, Any], recording: Recording
) -> None:
    params = incoming_form(ACCOUNT_SID, "(415) 555-0199", PHONE, "Where is my order?")
    response = await _post(webhook_client, params)
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert await response.text() == ('<?xml version="1.0" encoding="UTF-8"?><Response></Response>')
    [inbound] = recording.inbound
    assert inbound.channel_id == CHANNEL
    assert inbound.external_id == dict(params)["MessageSid"]
    assert inbound.sender is not None
    assert (inbound.sender.kind, inbound.sender.value) == (IdentityKind.PHONE, CUSTOMER)
    assert inbound.text == "Where is my order?"
    assert inbound.sent_at.tzinfo is not None
    assert inbound.raw is not None
    assert inbound.raw.content_type == "application/x-www-form-urlencoded"
    assert b"Body=Where+is+my+order%3F" in inbound.raw.data
    assert recording.reachability == []


async def test_redelivered_webhook_hands_over_the_same_id_twice(
    webhook_client: TestClient[Any, Any], recording: Recording
) -> None:
    params = incoming_form(ACCOUNT_SID, CUSTOMER, PHONE, "hello")
    first = await _post(webhook_client, params)
    second = await _post(webhook_client, params)
    assert (first.status, second.status) == (200, 200)
    # The core dedupes by external id: both hand-offs must carry the same one.
    assert [m.external_id for m in recording.inbound] == [dict(params)["MessageSid"]] * 2
    assert recording.inbound[0].raw == recording.inbound[1].raw


async def test_mms_with_two_media_becomes_two_attachments(
    webhook_client: TestClient[Any, Any], recording: Recording, standin: TwilioStandin
) -> None:
    message_sid = sid("MM")
    jpeg_url = standin.add_media(message_sid, JPEG, "image/jpeg")
    png_url = standin.add_media(message_sid, PNG, "image/png")
    params = incoming_form(
        ACCOUNT_SID,
        CUSTOMER,
        PHONE,
        "",
        message_sid=message_sid,
        media=[(jpeg_url, "image/jpeg"), (png_url, "image/png")],
    )
    response = await _post(webhook_client, params)
    assert response.status == 200
    [inbound] = recording.inbound
    assert inbound.text == ""
    first, second = inbound.attachments
    assert (first.data, first.content_type, first.error) == (JPEG, "image/jpeg", None)
    assert (second.data, second.content_type, second.error) == (PNG, "image/png", None)
    assert first.filename == jpeg_url.rsplit("/", 1)[1] + ".jpg"
    assert second.filename == png_url.rsplit("/", 1)[1] + ".png"
    media_requests = standin.api_requests("GET", "")
    assert len(media_requests) == 2
    assert all(r.basic_auth() == (ACCOUNT_SID, AUTH_TOKEN) for r in media_requests)


async def test_media_redirect_to_cdn_is_followed_without_credentials(
    webhook_client: TestClient[Any, Any], recording: Recording, standin: TwilioStandin
) -> None:
    standin.redirect_media = True
    message_sid = sid("MM")
    url = standin.add_media(message_sid, JPEG, "image/jpeg")
    params = incoming_form(
        ACCOUNT_SID, CUSTOMER, PHONE, "pic", message_sid=message_sid, media=[(url, "image/jpeg")]
    )
    assert (await _post(webhook_client, params)).status == 200
    [attachment] = recording.inbound[0].attachments
    assert attachment.data == JPEG
    [api_hit] = [r for r in standin.requests if "/Media/" in r.path]
    [cdn_hit] = [r for r in standin.requests if r.path.startswith("/cdn/")]
    assert api_hit.basic_auth() == (ACCOUNT_SID, AUTH_TOKEN)
    assert cdn_hit.authorization is None


async def test_failed_download_keeps_the_message_and_can_be_fetched_again(
    webhook_client: TestClient[Any, Any],
    recording: Recording,
    standin: TwilioStandin,
    connector: SmsConnector,
) -> None:
    message_sid = sid("MM")
    url = standin.add_media(message_sid, JPEG, "image/jpeg")
    media_sid = url.rsplit("/", 1)[1]
    kept = standin.media.pop(media_sid)  # not there yet: the stand-in answers 404
    params = incoming_form(
        ACCOUNT_SID,
        CUSTOMER,
        PHONE,
        "see pic",
        message_sid=message_sid,
        media=[(url, "image/jpeg")],
    )
    assert (await _post(webhook_client, params)).status == 200
    [inbound] = recording.inbound
    assert inbound.text == "see pic"
    [attachment] = inbound.attachments
    assert attachment.data == b""
    assert attachment.source == url
    assert attachment.content_type == "image/jpeg"
    assert attachment.error is not None and "404" in attachment.error
    assert attachment.retry  # worth fetching again later

    standin.media[media_sid] = kept
    fetched = await connector.fetch_attachment(attachment)
    assert (fetched.data, fetched.error, fetched.source) == (JPEG, None, url)
    assert fetched.filename == attachment.filename


async def test_oversized_media_is_noted_not_stored(
    aiohttp_client: Any, standin: TwilioStandin, config: Any
) -> None:
    recording = Recording()
    connector = build(
        CHANNEL, config.model_copy(update={"max_media_bytes": 1024}), recording.context()
    )
    app = web.Application()
    app.add_routes(connector.routes())
    client = await aiohttp_client(app)
    message_sid = sid("MM")
    url = standin.add_media(message_sid, PNG, "image/png")
    params = incoming_form(
        ACCOUNT_SID, CUSTOMER, PHONE, "big", message_sid=message_sid, media=[(url, "image/png")]
    )
    try:
        assert (await _post(client, params)).status == 200
    finally:
        await connector.close()
    [attachment] = recording.inbound[0].attachments
    assert attachment.data == b""
    assert attachment.size == len(PNG)
    assert attachment.error == "over the 1024 byte limit"
    assert attachment.source == url
    assert not attachment.retry  # the file will not shrink


@pytest.mark.parametrize(
    ("body", "change"),
    [
        ("STOP", Reachability.OPTED_OUT),
        (" stop\n", Reachability.OPTED_OUT),
        ("Unsubscribe", Reachability.OPTED_OUT),
        ("STOPALL", Reachability.OPTED_OUT),
        ("cancel", Reachability.OPTED_OUT),
        ("END", Reachability.OPTED_OUT),
        ("quit", Reachability.OPTED_OUT),
        ("START", Reachability.OPTED_IN),
        ("unstop", Reachability.OPTED_IN),
        ("Yes", Reachability.OPTED_IN),
    ],
)
async def test_keywords_change_reachability_after_the_message(
    webhook_client: TestClient[Any, Any], recording: Recording, body: str, change: Reachability
) -> None:
    params = incoming_form(ACCOUNT_SID, CUSTOMER, PHONE, body)
    assert (await _post(webhook_client, params)).status == 200
    assert recording.kinds() == ["inbound", "reachability"]
    [inbound] = recording.inbound
    [reach] = recording.reachability
    assert inbound.text == body
    assert reach.change is change
    assert reach.channel_id == CHANNEL
    assert reach.who == inbound.sender
    assert reach.detail == body.strip().upper()
    assert reach.at.tzinfo is not None


@pytest.mark.parametrize("body", ["STOP please", "please stop", "stopp", "HELP"])
async def test_keywords_only_as_the_whole_message(
    webhook_client: TestClient[Any, Any], recording: Recording, body: str
) -> None:
    assert (
        await _post(webhook_client, incoming_form(ACCOUNT_SID, CUSTOMER, PHONE, body))
    ).status == 200
    assert recording.kinds() == ["inbound"]


async def test_other_account_is_refused(
    webhook_client: TestClient[Any, Any], recording: Recording
) -> None:
    params = incoming_form("AC" + "00" * 16, CUSTOMER, PHONE, "hi")
    response = await _post(webhook_client, params)
    assert response.status == 403
    assert "AccountSid" in await response.text()
    assert recording.events == []


async def test_store_failure_answers_503(
    webhook_client: TestClient[Any, Any], recording: Recording
) -> None:
    recording.fail = ConnectionError("database unavailable")
    response = await _post(webhook_client, incoming_form(ACCOUNT_SID, CUSTOMER, PHONE, "hi"))
    assert response.status == 503
    assert recording.inbound == []


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ([("AccountSid", ACCOUNT_SID), ("From", CUSTOMER), ("Body", "x")], "no MessageSid"),
        (
            [("MessageSid", "SM1"), ("AccountSid", ACCOUNT_SID), ("NumMedia", "x")],
            "NumMedia is not a number",
        ),
        (
            [("MessageSid", "SM1"), ("AccountSid", ACCOUNT_SID), ("NumMedia", "1")],
            "MediaUrl0 is missing",
        ),
    ],
)
async def test_unusable_forms_get_a_clear_400(
    webhook_client: TestClient[Any, Any],
    recording: Recording,
    params: list[tuple[str, str]],
    reason: str,
) -> None:
    response = await _post(webhook_client, params)
    assert response.status == 400
    assert reason in await response.text()
    assert recording.events == []


async def test_raw_payload_reparses_to_the_same_message(
    webhook_client: TestClient[Any, Any], recording: Recording, standin: TwilioStandin
) -> None:
    message_sid = sid("MM")
    url = standin.add_media(message_sid, JPEG, "image/jpeg")
    params = incoming_form(
        ACCOUNT_SID, CUSTOMER, PHONE, "again", message_sid=message_sid, media=[(url, "image/jpeg")]
    )
    assert (await _post(webhook_client, params)).status == 200
    [stored] = recording.inbound
    assert stored.raw is not None
    again = parse_raw(CHANNEL, stored.raw)
    assert (again.external_id, again.sender, again.text, again.thread) == (
        stored.external_id,
        stored.sender,
        stored.text,
        stored.thread,
    )
    [attachment] = again.attachments
    assert (attachment.source, attachment.filename) == (url, stored.attachments[0].filename)
    assert attachment.data == b"" and attachment.error is not None


async def test_run_returns_at_once(connector: SmsConnector) -> None:
    await connector.run()
    assert connector.capabilities.max_text_length == 1600
    assert connector.capabilities.sends_per_second == 1.0
