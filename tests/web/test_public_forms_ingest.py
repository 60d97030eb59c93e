"""Accepting form submissions into the timeline (web/public_forms/accept.py): leads,
identities, attribution, idempotency, custom attributes, the acknowledgement email and the
IP address retention purge, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from connectors.types import ChannelId, ExternalId, IdentityKind, RawPayload
from connectors.webform.attribution import RequestInfo, attribution_for
from connectors.webform.body import URLENCODED
from connectors.webform.config import WebformConfig
from connectors.webform.definition import FormDefinition
from connectors.webform.inbound import to_inbound
from connectors.webform.submission import Submission, read_submission
from inbox import attributes as attribute_defs
from inbox.models import AttributeDefinition
from tests.connectors.webform.conftest import contact_form
from tests.web.conftest import VALID_CONFIGS, Client, Rows
from timeline.db import SessionFactory
from timeline.models import (
    Channel,
    Contact,
    ContactAttribute,
    ContactReachability,
    Conversation,
    Form,
    FormSubmission,
    Identity,
    MergeSuggestion,
    Message,
    OutboundJob,
    RawInbound,
    TimelineEvent,
    utcnow,
)
from web.keys import INGESTOR_KEY, SECRET_BOX_KEY
from web.public_forms.accept import Accepted, accept, attribute_value
from web.public_forms.acknowledgement import DEFAULT_TEXT
from web.public_forms.retention import IpRetention, _without_ip

IP = "203.0.113.9"
PAGE = "https://shop.example/contact?utm_source=news&utm_campaign=spring"
REQUEST = RequestInfo(ip=IP, user_agent="Mozilla/5.0 (X11)", referer="https://shop.example/")
ANN = [
    ("name", "Ann Lee"),
    ("email", "Ann@Example.com"),
    ("phone", "030 901820"),
    ("message", "Hello,\nI need help."),
    ("company", "Acme"),
    ("consent", "on"),
]


async def webform_channel(rows: Rows, **config: Any) -> Channel:
    """A web form channel with `config` settings."""
    settings = WebformConfig.model_validate({**VALID_CONFIGS["webform"], **config})
    channel = Channel(
        kind="webform",
        name="Website",
        config_encrypted=rows.box.encrypt(settings.model_dump(mode="json")),
        health="unknown",
    )
    await rows._add(channel)
    return channel


async def make_form(rows: Rows, channel: Channel, **overrides: Any) -> tuple[Form, FormDefinition]:
    definition = contact_form(channel_id=str(channel.id), language="de", **overrides)
    form = Form(
        key=f"frm_{uuid.uuid4().hex[:12]}",
        channel_id=channel.id,
        name=definition.name,
        definition=definition.model_dump(mode="json"),
        active=True,
    )
    await rows._add(form)
    return form, definition


@dataclasses.dataclass
class Post:
    """One submission of a form, as the endpoint hands it to accept()."""

    client: Client
    form: Form
    definition: FormDefinition
    fields: list[tuple[str, str]]
    request: RequestInfo = REQUEST
    fallback_id: str | None = None

    def parts(self) -> tuple[Submission, RawPayload]:
        body = urlencode(self.fields).encode()
        submission = read_submission(self.definition, URLENCODED, body, default_region="DE")
        return submission, RawPayload(URLENCODED, body)

    async def send(self) -> Accepted:
        submission, raw = self.parts()
        attribution = attribution_for(self.form.key, self.request, submission)
        return await accept(
            self.client.app,
            self.form,
            self.definition,
            submission,
            attribution,
            raw,
            utcnow(),
            fallback_id=self.fallback_id,
        )


def token(name: str) -> tuple[str, str]:
    return ("_token", name)


async def count(sessions: SessionFactory, model: Any, *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_a_submission_becomes_a_lead_in_the_inbox(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await webform_channel(rows)
    form, definition = await make_form(rows, channel)
    fields = [*ANN, token("t-1"), ("_page_url", PAGE), ("_referrer", "https://search.example/")]
    accepted = await Post(client, form, definition, fields).send()
    assert accepted.status == "created"
    assert accepted.message_id and accepted.conversation_id and accepted.contact_id
    async with sessions() as session:
        contact = await session.get(Contact, accepted.contact_id)
        assert contact is not None
        assert (contact.name, contact.lifecycle_stage, contact.language) == (
            "Ann Lee",
            "lead",
            "de",
        )
        identities = {
            (i.kind, i.value)
            for i in await session.scalars(
                select(Identity).where(Identity.contact_id == contact.id)
            )
        }
        assert identities == {("email", "ann@example.com"), ("phone", "+4930901820")}
        conversation = await session.get(Conversation, accepted.conversation_id)
        assert conversation is not None
        assert (conversation.channel_id, conversation.status) == (channel.id, "open")
        message = await session.get(Message, accepted.message_id)
        assert message is not None and message.text.startswith("Hello,\nI need help.\n\n")
        assert "Company: Acme" in message.text
        # The raw body is kept for `switchboard reprocess`.
        raw = await session.get(RawInbound, message.raw_id)
        assert raw is not None and raw.body == urlencode(fields).encode()
        [event] = await session.scalars(
            select(TimelineEvent).where(
                TimelineEvent.contact_id == contact.id, TimelineEvent.kind == "form.submitted"
            )
        )
        assert event.message_id == message.id
        assert event.data == {
            "form_key": form.key,
            "form_id": str(form.id),
            "form_name": "Contact us",
            "page_url": PAGE,
            "referrer": "https://search.example/",
            "utm_source": "news",
            "utm_campaign": "spring",
            "user_agent": "Mozilla/5.0 (X11)",
            "ip": IP,
            "channel_id": str(channel.id),
        }
        [row] = await session.scalars(select(FormSubmission))
        assert (row.form_id, row.message_id, row.contact_id, row.ip) == (
            form.id,
            message.id,
            contact.id,
            IP,
        )
        # The address lives in its own column only, so the purge has one place to clear.
        assert "ip" not in row.attribution
        assert row.attribution["page_url"] == PAGE and row.attribution["form_id"] == str(form.id)


async def test_a_double_submit_is_one_message_and_one_row(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await webform_channel(rows)
    form, definition = await make_form(rows, channel)
    post = Post(client, form, definition, [*ANN, token("t-1")])
    first = await post.send()
    again = await post.send()
    assert (first.status, again.status) == ("created", "duplicate")
    assert dataclasses.astuple(again)[1:] == dataclasses.astuple(first)[1:]
    # Without a render token, the Idempotency-Key the endpoint passes decides.
    keyed = Post(client, form, definition, ANN, fallback_id="idem-1")
    assert (await keyed.send()).status == "created"
    assert (await keyed.send()).status == "duplicate"
    assert await count(sessions, Message) == 2
    assert await count(sessions, FormSubmission) == 2


async def test_the_same_submission_twice_at_once(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await webform_channel(rows)
    email = await rows.channel("email")
    form, definition = await make_form(rows, channel, acknowledgement=True)
    post = Post(client, form, definition, [*ANN, token("t-race")])
    results = await asyncio.gather(*(post.send() for _ in range(4)))
    assert sorted(r.status for r in results) == ["created", "duplicate", "duplicate", "duplicate"]
    assert len({r.message_id for r in results}) == 1
    assert await count(sessions, Message, Message.direction == "in") == 1
    assert await count(sessions, FormSubmission) == 1
    assert await count(sessions, OutboundJob, OutboundJob.channel_id == email.id) == 1


async def test_the_record_is_stored_with_the_message(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    """Ingesting the message writes its form_submissions row in the same transaction (no
    second step that a crash could skip); a form deleted meanwhile keeps the submission
    raw and flagged instead of losing it."""
    channel = await webform_channel(rows)
    form, definition = await make_form(rows, channel)
    post = Post(client, form, definition, [*ANN, token("t-2")])
    submission, raw = post.parts()
    attribution = attribution_for(form.key, REQUEST, submission)
    inbound = to_inbound(
        ChannelId(str(channel.id)),
        definition,
        submission,
        attribution,
        utcnow(),
        raw,
        form_id=str(form.id),
    )
    stored = await client.app[INGESTOR_KEY].ingest(inbound)
    assert stored.status == "created"
    async with sessions() as session:
        [row] = (await session.scalars(select(FormSubmission))).all()
    assert (row.form_id, row.message_id, row.contact_id) == (
        form.id,
        stored.message_id,
        stored.contact_id,
    )
    assert row.ip == IP and "ip" not in row.attribution
    assert row.attribution["form_id"] == str(form.id)
    assert (await client.app[INGESTOR_KEY].ingest(inbound)).status == "duplicate"
    assert await count(sessions, FormSubmission) == 1

    gone = uuid.uuid4()  # a form deleted between the look-up and the commit
    orphan = dataclasses.replace(
        inbound,
        external_id=ExternalId("form:orphan"),
        form=dataclasses.replace(inbound.form, form_id=str(gone)) if inbound.form else None,
    )
    flagged = await client.app[INGESTOR_KEY].ingest(orphan)
    assert flagged.status == "flagged" and flagged.raw_id is not None
    assert await count(sessions, Message) == 1


async def test_a_form_without_email_or_phone_still_makes_a_lead(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await webform_channel(rows)
    form, definition = await make_form(rows, channel)
    anonymous = [(n, v) for n, v in ANN if n not in ("email", "phone")]
    one = await Post(client, form, definition, [*anonymous, token("a")]).send()
    two = await Post(client, form, definition, [*anonymous, token("b")]).send()
    assert (one.status, two.status) == ("created", "created")
    # Each visitor is their own lead: nothing ties two anonymous submissions together.
    assert one.contact_id != two.contact_id
    async with sessions() as session:
        contact = await session.get(Contact, one.contact_id)
        assert contact is not None and contact.lifecycle_stage == "lead"
        [identity] = await session.scalars(
            select(Identity).where(Identity.contact_id == one.contact_id)
        )
        assert identity.kind == IdentityKind.WEBFORM.value
        assert identity.value.startswith("form:")


async def test_email_and_phone_of_two_contacts_make_a_merge_suggestion(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await webform_channel(rows)
    form, definition = await make_form(rows, channel)
    by_mail = await rows.contact("Ann", [("email", "ann@example.com")])
    by_phone = await rows.contact("Ann L.", [("phone", "+4930901820")])
    accepted = await Post(client, form, definition, [*ANN, token("t")]).send()
    assert accepted.contact_id == by_mail.id
    async with sessions() as session:
        [suggestion] = await session.scalars(select(MergeSuggestion))
        assert {suggestion.contact_id, suggestion.other_contact_id} == {by_mail.id, by_phone.id}
        assert suggestion.reason == "phone:+4930901820"
        holder = await session.scalar(select(Identity.contact_id).where(Identity.kind == "phone"))
        assert holder == by_phone.id  # never moved silently
        # A known contact keeps the stage it has; its missing language is filled in.
        contact = await session.get(Contact, by_mail.id)
        assert contact is not None and (contact.lifecycle_stage, contact.language) == ("new", "de")


async def test_hostile_values_are_stored_safely(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await webform_channel(rows)
    form, definition = await make_form(rows, channel)
    long_name = "Ä" * 500
    fields = [
        ("name", long_name),
        ("email", "eve@example.com"),
        ("message", "NUL\x00 and \x1b[31m escapes"),
        ("consent", "on"),
        ("company", "x" * 500),
        ("_page_url", "javascript:alert(1)"),
        token("t\x00" + "z" * 600),
    ]
    accepted = await Post(
        client, form, definition, fields, request=RequestInfo(ip=IP, user_agent="u\x00" * 900)
    ).send()
    assert accepted.status == "created"
    async with sessions() as session:
        contact = await session.get(Contact, accepted.contact_id)
        assert contact is not None and contact.name is not None
        assert 0 < len(contact.name) <= 200 and set(contact.name) == {"Ä"}
        message = await session.get(Message, accepted.message_id)
        assert message is not None and "\x00" not in message.text
        [event] = await session.scalars(
            select(TimelineEvent).where(TimelineEvent.kind == "form.submitted")
        )
        assert "page_url" not in event.data
        assert "\x00" not in event.data["user_agent"] and len(event.data["user_agent"]) <= 512


async def define(sessions: SessionFactory, key: str, kind: str, options: Any = None) -> None:
    async with sessions() as session, session.begin():
        session.add(
            AttributeDefinition(
                key=key, label=key.title(), type=kind, options=options, created_at=utcnow()
            )
        )


async def test_custom_attributes_fill_what_the_contact_lacks(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await webform_channel(rows)
    fields = list(contact_form().model_dump(mode="json")["fields"])
    fields += [
        {"name": "seats", "label": "Seats", "maps_to": "attribute:seats"},
        {"name": "news", "label": "News", "type": "checkbox", "maps_to": "attribute:news"},
        {"name": "plan", "label": "Plan", "maps_to": "attribute:plan"},
        {"name": "since", "label": "Since", "maps_to": "attribute:since"},
        {"name": "other", "label": "Other", "maps_to": "attribute:undefined_key"},
    ]
    form, definition = await make_form(rows, channel, fields=fields)
    await define(sessions, "company", "text")
    await define(sessions, "seats", "number")
    await define(sessions, "news", "boolean")
    await define(sessions, "plan", "select", ["basic", "pro"])
    await define(sessions, "since", "date")
    answers = [
        ("seats", "12"),
        ("news", "on"),
        ("plan", "gold"),  # not an option: skipped
        ("since", "2024-02-30"),  # not a date: skipped
        ("other", "kept in the text"),
    ]
    first = await Post(client, form, definition, [*ANN, *answers, token("1")]).send()
    later = [("company", "Evil Corp"), ("seats", "999"), ("plan", "pro"), ("consent", "on")]
    later += [(n, v) for n, v in ANN if n in ("name", "email", "message")]
    second = await Post(client, form, definition, [*later, token("2")]).send()
    assert first.contact_id == second.contact_id
    async with sessions() as session:
        values = {
            row.key: row
            for row in await session.scalars(
                select(ContactAttribute).where(ContactAttribute.contact_id == first.contact_id)
            )
        }
        assert set(values) == {"company", "seats", "news", "plan"}
        # The first answers stay: a later form never overwrites what the contact has...
        assert values["company"].text_value == "Acme"
        assert values["seats"].number_value == 12.0
        assert values["news"].bool_value is True
        # ... but fills what it lacked.
        assert values["plan"].text_value == "pro"
        changes = [
            e.data
            for e in await session.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.kind == "contact.attributes_changed")
                .order_by(TimelineEvent.occurred_at, TimelineEvent.id)
            )
        ]
        assert changes == [
            {
                "company": {"from": None, "to": "Acme"},
                "seats": {"from": None, "to": 12.0},
                "news": {"from": None, "to": True},
            },
            {"plan": {"from": None, "to": "pro"}},
        ]
        message = await session.get(Message, first.message_id)
        assert message is not None and "Other: kept in the text" in message.text


def test_attribute_values_by_type() -> None:
    def of(kind: str, answer: str | bool, options: list[str] | None = None) -> Any:
        return attribute_value(AttributeDefinition(key="k", type=kind, options=options), answer)

    assert of("number", " 3.5 ") == 3.5 and of("number", "7") == 7
    assert of("number", "nan") is None and of("number", "1e999") is None
    assert of("number", True) is None and of("number", "twelve") is None
    assert of("boolean", True) is True and of("boolean", "no") is False
    assert of("boolean", "maybe") is None
    assert of("text", False) == "No" and of("text", "x" * 10_001) is None
    assert of("select", "b", ["a", "b"]) == "b" and of("select", "c", ["a", "b"]) is None
    assert of("date", "2024-02-29") == "2024-02-29" and of("date", "29.02.2024") is None
    assert of("money", "12.50") is None


async def test_ip_address_not_kept_when_the_channel_says_so(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    for config in ({"keep_ip_address": False}, {"ip_retention_days": 0}):
        channel = await webform_channel(rows, **config)
        form, definition = await make_form(rows, channel)
        accepted = await Post(client, form, definition, [*ANN, token(str(config))]).send()
        async with sessions() as session:
            row = await session.scalar(
                select(FormSubmission).where(FormSubmission.message_id == accepted.message_id)
            )
            assert row is not None and row.ip is None
            event = await session.scalar(
                select(TimelineEvent).where(
                    TimelineEvent.message_id == accepted.message_id,
                    TimelineEvent.kind == "form.submitted",
                )
            )
            assert event is not None and "ip" not in event.data
            assert event.data["user_agent"] == "Mozilla/5.0 (X11)"


# --- the acknowledgement email ---------------------------------------------------------------


async def outbound(sessions: SessionFactory) -> list[Message]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(Message).where(Message.direction == "out").order_by(Message.created_at)
            )
        )


async def test_the_acknowledgement_is_queued_on_the_email_channel(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await webform_channel(rows)
    email = await rows.channel("email")
    form, definition = await make_form(rows, channel, acknowledgement=True)
    post = Post(client, form, definition, [*ANN, token("t")])
    accepted = await post.send()
    await post.send()  # a double submit acknowledges nothing more
    [ack] = await outbound(sessions)
    assert (ack.conversation_id, ack.contact_id) == (accepted.conversation_id, accepted.contact_id)
    assert ack.channel_id == email.id and ack.auto_submitted is True
    assert ack.text == DEFAULT_TEXT.replace("{form}", "Contact us")
    assert ack.subject == "We received your message: Contact us"
    # The visitor's own words are never echoed to the address they typed.
    assert "Ann" not in ack.text and "help" not in ack.text
    async with sessions() as session:
        [job] = await session.scalars(select(OutboundJob))
        assert (job.message_id, job.channel_id) == (ack.id, email.id)
        conversation = await session.get(Conversation, accepted.conversation_id)
        # Automatic: the visitor is still waiting for a person's answer.
        assert conversation is not None and conversation.first_response_at is None
        [sent] = await session.scalars(
            select(TimelineEvent).where(TimelineEvent.kind == "message.sent")
        )
        assert sent.data["channel_id"] == str(email.id)
    # Another submission within the hour gets none: one automatic message an hour.
    assert (await Post(client, form, definition, [*ANN, token("t2")]).send()).status == "created"
    assert len(await outbound(sessions)) == 1


async def test_no_acknowledgement_when_it_cannot_or_must_not_go(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await webform_channel(rows)
    form, definition = await make_form(rows, channel, acknowledgement=True)
    # No email channel at all.
    assert (await Post(client, form, definition, [*ANN, token("a")]).send()).status == "created"
    email = await rows.channel("email")
    # No email address given.
    no_mail = [(n, v) for n, v in ANN if n != "email"]
    assert (await Post(client, form, definition, [*no_mail, token("b")]).send()).status == (
        "created"
    )
    # Opted out of the email channel.
    opted = await rows.contact("Bob", [("email", "bob@example.com")])
    async with sessions() as session, session.begin():
        session.add(ContactReachability(channel_id=email.id, contact_id=opted.id, opted_out=True))
    bob = [("name", "Bob"), ("email", "bob@example.com"), ("message", "Hi"), ("consent", "on")]
    assert (await Post(client, form, definition, [*bob, token("c")]).send()).status == "created"
    # Not asked for by the form.
    quiet_form, quiet = await make_form(rows, channel)
    carl = [("name", "Carl"), ("email", "carl@example.com"), ("message", "Hi"), ("consent", "on")]
    assert (await Post(client, quiet_form, quiet, [*carl, token("d")]).send()).status == "created"
    assert await outbound(sessions) == []


async def test_the_channel_chooses_the_sending_channel_and_text(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    await rows.channel("email", name="first")
    second = await rows.channel("email", name="second")
    text = "Danke! {form} {name} {0}"  # only {form} is replaced
    channel = await webform_channel(
        rows, acknowledgement_channel_id=str(second.id), acknowledgement_text=text
    )
    form, definition = await make_form(rows, channel, acknowledgement=True)
    await Post(client, form, definition, [*ANN, token("t")]).send()
    [ack] = await outbound(sessions)
    assert ack.channel_id == second.id
    assert ack.text == "Danke! Contact us {name} {0}"


# --- IP address retention --------------------------------------------------------------------


async def test_ip_addresses_are_purged_after_the_retention_period(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    kept = await webform_channel(rows, ip_retention_days=30)
    kept_form, kept_definition = await make_form(rows, kept)
    await Post(client, kept_form, kept_definition, [*ANN, token("k")]).send()
    # A flagged payload keeps its normalized inbound, attribution and all.
    flagged = {"attribution": [["form_key", "x"], ["ip", IP]], "text": "t"}
    async with sessions() as session, session.begin():
        session.add(
            RawInbound(
                channel_id=kept.id,
                external_id="form:flagged",
                content_type=URLENCODED,
                body=b"x=1",
                inbound=flagged,
                parse_status="failed",
                received_at=utcnow(),
            )
        )
    box = client.app[SECRET_BOX_KEY]

    def later(days: float) -> IpRetention:
        return IpRetention(sessions, box, clock=lambda: utcnow() + timedelta(days=days))

    assert await later(29).run_once() == 0
    assert await count(sessions, FormSubmission, FormSubmission.ip.is_not(None)) == 1
    assert await later(31).run_once() == 3
    assert await later(31).run_once() == 0  # idempotent
    async with sessions() as session:
        [row] = await session.scalars(select(FormSubmission))
        assert row.ip is None and "ip" not in row.attribution
        [event] = await session.scalars(
            select(TimelineEvent).where(TimelineEvent.kind == "form.submitted")
        )
        assert "ip" not in event.data and event.data["form_key"] == kept_form.key
        raw = await session.scalar(
            select(RawInbound).where(RawInbound.external_id == "form:flagged")
        )
        assert raw is not None and raw.inbound == {"attribution": [["form_key", "x"]], "text": "t"}


async def test_switching_ip_keeping_off_purges_at_once(
    client: Client, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await webform_channel(rows)
    form, definition = await make_form(rows, channel)
    await Post(client, form, definition, [*ANN, token("k")]).send()
    other = await webform_channel(rows)
    other_form, other_definition = await make_form(rows, other)
    await Post(client, other_form, other_definition, [*ANN, token("o")]).send()
    box = client.app[SECRET_BOX_KEY]
    async with sessions() as session, session.begin():
        row = await session.get(Channel, channel.id)
        assert row is not None
        row.config_encrypted = box.encrypt(
            WebformConfig(keep_ip_address=False).model_dump(mode="json")
        )
    assert await IpRetention(sessions, box).run_once() == 2
    async with sessions() as session:
        ips = {row.form_id: row.ip for row in await session.scalars(select(FormSubmission))}
    assert ips == {form.id: None, other_form.id: IP}


def test_without_ip() -> None:
    assert _without_ip(None) is None
    assert _without_ip({"attribution": "garbage"}) is None
    assert _without_ip({"attribution": [["form_key", "k"]]}) is None
    assert _without_ip({"attribution": [["ip", "1"], [], "x"], "a": 1}) == {
        "attribution": [[], "x"],
        "a": 1,
    }


@given(st.text(max_size=40), st.sampled_from(["number", "boolean", "text", "date", "money"]))
def test_any_answer_gives_a_value_the_crm_accepts_or_none(answer: str, kind: str) -> None:
    definition = AttributeDefinition(key="k", type=kind, options=None)
    value = attribute_value(definition, answer)
    if value is not None:
        attribute_defs.convert(definition, value)  # raises if the CRM would refuse it
