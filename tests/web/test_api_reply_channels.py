"""Replies on another channel of the same contact (issue 8: the composer defaults to the
preferred channel; issue 9 item 4): GET /conversations/{id}/reply-channels, and
`channel_id` of POST /conversations/{id}/messages.

The end-to-end test runs the real app with its worker: a web form lead is answered over
SMTP (aiosmtpd) and over SMS (the Twilio stand-in). The others drive the API on rows made
with the ORM. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from aiohttp import ClientResponse
from sqlalchemy import func, select

from tests.connectors.email.smtp_server import CapturingSmtpServer
from tests.connectors.sms.twilio_standin import TwilioStandin, incoming_form, post_webhook, sid
from tests.hub import DEADLINE, Hub
from tests.web.conftest import ApiUser, Client, Rows
from tests.web.test_form_end_to_end import (
    ACCOUNT,
    ANN_EMAIL,
    ANN_PHONE,
    FIELDS,
    OURS,
    PUBLIC,
    TOKEN,
    Mailbox,
    channels,
    dovecot,
    hub,
    mailbox,
    smtp,
    twilio,
)
from timeline.models import (
    Channel,
    Contact,
    ContactReachability,
    Conversation,
    Message,
    OutboundJob,
    TimelineEvent,
)
from web import auth
from web.keys import BUS_KEY, SESSIONS_KEY


@pytest.fixture
def rows(agent_rows: Rows) -> Rows:
    """The `agent` works every channel made here (membership: test_api_accounts.py)."""
    return agent_rows


__all__ = ["dovecot", "hub", "mailbox", "smtp", "twilio"]  # fixtures, used by their names

EMAIL = "ann@example.com"
PHONE = "+14155550100"


# --- end to end: a form lead answered by email, then by SMS -----------------------------------


async def test_a_form_lead_is_answered_by_email_by_default_and_by_sms_when_chosen(
    hub: Hub, mailbox: Mailbox, smtp: CapturingSmtpServer, twilio: TwilioStandin
) -> None:
    ids = await channels(hub, mailbox, smtp, twilio)
    form = await hub.post(
        "/forms", {"name": "Pricing enquiry", "channel_id": ids["webform"], "fields": FIELDS}
    )
    post = {"name": "Ann Lee", "email": ANN_EMAIL, "phone": ANN_PHONE, "message": "20 seats?"}
    answer = await hub.client.post(f"/forms/{form['key']}", json=post)
    assert answer.status == 200, await answer.text()
    [lead] = await hub.conversations()
    assert lead["channel_id"] == ids["webform"]

    offered = await hub.get(f"/conversations/{lead['id']}/reply-channels")
    assert offered["default_channel_id"] == ids["email"]
    assert sorted((c["kind"], c["recipient"], c["reachable"]) for c in offered["items"]) == [
        ("email", ANN_EMAIL, True),
        ("sms", ANN_PHONE, True),
    ]

    # No channel_id: the form cannot send, so the reply goes out by email.
    by_email = await hub.post(f"/conversations/{lead['id']}/messages", {"text": "400 EUR."})
    [mail] = await smtp.wait_for_async(1, timeout=DEADLINE)
    assert mail.rcpt_tos == (ANN_EMAIL,)
    assert mail.message["Subject"] == "Re: Form: Pricing enquiry"
    assert "400 EUR." in mail.message.get_body(("plain",)).get_content()
    assert mail.message["Auto-Submitted"] in (None, "no")

    # Chosen: the same conversation, by SMS, from our number to hers.
    by_sms = await hub.post(
        f"/conversations/{lead['id']}/messages", {"text": "Or by text.", "channel_id": ids["sms"]}
    )

    async def texted() -> Any:
        return twilio.messages

    [text] = await hub.until(texted, "the SMS reached Twilio")
    assert (text["to"], text["from"], text["body"]) == (ANN_PHONE, OURS, "Or by text.")

    async def both_sent() -> Any:
        out = [m for m in await hub.messages(lead["id"]) if m["direction"] == "out"]
        return all(m["delivery"]["state"] == "sent" for m in out) and out

    out = await hub.until(both_sent, "both replies recorded as sent")
    assert [m["id"] for m in out] == [by_email["id"], by_sms["id"]]
    timeline = (await hub.get(f"/contacts/{lead['contact_id']}/timeline?limit=100"))["items"]
    switches = [e for e in timeline if e["kind"] == "reply.channel_switched"]
    assert sorted(
        (e["data"]["to_channel_id"], e["data"]["message_id"], e["conversation_id"])
        for e in switches
    ) == sorted(
        [(ids["email"], by_email["id"], lead["id"]), (ids["sms"], by_sms["id"], lead["id"])]
    )
    assert {e["data"]["from_channel_id"] for e in switches} == {ids["webform"]}

    # Her preferred channel becomes the default.
    answer = await hub.client.patch(
        f"/api/v1/contacts/{lead['contact_id']}",
        json={"preferred_channel_id": ids["sms"]},
        headers=hub.headers,
    )
    assert answer.status == 200, await answer.text()
    offered = await hub.get(f"/conversations/{lead['id']}/reply-channels")
    assert offered["default_channel_id"] == ids["sms"]
    assert [c["preferred"] for c in offered["items"] if c["channel_id"] == ids["sms"]] == [True]

    # STOP by text: SMS is listed as unreachable with the reason, and refused when chosen.
    stop = incoming_form(ACCOUNT, ANN_PHONE, OURS, "STOP", message_sid=sid("SM"))
    webhook = await post_webhook(
        hub.client,
        f"/webhooks/twilio/{ids['sms']}",
        public_url=PUBLIC,
        auth_token=TOKEN,
        params=stop,
    )
    assert webhook.status == 200

    async def opted_out() -> Any:
        offered = await hub.get(f"/conversations/{lead['id']}/reply-channels")
        [sms] = [c for c in offered["items"] if c["channel_id"] == ids["sms"]]
        return not sms["reachable"] and (offered, sms)

    offered, sms = await hub.until(opted_out, "the opt-out is recorded")
    assert "opted out" in sms["reason"]
    assert offered["default_channel_id"] == ids["email"]
    refused = await hub.client.post(
        f"/api/v1/conversations/{lead['id']}/messages",
        json={"text": "Still there?", "channel_id": ids["sms"]},
        headers=hub.headers,
    )
    assert refused.status == 422
    assert (await refused.json())["error"]["fields"] == {"channel_id": sms["reason"]}
    assert len(twilio.messages) == 1


# --- the API on rows ---------------------------------------------------------------------------


def messages_path(conversation: Conversation) -> str:
    return f"/api/v1/conversations/{conversation.id}/messages"


def channels_path(conversation: Conversation | uuid.UUID) -> str:
    some_id = conversation.id if isinstance(conversation, Conversation) else conversation
    return f"/api/v1/conversations/{some_id}/reply-channels"


async def count(client: Client, model: type[Any], *where: Any) -> int:
    async with client.app[SESSIONS_KEY]() as session:
        statement = select(func.count()).select_from(model).where(*where)
        return await session.scalar(statement) or 0


class Lead:
    """A form lead with an email and a phone, and email, SMS and web form channels."""

    def __init__(
        self, conversation: Conversation, webform: Channel, email: Channel, sms: Channel
    ) -> None:
        self.conversation = conversation
        self.webform, self.email, self.sms = webform, email, sms


@pytest.fixture
async def lead(rows: Rows) -> Lead:
    webform = await rows.channel("webform")
    email = await rows.channel("email")
    sms = await rows.channel("sms")
    contact = await rows.contact("Ann", [("email", EMAIL), ("phone", PHONE)])
    conversation = await rows.conversation(contact, webform)
    await rows.message(conversation, text="How much?")
    return Lead(conversation, webform, email, sms)


async def reply(
    client: Client, user: ApiUser, conversation: Conversation, body: dict[str, Any], **headers: str
) -> ClientResponse:
    return await client.post(messages_path(conversation), json=body, headers=user.headers | headers)


async def test_a_reply_without_channel_id_in_a_form_conversation_goes_by_email(
    client: Client, agent: ApiUser, lead: Lead
) -> None:
    received = []
    async with client.app[BUS_KEY].subscribe() as events:
        answer = await reply(client, agent, lead.conversation, {"text": "Hello Ann"})
        assert answer.status == 201, await answer.text()
        for _ in range(2):
            event = await events.get(timeout=DEADLINE)
            assert event is not None
            received.append(event)
    body = await answer.json()
    async with client.app[SESSIONS_KEY]() as session:
        message = await session.get(Message, uuid.UUID(body["id"]))
        assert message is not None
        assert (message.conversation_id, message.channel_id) == (
            lead.conversation.id,
            lead.email.id,
        )
        job = await session.scalar(select(OutboundJob).where(OutboundJob.message_id == message.id))
        assert job is not None and job.channel_id == lead.email.id
        [switch] = await session.scalars(
            select(TimelineEvent).where(TimelineEvent.kind == "reply.channel_switched")
        )
    assert (switch.message_id, switch.conversation_id, switch.contact_id) == (
        message.id,
        lead.conversation.id,
        lead.conversation.contact_id,
    )
    assert switch.data == {
        "from_channel_id": str(lead.webform.id),
        "to_channel_id": str(lead.email.id),
        "message_id": str(message.id),
    }
    assert [e.type for e in received] == ["message.created", "reply.channel_switched"]
    assert received[1].data == switch.data | {
        "contact_id": str(lead.conversation.contact_id),
        "conversation_id": str(lead.conversation.id),
    }


async def test_a_reply_on_the_conversations_own_channel_records_no_switch(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    sms = await rows.channel("sms")
    conversation = await rows.conversation(await rows.contact("Ann", [("phone", PHONE)]), sms)
    for body in ({"text": "one"}, {"text": "two", "channel_id": str(sms.id)}):
        answer = await reply(client, agent, conversation, body)
        assert answer.status == 201, await answer.text()
    assert await count(client, Message, Message.channel_id == sms.id) == 2
    assert await count(client, TimelineEvent, TimelineEvent.kind == "reply.channel_switched") == 0


@pytest.mark.parametrize(
    ("which", "reason"),
    [
        ("unknown", "no such channel"),
        ("webform", "this channel cannot send replies"),
        ("telegram", "never wrote to this telegram channel"),
        ("paused", "the channel is paused"),
        ("opted_out", "opted out"),
        ("no_phone", "no phone number"),
    ],
)
async def test_a_channel_that_cannot_reach_the_contact_is_422_naming_channel_id(
    client: Client, agent: ApiUser, rows: Rows, which: str, reason: str
) -> None:
    email = await rows.channel("email")
    identities = [("email", EMAIL)] + ([] if which == "no_phone" else [("phone", PHONE)])
    contact = await rows.contact("Ann", identities)
    conversation = await rows.conversation(contact, email)
    target: uuid.UUID
    if which == "unknown":
        target = uuid.uuid4()
    elif which in ("webform", "telegram"):
        target = (await rows.channel(which)).id
    else:
        target = (await rows.channel("sms")).id
    async with client.app[SESSIONS_KEY]() as session, session.begin():
        if which == "paused":
            stored = await session.get(Channel, target)
            assert stored is not None
            stored.paused = True
        if which == "opted_out":
            session.add(
                ContactReachability(channel_id=target, contact_id=contact.id, opted_out=True)
            )

    answer = await reply(client, agent, conversation, {"text": "hi", "channel_id": str(target)})

    assert answer.status == 422
    fields = (await answer.json())["error"]["fields"]
    assert list(fields) == ["channel_id"] and reason in fields["channel_id"]
    assert await count(client, Message) == 0
    assert await count(client, TimelineEvent, TimelineEvent.kind == "reply.channel_switched") == 0


async def test_no_channel_that_can_reach_the_contact_is_422(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    # A visitor who left neither an email nor a phone, and no channel that could send.
    await rows.channel("email")
    form = await rows.conversation(
        await rows.contact("Anonymous", [("webform", "form:abc")]), await rows.channel("webform")
    )
    offered = await client.get(channels_path(form), headers=agent.headers)
    assert await offered.json() == {"default_channel_id": None, "items": []}
    answer = await reply(client, agent, form, {"text": "hi"})
    assert answer.status == 422
    fields = (await answer.json())["error"]["fields"]
    assert fields == {"channel_id": "no channel can reach this contact; add a private note instead"}
    note = await reply(client, agent, form, {"text": "no way to reach them", "private": True})
    assert note.status == 201
    assert await count(client, OutboundJob) == 0


async def test_the_channel_actually_used_decides_what_a_reply_may_carry(
    client: Client, agent: ApiUser, lead: Lead
) -> None:
    long_text = "x" * 1601  # over Twilio's 1,600 characters; email has no such limit
    by_sms = {"text": long_text, "channel_id": str(lead.sms.id)}
    refused = await reply(client, agent, lead.conversation, by_sms)
    assert refused.status == 422
    assert list((await refused.json())["error"]["fields"]) == ["text"]
    attachment = {
        "filename": "a.txt",
        "content_type": "text/plain",
        "data": base64.b64encode(b"hi").decode(),
    }
    with_file = {"text": "see file", "channel_id": str(lead.sms.id), "attachments": [attachment]}
    refused = await reply(client, agent, lead.conversation, with_file)
    assert refused.status == 422
    assert list((await refused.json())["error"]["fields"]) == ["attachments"]
    assert await count(client, Message) == 1  # the customer's only

    by_email = await reply(
        client, agent, lead.conversation, {"text": long_text} | {"attachments": [attachment]}
    )
    assert by_email.status == 201, await by_email.text()


async def test_a_note_ignores_the_channel_choice(
    client: Client, agent: ApiUser, lead: Lead
) -> None:
    body = {"text": "called her", "private": True, "channel_id": str(lead.sms.id)}
    answer = await reply(client, agent, lead.conversation, body)
    assert answer.status == 201, await answer.text()
    assert await count(client, Message, Message.channel_id == lead.webform.id) == 2
    assert await count(client, OutboundJob) == 0
    assert await count(client, TimelineEvent, TimelineEvent.kind == "reply.channel_switched") == 0


async def test_a_retried_switched_reply_is_queued_and_recorded_once(
    client: Client, agent: ApiUser, lead: Lead
) -> None:
    body = {"text": "Once", "channel_id": str(lead.sms.id)}
    first = await reply(client, agent, lead.conversation, body, **{"Idempotency-Key": "k1"})
    again = await reply(client, agent, lead.conversation, body, **{"Idempotency-Key": "k1"})
    assert first.status == again.status == 201
    assert await first.json() == await again.json()
    assert await count(client, OutboundJob, OutboundJob.channel_id == lead.sms.id) == 1
    assert await count(client, TimelineEvent, TimelineEvent.kind == "reply.channel_switched") == 1


async def test_reply_channels_lists_candidates_with_recipient_and_reason(
    client: Client, agent: ApiUser, lead: Lead, rows: Rows
) -> None:
    await rows.channel("telegram")  # no Telegram identity: not listed
    async with client.app[SESSIONS_KEY]() as session, session.begin():
        session.add(
            ContactReachability(
                channel_id=lead.sms.id,
                contact_id=lead.conversation.contact_id,
                opted_out=True,
                detail="STOP",
            )
        )
        contact = await session.get(Contact, lead.conversation.contact_id)
        assert contact is not None
        contact.preferred_channel_id = lead.sms.id

    answer = await client.get(channels_path(lead.conversation), headers=agent.headers)

    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert body["default_channel_id"] == str(lead.email.id)
    email, sms = body["items"]
    assert email == {
        "channel_id": str(lead.email.id),
        "kind": "email",
        "name": lead.email.name,
        "recipient": EMAIL,
        "reachable": True,
        "reason": None,
        "preferred": False,
        # What the composer shows while the agent writes (timeline/reply_limits.py).
        "max_text_length": None,
        "supports_attachments": True,
        "max_attachment_bytes": 25 * 1024 * 1024,
    }
    assert (sms["channel_id"], sms["recipient"], sms["reachable"], sms["preferred"]) == (
        str(lead.sms.id),
        PHONE,
        False,
        True,
    )
    assert (sms["max_text_length"], sms["supports_attachments"]) == (1600, False)
    assert "opted out" in sms["reason"] and "STOP" in sms["reason"]
    refused = await reply(
        client, agent, lead.conversation, {"text": "hi", "channel_id": str(lead.sms.id)}
    )
    assert (await refused.json())["error"]["fields"] == {"channel_id": sms["reason"]}


async def test_an_agent_cannot_pick_a_channel_they_cannot_see(
    client: Client, agent: ApiUser, lead: Lead, monkeypatch: pytest.MonkeyPatch
) -> None:
    visible = frozenset({lead.webform.id, lead.email.id})
    monkeypatch.setattr(auth, "visible_channel_ids", lambda request: visible)

    offered = await (
        await client.get(channels_path(lead.conversation), headers=agent.headers)
    ).json()
    assert [c["channel_id"] for c in offered["items"]] == [str(lead.email.id)]
    hidden = await reply(
        client, agent, lead.conversation, {"text": "hi", "channel_id": str(lead.sms.id)}
    )
    assert hidden.status == 422
    # Worded as for a channel that does not exist: nothing is learnt about it.
    assert (await hidden.json())["error"]["fields"] == {"channel_id": "no such channel"}
    assert await count(client, OutboundJob) == 0

    # Nor the conversations of channels they cannot see.
    monkeypatch.setattr(auth, "visible_channel_ids", lambda request: frozenset({lead.sms.id}))
    unseen = await client.get(channels_path(lead.conversation), headers=agent.headers)
    assert unseen.status == 404


@pytest.mark.parametrize("value", [123, "not-a-uuid", "", None, ["x"], "\x00"])
async def test_a_channel_id_of_the_wrong_type_is_422(
    client: Client, agent: ApiUser, lead: Lead, value: Any
) -> None:
    answer = await reply(client, agent, lead.conversation, {"text": "hi", "channel_id": value})
    if value is None:  # null is "no choice": the default channel
        assert answer.status == 201, await answer.text()
        return
    assert answer.status == 422
    assert list((await answer.json())["error"]["fields"]) == ["channel_id"]
    assert await count(client, Message) == 1


async def test_reply_channels_of_unknown_conversations_and_without_a_token(
    client: Client, agent: ApiUser, lead: Lead
) -> None:
    for path in (channels_path(uuid.uuid4()), "/api/v1/conversations/nope/reply-channels"):
        answer = await client.get(path, headers=agent.headers)
        assert answer.status == 404
    anonymous = await client.get(channels_path(lead.conversation))
    assert anonymous.status == 401


async def test_the_route_is_in_the_openapi_document(client: Client) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    operation = document["paths"]["/api/v1/conversations/{id}/reply-channels"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ReplyChannelsOut")
    out = document["components"]["schemas"]["ReplyChannelsOut"]
    assert set(out["properties"]) == {"default_channel_id", "items"}
