"""Sending through the twilio client against the stand-in; error classification; the
connection check."""

from __future__ import annotations

import pytest

from connectors.errors import AuthError, PermanentError, TransientError
from connectors.sms.config import SmsConfig
from connectors.sms.connector import SmsConnector, build, check_connection
from connectors.types import DeliveryState, Outbound, OutboundAttachment
from tests.connectors.sms.conftest import ACCOUNT_SID, AUTH_TOKEN, CHANNEL, CUSTOMER, PHONE
from tests.connectors.sms.recording import Recording
from tests.connectors.sms.twilio_standin import TwilioStandin
from tests.services import free_port

SERVICE = "MG" + "ab" * 16


def reply(text: str = "Your order ships today.", to: str = CUSTOMER) -> Outbound:
    return Outbound(channel_id=CHANNEL, message_id="m-1", recipient=to, text=text)


async def test_send_posts_the_message_and_keeps_the_sid(
    connector: SmsConnector, standin: TwilioStandin
) -> None:
    result = await connector.send(reply())
    [request] = standin.api_requests("POST", "/Messages.json")
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.basic_auth() == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.form["To"] == CUSTOMER
    assert request.form["From"] == PHONE
    assert request.form["Body"] == "Your order ships today."
    assert request.form["StatusCallback"] == (
        f"https://switchboard.example.com/webhooks/twilio/{CHANNEL}/status"
    )
    assert "MessagingServiceSid" not in request.form
    [created] = standin.messages
    assert result.provider_message_id == created["sid"]
    assert result.provider_message_id is not None
    assert result.provider_message_id.startswith("SM") and len(result.provider_message_id) == 34
    assert result.state is DeliveryState.SENT


async def test_send_through_a_messaging_service(
    standin: TwilioStandin, recording: Recording
) -> None:
    config = SmsConfig(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        messaging_service_sid=SERVICE,
        api_base_url=standin.base_url,
    )
    connector = build(CHANNEL, config, recording.context())
    try:
        result = await connector.send(reply())
    finally:
        await connector.close()
    [request] = standin.api_requests("POST", "/Messages.json")
    assert request.form["MessagingServiceSid"] == SERVICE
    assert "From" not in request.form
    assert result.provider_message_id == standin.messages[0]["sid"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (21211, "not a valid phone number"),
        (21610, "unsubscribed"),
        (21614, "not a mobile number"),
        (21408, "region is not enabled"),
    ],
)
async def test_refused_recipients_are_permanent(
    connector: SmsConnector, standin: TwilioStandin, code: int, reason: str
) -> None:
    standin.failures[CUSTOMER] = code
    with pytest.raises(PermanentError) as caught:
        await connector.send(reply())
    assert reason in str(caught.value)
    assert str(code) in str(caught.value)
    assert standin.messages == []


async def test_refused_credentials_are_an_auth_error(
    standin: TwilioStandin, recording: Recording, config: SmsConfig
) -> None:
    connector = build(
        CHANNEL, config.model_copy(update={"auth_token": "wrong"}), recording.context()
    )
    try:
        with pytest.raises(AuthError, match="20003"):
            await connector.send(reply())
    finally:
        await connector.close()


async def test_rate_limit_is_transient_with_retry_after(
    connector: SmsConnector, standin: TwilioStandin
) -> None:
    standin.fail_all, standin.retry_after = 20429, "7"
    with pytest.raises(TransientError) as caught:
        await connector.send(reply())
    assert caught.value.retry_after == 7.0
    assert "429" in str(caught.value)


async def test_server_error_is_transient(connector: SmsConnector, standin: TwilioStandin) -> None:
    standin.fail_all = 20500
    with pytest.raises(TransientError) as caught:
        await connector.send(reply())
    assert "500" in str(caught.value)
    assert caught.value.retry_after is None


async def test_connection_refused_is_transient(recording: Recording, config: SmsConfig) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    connector = build(
        CHANNEL, config.model_copy(update={"api_base_url": closed}), recording.context()
    )
    try:
        with pytest.raises(TransientError, match="cannot reach Twilio"):
            await connector.send(reply())
    finally:
        await connector.close()


async def test_attachments_are_refused_before_sending(
    connector: SmsConnector, standin: TwilioStandin
) -> None:
    assert connector.capabilities.supports_attachments is False
    message = Outbound(
        channel_id=CHANNEL,
        message_id="m-2",
        recipient=CUSTOMER,
        text="see file",
        attachments=(OutboundAttachment("a.pdf", "application/pdf", b"%PDF"),),
    )
    with pytest.raises(PermanentError, match="attachments"):
        await connector.send(message)
    assert standin.requests == []


async def test_check_connection_good(config: SmsConfig, standin: TwilioStandin) -> None:
    assert await check_connection(config) == {}
    paths = [r.path for r in standin.requests]
    assert paths == [
        f"/2010-04-01/Accounts/{ACCOUNT_SID}.json",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json",
    ]
    assert standin.requests[1].query["PhoneNumber"] == PHONE


async def test_check_connection_wrong_token(config: SmsConfig) -> None:
    errors = await check_connection(config.model_copy(update={"auth_token": "nope"}))
    assert errors == {"auth_token": "Twilio refused the account SID or auth token (20003)"}


async def test_check_connection_number_not_in_account(config: SmsConfig) -> None:
    errors = await check_connection(config.model_copy(update={"phone_number": "+14155550111"}))
    assert errors == {"phone_number": "this number is not in the account"}


async def test_check_connection_messaging_service(standin: TwilioStandin) -> None:
    config = SmsConfig(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        messaging_service_sid=SERVICE,
        api_base_url=standin.base_url,
    )
    assert await check_connection(config) == {
        "messaging_service_sid": "this messaging service is not in the account"
    }
    standin.messaging_services.add(SERVICE)
    assert await check_connection(config) == {}
    assert standin.requests[-1].path == f"/v1/Services/{SERVICE}"


async def test_check_connection_unreachable(config: SmsConfig) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    errors = await check_connection(config.model_copy(update={"api_base_url": closed}))
    assert list(errors) == ["api_base_url"]
    assert errors["api_base_url"].startswith("cannot connect: ")
