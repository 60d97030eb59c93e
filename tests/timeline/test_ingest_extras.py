"""What a message brings besides itself: identities it vouches for, where the customer came
from, and files to fetch again later — stored with the message, once."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from sqlalchemy import func, select

from connectors.types import (
    ExternalId,
    FormRecord,
    IdentityKind,
    Inbound,
    InboundAttachment,
    SenderHandle,
)
from tests.timeline.conftest import MakeChannel
from tests.timeline.test_ingest import inbound
from timeline.db import SessionFactory
from timeline.ingest import Ingestor, _inbound_json
from timeline.models import (
    AttachmentFetch,
    Contact,
    Identity,
    MergeSuggestion,
    Message,
    TimelineEvent,
)
from timeline.reprocess import inbound_from_json

PHONE = SenderHandle(IdentityKind.PHONE, "+1 415 555 0100", "Ann")


def tg(channel: uuid.UUID, external_id: str, user: str = "1001", **changes: object) -> Inbound:
    message = inbound(channel, external_id, IdentityKind.TELEGRAM, user)
    return dataclasses.replace(message, **changes)  # type: ignore[arg-type]


async def _identities(sessions: SessionFactory, contact_id: uuid.UUID | None) -> set[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(Identity.kind, Identity.value).where(Identity.contact_id == contact_id)
        )
        return {f"{kind}:{value}" for kind, value in rows}


async def _events(sessions: SessionFactory, kind: str) -> list[TimelineEvent]:
    async with sessions() as session:
        return list(
            (await session.scalars(select(TimelineEvent).where(TimelineEvent.kind == kind))).all()
        )


async def test_an_offered_phone_joins_the_senders_contact_once(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("telegram")
    shared = await ingestor.ingest(tg(channel, "1001:5", identities=(PHONE,)))
    again = await ingestor.ingest(tg(channel, "1001:6", identities=(PHONE,)))
    assert again.contact_id == shared.contact_id
    assert await _identities(sessions, shared.contact_id) == {
        "telegram:1001",
        "phone:+14155550100",
    }
    added = await _events(sessions, "identity.added")
    assert [(e.data, e.message_id) for e in added] == [
        ({"kind": "phone", "value": "+14155550100"}, shared.message_id)
    ]
    # An SMS from that number now lands on the same customer.
    sms = await make_channel("sms")
    text = await ingestor.ingest(inbound(sms, "SM1", IdentityKind.PHONE, "+14155550100"))
    assert text.contact_id == shared.contact_id


async def test_an_identity_held_by_another_contact_is_a_merge_suggestion(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    sms = await make_channel("sms")
    telegram = await make_channel("telegram")
    by_sms = await ingestor.ingest(inbound(sms, "SM1", IdentityKind.PHONE, "+14155550100"))
    by_bot = await ingestor.ingest(tg(telegram, "1001:5", identities=(PHONE,)))
    assert by_bot.contact_id != by_sms.contact_id
    # Nothing moved: each contact keeps its own identities.
    assert await _identities(sessions, by_bot.contact_id) == {"telegram:1001"}
    assert await _identities(sessions, by_sms.contact_id) == {"phone:+14155550100"}
    [suggestion] = await _events(sessions, "contact.merge_suggested")
    assert suggestion.contact_id == by_bot.contact_id
    assert suggestion.data == {
        "kind": "phone",
        "value": "+14155550100",
        "other_contact_id": str(by_sms.contact_id),
    }
    assert await _events(sessions, "identity.added") == []
    # Queued once for a person to decide, however often the number is offered again.
    await ingestor.ingest(tg(telegram, "1001:6", identities=(PHONE,)))
    async with sessions() as session:
        queued = (await session.scalars(select(MergeSuggestion))).all()
    assert [({q.contact_id, q.other_contact_id}, q.reason, q.status) for q in queued] == [
        ({by_sms.contact_id, by_bot.contact_id}, "phone:+14155550100", "open")
    ]


async def test_unusable_or_own_offered_identities_change_nothing(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("telegram")
    bad = SenderHandle(IdentityKind.PHONE, "call me maybe", None)
    own = SenderHandle(IdentityKind.TELEGRAM, "1001", "Ann")
    result = await ingestor.ingest(tg(channel, "1001:5", identities=(bad, own)))
    assert result.status == "created"
    assert await _identities(sessions, result.contact_id) == {"telegram:1001"}
    assert await _events(sessions, "identity.added") == []


async def test_in_a_group_the_author_gets_the_identity_not_the_group(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("telegram")
    group = SenderHandle(IdentityKind.TELEGRAM, "-100777", "Printer owners")
    ann = SenderHandle(IdentityKind.TELEGRAM, "1001", "Ann")
    result = await ingestor.ingest(
        tg(channel, "-100777:1", sender=group, author=ann, identities=(PHONE,))
    )
    assert await _identities(sessions, result.contact_id) == {"telegram:-100777"}
    async with sessions() as session:
        holder = await session.scalar(select(Identity.contact_id).where(Identity.value == "1001"))
    assert await _identities(sessions, holder) == {"telegram:1001", "phone:+14155550100"}


async def test_two_customers_offering_one_number_at_once_leave_one_holder(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("telegram")
    first, second = await asyncio.gather(
        ingestor.ingest(tg(channel, "1001:1", "1001", identities=(PHONE,))),
        ingestor.ingest(tg(channel, "1002:1", "1002", identities=(PHONE,))),
    )
    async with sessions() as session:
        holders = (
            await session.scalars(
                select(Identity.contact_id).where(Identity.value == "+14155550100")
            )
        ).all()
    assert len(holders) == 1 and holders[0] in {first.contact_id, second.contact_id}
    [suggestion] = await _events(sessions, "contact.merge_suggested")
    assert {suggestion.contact_id, uuid.UUID(suggestion.data["other_contact_id"])} == {
        first.contact_id,
        second.contact_id,
    }


async def test_attribution_is_recorded_on_the_contacts_timeline(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("telegram")
    pairs = (("source", "telegram_start"), ("start_payload", "spring-sale\x00"))
    result = await ingestor.ingest(
        tg(channel, "1001:1", text="/start spring-sale", attribution=pairs)
    )
    await ingestor.ingest(tg(channel, "1001:1", text="/start spring-sale", attribution=pairs))
    [event] = await _events(sessions, "contact.attributed")
    assert event.contact_id == result.contact_id
    assert event.conversation_id == result.conversation_id
    assert event.data == {
        "source": "telegram_start",
        "start_payload": "spring-sale",
        "channel_id": str(channel),
    }


async def test_a_file_worth_retrying_is_queued_with_a_note_and_a_lost_one_is_not(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("sms")
    later = InboundAttachment(
        "photo.jpg", "image/jpeg", b"", size=1234, error="download timed out",
        source="https://api.twilio.com/m/1", retry=True,
    )  # fmt: skip
    lost = InboundAttachment(
        "big.mp4", "video/mp4", b"", error="over the 5 byte limit", source="https://m/2"
    )
    message = dataclasses.replace(
        inbound(channel, "SM1", IdentityKind.PHONE, "+14155550100", text="look"),
        attachments=(later, lost),
    )
    result = await ingestor.ingest(message)
    assert (await ingestor.ingest(message)).status == "duplicate"
    async with sessions() as session:
        stored = await session.get(Message, result.message_id)
        rows = (await session.scalars(select(AttachmentFetch))).all()
    assert stored is not None
    assert stored.text.split("\n") == [
        "look",
        "[photo.jpg not stored yet (download timed out); it will be fetched again]",
        "[big.mp4 not stored: over the 5 byte limit]",
    ]
    [row] = rows
    assert (row.message_id, row.channel_id, row.source) == (
        result.message_id,
        channel,
        "https://api.twilio.com/m/1",
    )
    assert (row.filename, row.content_type, row.size, row.attempts, row.gave_up) == (
        "photo.jpg",
        "image/jpeg",
        1234,
        0,
        False,
    )
    assert row.next_at > row.created_at
    assert row.note == stored.text.split("\n")[1]


async def test_a_flagged_message_queues_no_fetch(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("sms")
    later = InboundAttachment(
        "photo.jpg", "image/jpeg", b"", error="timed out", source="https://m/1", retry=True
    )
    message = dataclasses.replace(
        inbound(channel, "SM1", IdentityKind.PHONE, "not a number"), attachments=(later,)
    )
    result = await ingestor.ingest(message)
    assert result.status == "flagged"
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(AttachmentFetch))
    assert count == 0


def test_a_flagged_inbound_keeps_what_it_brought_for_reprocessing() -> None:
    channel = uuid.uuid4()
    original = dataclasses.replace(
        inbound(channel, "-100:1", IdentityKind.TELEGRAM, "-100"),
        author=SenderHandle(IdentityKind.TELEGRAM, "1001", "Ann"),
        identities=(PHONE,),
        attribution=(("source", "telegram_start"), ("start_payload", "x")),
        edit_of=ExternalId("-100:0"),
        reply_to=ExternalId("-100:7"),
        raw=None,
    )
    again = inbound_from_json(channel, original.external_id, _inbound_json(original, ()))
    assert again == original


async def test_a_phone_tells_a_new_contacts_timezone_when_it_has_one(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    sms = await make_channel("sms")
    sf = await ingestor.ingest(inbound(sms, "SM1", IdentityKind.PHONE, "+14155550100"))
    moscow = await ingestor.ingest(inbound(sms, "SM2", IdentityKind.PHONE, "+79161234567"))
    async with sessions() as session:
        zones = {row.id: row.timezone for row in (await session.scalars(select(Contact))).all()}
    assert zones[sf.contact_id] == "America/Los_Angeles"
    assert zones[moscow.contact_id] is None  # +7 9xx spans eleven zones: no guess


async def test_a_new_contact_starts_with_the_messages_stage_and_language(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("webform")
    form = dataclasses.replace(
        inbound(channel, "form:1", sender="lead@example.com"),
        new_contact_stage="lead",
        language="de-AT",
        attribution=(("form_key", "k1"), ("utm_source", "news")),
        attribution_event="form.submitted",
    )
    created = await ingestor.ingest(form)
    # A known customer keeps their stage; their missing language is filled in once.
    known = await ingestor.ingest(inbound(channel, "mail:1", sender="known@example.com"))
    await ingestor.ingest(
        dataclasses.replace(
            inbound(channel, "form:2", sender="known@example.com"),
            new_contact_stage="lead",
            language="fr",
        )
    )
    await ingestor.ingest(
        dataclasses.replace(inbound(channel, "form:3", sender="known@example.com"), language="it")
    )
    async with sessions() as session:
        lead = await session.get(Contact, created.contact_id)
        customer = await session.get(Contact, known.contact_id)
    assert lead is not None and customer is not None
    assert (lead.lifecycle_stage, lead.language) == ("lead", "de-AT")
    assert (customer.lifecycle_stage, customer.language) == ("new", "fr")
    [event] = await _events(sessions, "form.submitted")
    assert event.contact_id == created.contact_id
    assert event.data["utm_source"] == "news"
    assert await _events(sessions, "contact.attributed") == []


async def test_stage_language_and_event_kind_survive_a_reprocess_round_trip() -> None:
    channel = uuid.uuid4()
    form = dataclasses.replace(
        inbound(channel, "form:1"),
        new_contact_stage="lead",
        language="de",
        attribution_event="form.submitted",
        form=FormRecord(str(uuid.uuid4()), (("utm_source", "news"),), "203.0.113.9"),
    )
    again = inbound_from_json(channel, "form:1", _inbound_json(form, ()))
    assert (again.new_contact_stage, again.language, again.attribution_event) == (
        "lead",
        "de",
        "form.submitted",
    )
    assert again.form == form.form
