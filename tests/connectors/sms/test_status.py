"""Status callbacks: signature-checked, mapped to delivery updates; the send → callback loop."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from connectors.sms.connector import SmsConnector
from connectors.types import DeliveryState, Outbound
from tests.connectors.sms.conftest import ACCOUNT_SID, AUTH_TOKEN, CHANNEL, CUSTOMER
from tests.connectors.sms.recording import Recording
from tests.connectors.sms.twilio_standin import TwilioStandin, post_webhook, sid, status_form

PATH = f"/webhooks/twilio/{CHANNEL}/status"
PUBLIC = "https://switchboard.example.com"


async def _post(client: TestClient[Any, Any], params: list[tuple[str, str]]) -> Any:
    return await post_webhook(client, PATH, public_url=PUBLIC, auth_token=AUTH_TOKEN, params=params)


@pytest.mark.parametrize(
    ("status", "code", "state", "error"),
    [
        ("sent", None, DeliveryState.SENT, None),
        ("delivered", None, DeliveryState.DELIVERED, None),
        ("read", None, DeliveryState.READ, None),
        (
            "undelivered",
            "30003",
            DeliveryState.FAILED_PERMANENT,
            "unreachable destination handset (Twilio 30003)",
        ),
        (
            "undelivered",
            "30004",
            DeliveryState.FAILED_PERMANENT,
            "message blocked by the recipient or their carrier (Twilio 30004)",
        ),
        (
            "undelivered",
            "30005",
            DeliveryState.FAILED_PERMANENT,
            "unknown destination handset (Twilio 30005)",
        ),
        (
            "failed",
            "30006",
            DeliveryState.FAILED_PERMANENT,
            "landline or unreachable carrier (Twilio 30006)",
        ),
        (
            "undelivered",
            "30007",
            DeliveryState.FAILED_PERMANENT,
            "filtered by the carrier (Twilio 30007)",
        ),
        ("undelivered", "30008", DeliveryState.FAILED_PERMANENT, "unknown error (Twilio 30008)"),
        (
            "failed",
            "21610",
            DeliveryState.FAILED_PERMANENT,
            "the recipient has unsubscribed (replied STOP) (Twilio 21610)",
        ),
        ("failed", "12345", DeliveryState.FAILED_PERMANENT, "delivery failed (Twilio 12345)"),
        ("failed", None, DeliveryState.FAILED_PERMANENT, "delivery failed"),
    ],
)
async def test_callbacks_map_to_delivery_updates(
    webhook_client: TestClient[Any, Any],
    recording: Recording,
    status: str,
    code: str | None,
    state: DeliveryState,
    error: str | None,
) -> None:
    message_sid = sid("SM")
    response = await _post(
        webhook_client, status_form(ACCOUNT_SID, message_sid, status, error_code=code)
    )
    assert response.status == 200
    [update] = recording.statuses
    assert update.channel_id == CHANNEL
    assert update.provider_message_id == message_sid
    assert update.state is state
    assert update.error == error
    assert update.at is not None and update.at.tzinfo is not None


@pytest.mark.parametrize("status", ["queued", "accepted", "scheduled", "sending", "brand-new"])
async def test_statuses_that_change_nothing_are_acknowledged(
    webhook_client: TestClient[Any, Any], recording: Recording, status: str
) -> None:
    response = await _post(webhook_client, status_form(ACCOUNT_SID, sid("SM"), status))
    assert response.status == 200
    assert recording.events == []


async def test_callback_for_another_account_is_refused(
    webhook_client: TestClient[Any, Any], recording: Recording
) -> None:
    response = await _post(webhook_client, status_form("AC" + "11" * 16, sid("SM"), "delivered"))
    assert response.status == 403
    assert recording.events == []


async def test_callback_without_status_is_400(
    webhook_client: TestClient[Any, Any], recording: Recording
) -> None:
    response = await _post(webhook_client, [("MessageSid", sid("SM")), ("AccountSid", ACCOUNT_SID)])
    assert response.status == 400
    assert recording.events == []


async def test_status_store_failure_answers_503(
    webhook_client: TestClient[Any, Any], recording: Recording
) -> None:
    recording.fail = ConnectionError("database unavailable")
    response = await _post(webhook_client, status_form(ACCOUNT_SID, sid("SM"), "delivered"))
    assert response.status == 503


async def test_send_then_callbacks_reach_the_same_provider_id(
    webhook_client: TestClient[Any, Any],
    recording: Recording,
    connector: SmsConnector,
    standin: TwilioStandin,
) -> None:
    result = await connector.send(
        Outbound(channel_id=CHANNEL, message_id="m-9", recipient=CUSTOMER, text="On its way")
    )
    [request] = standin.api_requests("POST", "/Messages.json")
    callback_url = request.form["StatusCallback"]
    assert callback_url == PUBLIC + PATH
    assert result.provider_message_id is not None
    for status in ("sent", "delivered"):
        response = await _post(
            webhook_client,
            status_form(ACCOUNT_SID, result.provider_message_id, status, to=CUSTOMER),
        )
        assert response.status == 200
    assert [(u.provider_message_id, u.state) for u in recording.statuses] == [
        (result.provider_message_id, DeliveryState.SENT),
        (result.provider_message_id, DeliveryState.DELIVERED),
    ]
