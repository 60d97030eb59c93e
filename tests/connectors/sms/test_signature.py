"""X-Twilio-Signature: the SDK vectors in the shared corpus, and the webhook's 403s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from multidict import MultiDict

from connectors.sms.signature import signature_is_valid
from tests.connectors.sms.conftest import ACCOUNT_SID, AUTH_TOKEN, CHANNEL, CUSTOMER, PHONE
from tests.connectors.sms.recording import Recording
from tests.connectors.sms.twilio_standin import incoming_form, post_webhook

VECTORS = json.loads(
    Path("/work/shared/corpus/twilio/twilio-sdk__signature_vectors.json").read_text()
)
PATH = f"/webhooks/twilio/{CHANNEL}"
PUBLIC = "https://switchboard.example.com"


def _params(vector: dict[str, Any]) -> MultiDict[str]:
    params: MultiDict[str] = MultiDict()
    for key, value in vector["params"].items():
        for item in value if isinstance(value, list) else [value]:
            params.add(key, item)
    return params


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["id"])
def test_sdk_vectors(vector: dict[str, Any]) -> None:
    valid = signature_is_valid(
        VECTORS["auth_token"],
        vector["request_url"],
        _params(vector),
        vector["expected_signature"],
        body=vector.get("body"),
    )
    assert valid is vector["valid"]


def test_vectors_cover_both_outcomes() -> None:
    outcomes = {v["valid"] for v in VECTORS["vectors"]}
    assert outcomes == {True, False}
    assert len(VECTORS["vectors"]) == 17


def test_a_changed_parameter_or_token_fails_a_valid_vector() -> None:
    base = next(v for v in VECTORS["vectors"] if v["id"] == "base")
    params = _params(base)
    assert signature_is_valid("12345", base["request_url"], params, base["expected_signature"])
    params["Digits"] = "9999"
    assert not signature_is_valid("12345", base["request_url"], params, base["expected_signature"])
    assert not signature_is_valid(
        "54321", base["request_url"], _params(base), base["expected_signature"]
    )
    assert not signature_is_valid("12345", base["request_url"], _params(base), None)


async def test_signed_webhook_is_accepted(
    webhook_client: TestClient[Any, Any], recording: Recording
) -> None:
    params = incoming_form(ACCOUNT_SID, CUSTOMER, PHONE, "hello")
    response = await post_webhook(
        webhook_client, PATH, public_url=PUBLIC, auth_token=AUTH_TOKEN, params=params
    )
    assert response.status == 200
    assert len(recording.inbound) == 1


async def test_signature_with_default_port_is_accepted(
    webhook_client: TestClient[Any, Any], recording: Recording
) -> None:
    params = incoming_form(ACCOUNT_SID, CUSTOMER, PHONE, "hello")
    response = await post_webhook(
        webhook_client,
        PATH,
        public_url=PUBLIC,
        auth_token=AUTH_TOKEN,
        params=params,
        signed_url=f"https://switchboard.example.com:443{PATH}",
    )
    assert response.status == 200
    assert len(recording.inbound) == 1


@pytest.mark.parametrize("route", [PATH, PATH + "/status"])
@pytest.mark.parametrize("tamper", ["param", "url", "missing", "wrong", "token"])
async def test_tampered_webhooks_are_refused(
    webhook_client: TestClient[Any, Any], recording: Recording, tamper: str, route: str
) -> None:
    params = incoming_form(ACCOUNT_SID, CUSTOMER, PHONE, "pay me")
    changed = [(k, "pay you" if k == "Body" else v) for k, v in params]
    options: dict[str, dict[str, Any]] = {
        "param": {"signed_params": changed},
        "url": {"signed_url": "https://switchboard.example.com/webhooks/twilio/other"},
        "missing": {"signature": ""},
        "wrong": {"signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
        "token": {"auth_token": "not-the-token"},
    }
    kwargs: dict[str, Any] = {"public_url": PUBLIC, "auth_token": AUTH_TOKEN, "params": params}
    kwargs.update(options[tamper])
    response = await post_webhook(webhook_client, route, **kwargs)
    assert response.status == 403
    assert "X-Twilio-Signature" in await response.text()
    assert recording.events == []


async def test_signature_against_another_public_url_is_refused(
    webhook_client: TestClient[Any, Any], recording: Recording
) -> None:
    # Signed for the address the test server listens on, but Twilio calls the public one.
    params = incoming_form(ACCOUNT_SID, CUSTOMER, PHONE, "hello")
    response = await post_webhook(
        webhook_client,
        PATH,
        public_url=str(webhook_client.make_url("")),
        auth_token=AUTH_TOKEN,
        params=params,
    )
    assert response.status == 403
    assert recording.inbound == []
