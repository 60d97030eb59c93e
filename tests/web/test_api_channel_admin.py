"""What the channels screen needs beyond CRUD (issue 11): POST /channels/test checks a
configuration before the channel exists (field errors by configuration key; a Telegram
token answered with its bot's name), POST /channels/{id}/test names the bot too, and
GET /channels/{id}/endpoints gives the webhook URLs to paste into the provider. Against
the test Dovecot, an aiosmtpd server, and the Twilio and Bot API stand-ins; every test
on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from inbox.models import Role
from tests.connectors.email.conftest import Mailbox
from tests.connectors.email.conftest import dovecot as dovecot
from tests.connectors.email.smtp_server import CapturingSmtpServer, capturing_smtp
from tests.connectors.email.test_email_end_to_end import channel_config
from tests.connectors.sms.twilio_standin import TwilioStandin
from tests.services import Dovecot
from tests.web.conftest import VALID_CONFIGS, ApiUser, Client, MakeClient, make_api_user
from timeline.db import SessionFactory
from web.settings import Settings

__all__ = ["dovecot"]  # a fixture, used by its name

ACCOUNT = "AC" + "6" * 32
TOKEN = "twilio-auth-token-for-channel-admin"
OURS = "+14155550144"
TEST = "/api/v1/channels/test"
EMAIL = VALID_CONFIGS["email"]
SMS = VALID_CONFIGS["sms"]


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    name = f"u{uuid.uuid4().hex[:12]}"
    password = uuid.uuid4().hex
    dovecot.add_user(name, password)
    return Mailbox(dovecot, name, password)


@pytest.fixture
async def smtp() -> AsyncIterator[CapturingSmtpServer]:
    async with capturing_smtp() as server:
        yield server


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandin]:
    async with TwilioStandin(ACCOUNT, TOKEN, phone_numbers={OURS}) as api:
        yield api


async def draft(client: Client, user: ApiUser, body: Any, status: int = 200) -> Any:
    answer = await client.post(TEST, json=body, headers=user.headers)
    assert answer.status == status, await answer.text()
    return await answer.json()


async def create(client: Client, user: ApiUser, kind: str, config: dict[str, Any]) -> Any:
    body = {"kind": kind, "name": f"{kind} channel", "config": config}
    answer = await client.post("/api/v1/channels", json=body, headers=user.headers)
    assert answer.status == 201, await answer.text()
    return await answer.json()


async def test_a_mailbox_is_tested_before_it_exists_field_by_field(
    client: Client, admin: ApiUser, mailbox: Mailbox, smtp: CapturingSmtpServer
) -> None:
    config = channel_config(mailbox, smtp)
    wrong = await draft(
        client, admin, {"kind": "email", "config": {**config, "imap_password": "wrong"}}
    )
    assert wrong["ok"] is False and wrong["checked"] is True
    assert list(wrong["errors"]) == ["imap_password"]
    assert "account" not in wrong
    nowhere = await draft(
        client, admin, {"kind": "email", "config": {**config, "smtp_port": smtp.port + 1}}
    )
    assert list(nowhere["errors"]) == ["smtp_host"] or "smtp_port" in nowhere["errors"]
    right = await draft(client, admin, {"kind": "email", "config": config})
    assert right == {"ok": True, "checked": True, "errors": {}}
    # Nothing was saved.
    listed = await client.get("/api/v1/channels", headers=admin.headers)
    assert (await listed.json())["items"] == []


async def test_a_twilio_account_is_tested_before_it_exists(
    client: Client, admin: ApiUser, twilio: TwilioStandin
) -> None:
    config = {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "phone_number": OURS,
        "api_base_url": twilio.base_url,
    }
    assert await draft(client, admin, {"kind": "sms", "config": config}) == {
        "ok": True,
        "checked": True,
        "errors": {},
    }
    refused = await draft(client, admin, {"kind": "sms", "config": {**config, "auth_token": "x"}})
    assert list(refused["errors"]) == ["auth_token"]
    other = await draft(
        client, admin, {"kind": "sms", "config": {**config, "phone_number": "+14155550100"}}
    )
    assert other["errors"] == {"phone_number": "this number is not in the account"}


async def test_a_telegram_token_is_answered_with_its_bot(client: Client, admin: ApiUser) -> None:
    config = dict(VALID_CONFIGS["telegram"])
    good = await draft(client, admin, {"kind": "telegram", "config": config})
    assert good == {
        "ok": True,
        "checked": True,
        "errors": {},
        "account": {"name": "Stand-in", "username": "standin_bot"},
    }
    refused = await draft(
        client,
        admin,
        {"kind": "telegram", "config": {**config, "bot_token": "654321:" + "Zy" * 20}},
    )
    assert refused["ok"] is False
    assert "401" in refused["errors"]["bot_token"]
    assert "account" not in refused

    # A saved bot's test names it too, with the stored token or with one to try.
    channel = await create(client, admin, "telegram", config)
    url = f"/api/v1/channels/{channel['id']}/test"
    stored = await client.post(url, headers=admin.headers)
    assert (await stored.json())["account"] == {"name": "Stand-in", "username": "standin_bot"}
    tried = await client.post(
        url, json={"config": {"bot_token": "654321:" + "Zy" * 20}}, headers=admin.headers
    )
    assert "401" in (await tried.json())["errors"]["bot_token"]


async def test_a_web_form_has_nothing_to_test(client: Client, admin: ApiUser) -> None:
    answer = await draft(client, admin, {"kind": "webform", "config": {}})
    assert answer == {"ok": True, "checked": False, "errors": {}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "fax", "config": {}}, "kind"),
        ({"config": {}}, "kind"),
        ({"kind": "email", "config": {"imap_host": "imap.example.com"}}, "config.imap_username"),
        (
            {"kind": "email", "config": {**VALID_CONFIGS["email"], "imap_port": 0}},
            "config.imap_port",
        ),
        (
            {"kind": "email", "config": {**EMAIL, "imap_host": "h" * 256}},
            "config.imap_host",
        ),
        (
            {"kind": "sms", "config": {**VALID_CONFIGS["sms"], "auth_token": "***"}},
            "config.auth_token",
        ),
        ({"kind": "sms", "config": {**VALID_CONFIGS["sms"], "colour": "red"}}, "config.colour"),
        ({"kind": "webform", "config": {}, "name": "extra"}, "name"),
        ({"kind": "webform", "config": "nope"}, "config"),
    ],
)
async def test_bad_drafts_are_422_naming_the_field(
    client: Client, admin: ApiUser, body: dict[str, Any], field: str
) -> None:
    answer = await draft(client, admin, body, status=422)
    assert field in answer["error"]["fields"], answer


async def test_only_admins_test_drafts_and_read_endpoints(
    client: Client, admin: ApiUser, agent: ApiUser, sessions: SessionFactory
) -> None:
    manager = await make_api_user(sessions, Role.MANAGER)
    channel = await create(client, admin, "sms", VALID_CONFIGS["sms"])
    body = {"kind": "webform", "config": {}}
    for user in (agent, manager):
        assert (await client.post(TEST, json=body, headers=user.headers)).status == 403
        endpoints = await client.get(
            f"/api/v1/channels/{channel['id']}/endpoints", headers=user.headers
        )
        assert endpoints.status == 403
    assert (await client.post(TEST, json=body)).status == 401


async def test_the_webhook_urls_to_paste(client: Client, admin: ApiUser) -> None:
    sms = await create(client, admin, "sms", VALID_CONFIGS["sms"])
    answer = await client.get(f"/api/v1/channels/{sms['id']}/endpoints", headers=admin.headers)
    assert answer.status == 200
    inbound = f"http://127.0.0.1:8080/webhooks/twilio/{sms['id']}"
    assert await answer.json() == {
        "inbound_url": inbound,
        "status_url": f"{inbound}/status",
        "automatic": False,
        "public": False,  # the listening address: Twilio cannot reach it
    }
    bot = await create(client, admin, "telegram", VALID_CONFIGS["telegram"])  # webhook mode
    answer = await client.get(f"/api/v1/channels/{bot['id']}/endpoints", headers=admin.headers)
    assert await answer.json() == {
        "inbound_url": f"http://127.0.0.1:8080/webhooks/telegram/{bot['id']}",
        "status_url": None,
        "automatic": True,
        "public": False,
    }
    for kind in ("email", "webform"):
        channel = await create(client, admin, kind, VALID_CONFIGS[kind])
        answer = await client.get(
            f"/api/v1/channels/{channel['id']}/endpoints", headers=admin.headers
        )
        shown = await answer.json()
        assert (shown["inbound_url"], shown["status_url"]) == (None, None), kind
    missing = await client.get(f"/api/v1/channels/{uuid.uuid4()}/endpoints", headers=admin.headers)
    assert missing.status == 404


async def test_the_webhook_urls_use_the_public_address(
    make_client: MakeClient, settings: Settings, sessions: SessionFactory
) -> None:
    # A second app on the same database, behind a public address.
    public = await make_client(
        settings.model_copy(update={"public_url": "https://hub.example.test/"})
    )
    admin = await make_api_user(sessions, Role.ADMIN)
    sms = await create(public, admin, "sms", VALID_CONFIGS["sms"])
    answer = await public.get(f"/api/v1/channels/{sms['id']}/endpoints", headers=admin.headers)
    shown = await answer.json()
    assert shown["inbound_url"] == f"https://hub.example.test/webhooks/twilio/{sms['id']}"
    assert shown["public"] is True
