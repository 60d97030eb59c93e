"""Fixtures for the SMS channel: the Twilio stand-in, a recording context, the connector
and a test client serving its webhook routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from connectors.sms.config import SmsConfig
from connectors.sms.connector import SmsConnector, build
from connectors.types import ChannelId
from tests.connectors.sms.recording import Recording
from tests.connectors.sms.twilio_standin import TwilioStandin

ACCOUNT_SID = "AC" + "5e" * 16
AUTH_TOKEN = "standin-auth-token"
PHONE = "+14155550100"
CUSTOMER = "+14155550199"
CHANNEL = ChannelId("sms-1")


@pytest.fixture
async def standin() -> AsyncIterator[TwilioStandin]:
    async with TwilioStandin(ACCOUNT_SID, AUTH_TOKEN, phone_numbers={PHONE}) as api:
        yield api


@pytest.fixture
def config(standin: TwilioStandin) -> SmsConfig:
    return SmsConfig(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        phone_number=PHONE,
        api_base_url=standin.base_url,
    )


@pytest.fixture
def recording() -> Recording:
    return Recording()


@pytest.fixture
async def connector(config: SmsConfig, recording: Recording) -> AsyncIterator[SmsConnector]:
    conn = build(CHANNEL, config, recording.context())
    yield conn
    await conn.close()


@pytest.fixture
async def webhook_client(
    aiohttp_client: Callable[[web.Application], Any], connector: SmsConnector
) -> TestClient[web.Request, web.Application]:
    """A test client for an app serving only the connector's routes."""
    app = web.Application()
    app.add_routes(connector.routes())
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return client
