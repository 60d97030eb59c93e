"""Every Twilio webhook fixture in the shared corpus, posted signed to the channel's routes,
handled as its `expected` block says."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from connectors.sms.config import SmsConfig
from connectors.sms.connector import build
from connectors.sms.events import Location, parse_form, parse_incoming
from connectors.sms.parse import render_location, to_inbound
from connectors.types import DeliveryState, IdentityKind
from tests.connectors.sms.conftest import CHANNEL
from tests.connectors.sms.recording import Recording
from tests.connectors.sms.twilio_standin import TwilioStandin, post_webhook

CORPUS = Path("/work/shared/corpus/twilio")
FIXTURES = sorted(p for p in CORPUS.glob("*.json") if "signature_vectors" not in p.name)
LOADED = [json.loads(p.read_text()) for p in FIXTURES]
FORM_FIXTURES = [f for f in LOADED if f["raw_body"] is not None]
TOKEN = "corpus-token"
PUBLIC = "https://hub.example.org"


def _expected_sender(address: str | None) -> str | None:
    return None if address is None else address.removeprefix("whatsapp:")


def test_corpus_is_there() -> None:
    assert len(FIXTURES) == 12
    assert len(FORM_FIXTURES) == 11


@pytest.fixture
async def corpus_client(
    aiohttp_client: Callable[[web.Application], Any], standin: TwilioStandin
) -> AsyncIterator[Callable[[str], Any]]:
    """Makes a (client, recording) pair for a channel of the fixture's account."""
    connectors = []

    async def make(account_sid: str) -> tuple[TestClient[Any, Any], Recording]:
        config = SmsConfig(
            account_sid=account_sid,
            auth_token=TOKEN,
            phone_number="+14155550100",
            api_base_url=standin.base_url,
        )
        recording = Recording(public_url=PUBLIC)
        connector = build(CHANNEL, config, recording.context())
        connectors.append(connector)
        app = web.Application()
        app.add_routes(connector.routes())
        return await aiohttp_client(app), recording

    yield make
    for connector in connectors:
        await connector.close()


@pytest.mark.parametrize("fixture", FORM_FIXTURES, ids=lambda f: f["file"])
async def test_fixture(
    fixture: dict[str, Any], corpus_client: Callable[[str], Any], standin: TwilioStandin
) -> None:
    expected = fixture["expected"]
    params = dict(fixture["params"])
    client, recording = await corpus_client(params["AccountSid"])
    route = f"/webhooks/twilio/{CHANNEL}"
    if fixture["kind"] == "status_callback":
        route += "/status"
    response = await post_webhook(
        client, route, public_url=PUBLIC, auth_token=TOKEN, raw_body=fixture["raw_body"]
    )

    if fixture["kind"] == "voice_call_webhook":
        assert response.status == 400
        assert "no MessageSid" in await response.text()
        assert recording.events == []
        return

    assert response.status == 200
    if fixture["kind"] == "status_callback":
        assert recording.inbound == []
        [update] = recording.statuses
        assert update.provider_message_id == expected["message_sid"]
        assert update.state == DeliveryState(expected["message_status"])
        assert update.error is None
        return

    assert response.content_type == "text/xml"
    assert "<Response></Response>" in await response.text()
    [inbound] = recording.inbound
    assert inbound.external_id == expected.get("message_sid", params["MessageSid"])
    assert inbound.raw is not None and inbound.raw.data == fixture["raw_body"].encode()
    sender = _expected_sender(expected["from"])
    if sender is None:
        assert inbound.sender is None
    else:
        assert inbound.sender is not None
        assert inbound.sender.kind is IdentityKind.PHONE
        assert inbound.sender.value == sender
    assert inbound.thread.chat_id == f"{params['From']}>{params['To']}"
    if "location" in expected:
        location = expected["location"]
        assert inbound.text.startswith("[location] ")
        assert location["label"] in inbound.text and location["address"] in inbound.text
        assert f"mlat={location['latitude']}&mlon={location['longitude']}" in inbound.text
    else:
        assert inbound.text == expected["body"]
    assert len(inbound.attachments) == expected["num_media"]
    for attachment, media in zip(inbound.attachments, expected.get("media", []), strict=True):
        # Neither api.twilio.com nor a scheme-less URL is the configured API host: the
        # message is kept, the file noted, nothing fetched and no credentials sent away.
        assert attachment.data == b""
        assert attachment.source == media["url"]
        assert attachment.content_type == media["content_type"]
        assert attachment.error is not None and "not on the Twilio API host" in attachment.error
    assert [r.path for r in standin.requests] == []
    assert recording.reachability == []


def test_json_dictionary_fixture_parses_without_inventing_numbers() -> None:
    # Values of the JSON form are already decoded: From is literally "%2B2222".
    fixture = json.loads((CORPUS / "botbuilderdotnet__DictionaryMediaPayload.json").read_text())
    body = urlencode({k: str(v) for k, v in fixture["params_json"].items()}).encode()
    event = parse_incoming(parse_form(body))
    inbound = to_inbound(CHANNEL, event, region="US", received_at=datetime.now(UTC), raw=body)
    assert event.from_ == "%2B2222"
    assert inbound.sender is None
    assert inbound.text == fixture["expected"]["body"]
    assert [(m.url, m.content_type) for m in event.media] == [("www.contoso.com", "json")]
    assert len(event.media) == fixture["expected"]["num_media"]


def test_location_rendering() -> None:
    text = render_location(Location("52.52", "13.40"))
    assert text == (
        "[location] 52.52, 13.40 https://www.openstreetmap.org/?mlat=52.52&mlon=13.40"
        "#map=16/52.52/13.40"
    )
