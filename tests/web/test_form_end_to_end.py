"""A web form lead end to end (issue 8): the real app with its worker, a form created
through the API and posted to over HTTP, the acknowledgement sent over SMTP (aiosmtpd),
then an SMS from the same phone (a signed Twilio webhook) and an email from the same
address (IMAP from the test Dovecot): one contact, a lead, whose timeline holds all three
messages and the form's attribution."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

# The email tests' Dovecot server fixture (session-wide), used here by its name.
from tests.connectors.email.conftest import Mailbox
from tests.connectors.email.conftest import dovecot as dovecot
from tests.connectors.email.smtp_server import CapturingSmtpServer, capturing_smtp
from tests.connectors.email.test_email_end_to_end import channel_config, customer_mail
from tests.connectors.sms.twilio_standin import TwilioStandin, incoming_form, post_webhook, sid
from tests.hub import DEADLINE, Hub, start_hub
from tests.inbox.test_personal_data import scan_rows
from tests.services import Dovecot
from web.keys import ENGINE_KEY

ACCOUNT = "AC" + "2" * 32
TOKEN = "twilio-auth-token-for-forms"
OURS = "+14155550199"
ANN_PHONE = "+14155550100"
ANN_EMAIL = "ann@example.com"
PUBLIC = "https://hub.example.test"
PAGE = "https://shop.example/pricing?utm_source=ads&utm_campaign=winter"


@pytest.fixture
async def smtp() -> AsyncIterator[CapturingSmtpServer]:
    async with capturing_smtp() as server:
        yield server


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandin]:
    async with TwilioStandin(ACCOUNT, TOKEN, phone_numbers={OURS}) as api:
        yield api


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    """A new, empty mailbox on the test Dovecot."""
    name = f"u{uuid.uuid4().hex[:12]}"
    password = uuid.uuid4().hex
    dovecot.add_user(name, password)
    return Mailbox(dovecot, name, password)


@pytest.fixture
async def hub(database_url: str, tmp_path: Path, aiohttp_client: Any) -> Hub:
    return await start_hub(aiohttp_client, database_url, tmp_path / "data", public_url=PUBLIC)


FIELDS = [
    {"name": "name", "label": "Your name", "required": True, "maps_to": "name"},
    {"name": "email", "label": "Email", "type": "email", "maps_to": "email"},
    {"name": "phone", "label": "Phone", "type": "phone", "maps_to": "phone"},
    {"name": "message", "label": "Message", "type": "textarea", "maps_to": "message"},
]


async def channels(
    hub: Hub, mailbox: Mailbox, smtp: CapturingSmtpServer, twilio: TwilioStandin
) -> dict[str, str]:
    email = await hub.post(
        "/channels",
        {"kind": "email", "name": "Support", "config": channel_config(mailbox, smtp)},
    )
    sms_config = {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "phone_number": OURS,
        "default_region": "US",
        "api_base_url": twilio.base_url,
    }
    sms = await hub.post("/channels", {"kind": "sms", "name": "Texts", "config": sms_config})
    webform = await hub.post("/channels", {"kind": "webform", "name": "Website", "config": {}})
    return {"email": email["id"], "sms": sms["id"], "webform": webform["id"]}


async def test_a_form_lead_then_an_sms_and_an_email_are_one_timeline(
    hub: Hub, mailbox: Mailbox, smtp: CapturingSmtpServer, twilio: TwilioStandin
) -> None:
    ids = await channels(hub, mailbox, smtp, twilio)
    form = await hub.post(
        "/forms",
        {
            "name": "Pricing enquiry",
            "channel_id": ids["webform"],
            "fields": FIELDS,
            "acknowledgement": True,
            "language": "en",
        },
    )
    post = {
        "name": "Ann Lee",
        "email": "Ann@Example.com",
        "phone": ANN_PHONE,
        "message": "How much for 20 seats?",
        "_page_url": PAGE,
    }
    answer = await hub.client.post(
        f"/forms/{form['key']}", json=post, headers={"User-Agent": "E2E browser"}
    )
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["ok"] is True

    # The acknowledgement goes out on the email channel, marked automatic.
    [ack] = await smtp.wait_for_async(1, timeout=DEADLINE)
    assert ack.rcpt_tos == (ANN_EMAIL,)
    assert ack.message["Auto-Submitted"] == "auto-replied"
    assert "Pricing enquiry" in ack.message["Subject"]

    sms = incoming_form(ACCOUNT, ANN_PHONE, OURS, "Texting you as well", message_sid=sid("SM"))
    webhook = await post_webhook(
        hub.client,
        f"/webhooks/twilio/{ids['sms']}",
        public_url=PUBLIC,
        auth_token=TOKEN,
        params=sms,
    )
    assert webhook.status == 200
    await mailbox.append(
        customer_mail(
            "<ann-1@example.com>",
            sender=f"Ann Lee <{ANN_EMAIL}>",
            subject="Seats",
            body="And by email, to be sure.",
        )
    )

    async def on_every_channel() -> Any:
        conversations = await hub.conversations()
        return len({c["channel_id"] for c in conversations}) == 3 and conversations

    conversations = await hub.until(on_every_channel, "a conversation on each channel")
    assert len(conversations) == 3
    assert len({c["contact_id"] for c in conversations}) == 1

    found = (await hub.get(f"/contacts?identity=email:{ANN_EMAIL}"))["items"]
    [contact] = found
    assert contact["lifecycle_stage"] == "lead"
    assert contact["name"] == "Ann Lee"
    assert {(i["kind"], i["value"]) for i in contact["identities"]} == {
        ("email", ANN_EMAIL),
        ("phone", ANN_PHONE),
    }
    by_phone = (await hub.get(f"/contacts?identity=phone:{ANN_PHONE}"))["items"]
    assert [c["id"] for c in by_phone] == [contact["id"]]

    timeline = (await hub.get(f"/contacts/{contact['id']}/timeline?limit=100"))["items"]
    inbound = [
        e["message"]
        for e in timeline
        if e["message"] is not None and e["message"]["direction"] == "in"
    ]
    texts = {m["text"].split("\n")[0] for m in inbound}
    assert texts == {"How much for 20 seats?", "Texting you as well", "And by email, to be sure."}
    [submitted] = [e for e in timeline if e["kind"] == "form.submitted"]
    assert submitted["data"]["form_key"] == form["key"]
    assert submitted["data"]["form_name"] == "Pricing enquiry"
    assert submitted["data"]["page_url"] == PAGE
    assert submitted["data"]["utm_source"] == "ads"
    assert submitted["data"]["utm_campaign"] == "winter"
    assert submitted["data"]["user_agent"] == "E2E browser"
    assert submitted["data"]["ip"] == "127.0.0.1"
    # The acknowledgement is in the form's conversation, for agents to see.
    [form_conversation] = [c for c in conversations if c["channel_id"] == ids["webform"]]

    async def acknowledged() -> Any:
        messages = await hub.messages(form_conversation["id"])
        out = [m for m in messages if m["direction"] == "out"]
        return out and out[0]["delivery"]["state"] == "sent" and messages

    messages = await hub.until(acknowledged, "the acknowledgement is recorded as sent")
    assert [m["direction"] for m in messages] == ["in", "out"]

    # Erased: no row anywhere still holds her address, number or name, the form's
    # submission, its raw body and its attribution included.
    answer = await hub.client.post(
        f"/api/v1/contacts/{contact['id']}/erase",
        json={"confirm": contact["id"]},
        headers=hub.headers,
    )
    assert answer.status == 200, await answer.text()
    needles = [ANN_EMAIL, "Ann@Example.com", ANN_PHONE, "Ann Lee"]
    assert await scan_rows(hub.client.app[ENGINE_KEY], needles) == []
