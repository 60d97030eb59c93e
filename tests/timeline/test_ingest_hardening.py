"""Hostile input: every inbound message ends stored or flagged, on both databases.

PostgreSQL refuses what SQLite accepts (NUL characters, over-long values, lone
surrogates), so each test here runs on both, and a property-based test feeds arbitrary
Unicode, lengths, dates and attachment metadata through `Ingestor.ingest`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

import timeline.ingest
from connectors.types import (
    ChannelId,
    ExternalId,
    IdentityKind,
    Inbound,
    InboundAttachment,
    RawPayload,
    SenderHandle,
    ThreadHints,
)
from tests.timeline.conftest import MakeChannel, refuse_batches_with
from tests.timeline.test_ingest import count, inbound
from timeline.db import SessionFactory
from timeline.identity import IdentityError, normalize_identity
from timeline.ingest import Ingestor
from timeline.models import Attachment, Contact, Identity, Message, ParseStatus, RawInbound
from timeline.reprocess import reprocess
from timeline.storable import clean

LONG = "x" * 5000


def hostile(channel: uuid.UUID, external_id: str) -> Inbound:
    return Inbound(
        channel_id=ChannelId(str(channel)),
        external_id=ExternalId(external_id),
        sender=SenderHandle(IdentityKind.EMAIL, "ann@example.com", "A" * 300 + "\x00\ud800"),
        text="before\x00after \udfff end",
        sent_at=datetime(2026, 11, 1, tzinfo=UTC),
        thread=ThreadHints(
            message_id="<" + "m" * 900 + "@x>",
            in_reply_to="<" + "r" * 700 + "@x>",
            references=("<" + "r" * 700 + "@x>",),
            subject="subject\x00 \ud834",
        ),
        reply_text="reply\x00",
        html="<p>\x00</p>",
        attachments=(
            InboundAttachment(
                filename="f" * 400 + "\x00.txt",
                content_type="text/" + "p" * 300,
                data=b"\x00binary\xff",
                content_id="<" + "c" * 700 + ">",
            ),
        ),
        raw=RawPayload("message/" + "y" * 150, b"raw \x00 bytes kept whole"),
    )


async def test_over_long_values_nul_and_lone_surrogates_are_stored(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("email")
    external_id = "e" * 800
    result = await ingestor.ingest(hostile(channel, external_id))
    assert result.status == "created"
    async with sessions() as session:
        message = await session.get(Message, result.message_id)
        contact = await session.get(Contact, result.contact_id)
        identity = (await session.scalars(select(Identity))).one()
        attachment = (await session.scalars(select(Attachment))).one()
        raw = await session.get(RawInbound, result.raw_id)
    assert message is not None and contact is not None and raw is not None
    assert message.text == "beforeafter \ufffd end"
    assert message.subject == "subject \ufffd"
    assert message.external_id is not None and len(message.external_id) == 500
    assert message.rfc_message_id is not None and len(message.rfc_message_id) == 500
    assert contact.name == "A" * 200 and identity.display_name == "A" * 200
    assert attachment.filename == "f" * 255 and len(attachment.content_type) == 255
    assert attachment.content_id is not None and len(attachment.content_id) == 500
    # The full original stays in the raw payload, byte for byte.
    assert raw.body == b"raw \x00 bytes kept whole" and len(raw.content_type) == 100

    # Over-long ids stay distinct and stable: a redelivery is a duplicate, a different
    # id sharing the first 500 characters is not.
    again = await ingestor.ingest(hostile(channel, external_id))
    other = await ingestor.ingest(hostile(channel, external_id + "2"))
    assert again.status == "duplicate" and again.message_id == result.message_id
    assert other.status == "created" and other.message_id != result.message_id


async def test_a_reply_citing_an_over_long_message_id_threads(
    ingestor: Ingestor, make_channel: MakeChannel
) -> None:
    channel = await make_channel("email")
    long_id = "<" + "m" * 900 + "@x>"
    first = await ingestor.ingest(inbound(channel, "a1", message_id=long_id))
    reply = await ingestor.ingest(
        inbound(channel, "a2", message_id="<a2@x>", in_reply_to=long_id, references=(long_id,))
    )
    assert reply.conversation_id == first.conversation_id


async def test_a_date_that_cannot_be_represented_in_utc_is_stored(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("email")
    edge = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    before = datetime.now(UTC)
    result = await ingestor.ingest(inbound(channel, "m1", at=edge))
    after = datetime.now(UTC)
    assert result.status == "created"
    async with sessions() as session:
        message = await session.get(Message, result.message_id)
    # Past datetime.max once in UTC: it counts as the moment it arrived.
    assert message is not None and before <= message.sent_at <= after


async def test_ingest_many_stores_the_good_messages_of_a_chunk_with_a_bad_one(
    ingestor: Ingestor,
    make_channel: MakeChannel,
    sessions: SessionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = await make_channel("telegram")
    refuse_batches_with(monkeypatch, "poison", ValueError("value refused"))
    results = await ingestor.ingest_many(
        [
            inbound(channel, "t1", IdentityKind.TELEGRAM, "1"),
            inbound(channel, "t2", IdentityKind.TELEGRAM, "2", text="poison"),
            inbound(channel, "t3", IdentityKind.TELEGRAM, "3"),
        ]
    )
    assert [r.status for r in results] == ["created", "flagged", "created"]
    assert await count(sessions, Message) == 2
    async with sessions() as session:
        flagged = await session.get(RawInbound, results[1].raw_id)
    assert flagged is not None and flagged.parse_status == ParseStatus.FAILED.value
    assert flagged.error is not None and "value refused" in flagged.error


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_message_postgresql_refuses_is_flagged_with_its_reason_and_reprocessed(
    ingestor: Ingestor,
    make_channel: MakeChannel,
    sessions: SessionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the storable pass PostgreSQL itself refuses the NUL: the real refusal path.
    channel = await make_channel("telegram")
    monkeypatch.setattr(timeline.ingest, "storable_inbound", lambda value, now: value)
    good, bad = await ingestor.ingest_many(
        [
            inbound(channel, "t1", IdentityKind.TELEGRAM, "1"),
            inbound(channel, "t2", IdentityKind.TELEGRAM, "2", text="nul \x00 here"),
        ]
    )
    assert (good.status, bad.status) == ("created", "flagged")
    assert bad.error is not None and "0x00" in bad.error  # the database's own words
    redelivered = await ingestor.ingest(
        inbound(channel, "t2", IdentityKind.TELEGRAM, "2", text="nul \x00 here")
    )
    assert redelivered.status == "flagged" and redelivered.raw_id == bad.raw_id

    monkeypatch.undo()  # the fix ships; reprocess retries what was refused
    summary = await reprocess(sessions, ingestor)
    assert (summary.seen, summary.ingested, summary.still_flagged) == (1, 1, 0)
    async with sessions() as session:
        texts = sorted((await session.scalars(select(Message.text))).all())
    assert texts == ["hello", "nul  here"]


async def test_reprocess_relinks_the_attachments_of_a_flagged_message(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("sms")
    photo = InboundAttachment("photo.jpg", "image/jpeg", b"\xff\xd8 jpeg bytes")
    message = inbound(channel, "s1", IdentityKind.PHONE, "call me maybe")
    flagged = await ingestor.ingest(
        Inbound(**{**{f: getattr(message, f) for f in message.__slots__}, "attachments": (photo,)})
    )
    assert flagged.status == "flagged"
    async with sessions() as session, session.begin():
        raw = await session.get(RawInbound, flagged.raw_id)
        assert raw is not None and raw.inbound is not None
        raw.inbound = {**raw.inbound, "sender": {**raw.inbound["sender"], "value": "+14155550100"}}

    summary = await reprocess(sessions, ingestor)
    assert summary.ingested == 1
    async with sessions() as session:
        stored = (await session.scalars(select(Attachment))).one()
        message_row = (await session.scalars(select(Message))).one()
    assert stored.message_id == message_row.id
    assert (stored.filename, stored.content_type, stored.size) == ("photo.jpg", "image/jpeg", 13)
    blobs = list((ingestor.data_dir / "blobs").rglob("*"))
    assert len([p for p in blobs if p.is_file()]) == 1  # relinked, not stored again


_ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
_TEXT = st.text(_ANY_CHAR, max_size=40) | st.text(_ANY_CHAR, min_size=190, max_size=1200)
_OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_DATES = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    _OFFSETS,
)
_ATTACHMENTS = st.lists(
    st.builds(
        InboundAttachment,
        filename=st.none() | _TEXT,
        content_type=_TEXT,
        data=st.binary(max_size=64),
        inline=st.booleans(),
        content_id=st.none() | _TEXT,
    ),
    max_size=2,
)
_SENDERS = st.one_of(
    st.none(),
    st.builds(
        SenderHandle,
        st.just(IdentityKind.EMAIL),
        st.sampled_from(["ann@example.com", "Bob@Example.COM"]) | _TEXT,
        st.none() | _TEXT,
    ),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    external_id=_TEXT,
    sender=_SENDERS,
    text=_TEXT,
    subject=st.none() | _TEXT,
    message_id=st.none() | _TEXT,
    references=st.lists(_TEXT, max_size=3),
    sent_at=_DATES,
    attachments=_ATTACHMENTS,
    content_type=_TEXT,
)
async def test_any_input_ends_stored_or_flagged_never_an_exception(
    ingestor: Ingestor,
    make_channel: MakeChannel,
    sessions: SessionFactory,
    external_id: str,
    sender: SenderHandle | None,
    text: str,
    subject: str | None,
    message_id: str | None,
    references: list[str],
    sent_at: datetime,
    attachments: list[InboundAttachment],
    content_type: str,
) -> None:
    channel = await make_channel("email")
    # A connector always gives an id; make it unique per example (the property is about
    # content, and a repeat would only be a duplicate).
    key = f"{uuid.uuid4()}{external_id}"
    message = Inbound(
        channel_id=ChannelId(str(channel)),
        external_id=ExternalId(key),
        sender=sender,
        text=text,
        sent_at=sent_at,
        thread=ThreadHints(
            message_id=message_id,
            in_reply_to=references[0] if references else None,
            references=tuple(references),
            subject=subject,
        ),
        html=text,
        attachments=tuple(attachments),
        raw=RawPayload(content_type, text.encode("utf-8", "surrogatepass")),
    )
    result = await ingestor.ingest(message)
    # Only a sender nobody can be identified by flags a message; content never does.
    try:
        normalize_identity(IdentityKind.EMAIL, clean(sender.value)) if sender else None
        identifiable = sender is not None
    except IdentityError:
        identifiable = False
    assert result.status == ("created" if identifiable else "flagged"), result.error
    async with sessions() as session:
        raw = await session.get(RawInbound, result.raw_id)
        stored = (
            None if result.message_id is None else await session.get(Message, result.message_id)
        )
    assert raw is not None
    if result.status == "created":
        assert stored is not None and stored.raw_id == raw.id
        assert "\x00" not in stored.text
    else:
        assert raw.parse_status != ParseStatus.OK.value and result.error
    again = await ingestor.ingest(message)
    assert again.raw_id == result.raw_id
    assert again.status == ("duplicate" if result.status == "created" else "flagged")
