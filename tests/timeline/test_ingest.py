"""The ingestion pipeline: exactly once, one contact per person, the right conversation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

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
from tests.timeline.conftest import MakeChannel, refuse_batches_with, wait_for_lock_waiters
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.events import EventBus, InProcessBus
from timeline.files import blob_path
from timeline.ingest import IngestError, Ingestor
from timeline.models import (
    Attachment,
    Contact,
    Conversation,
    Identity,
    Message,
    ParseStatus,
    RawInbound,
    TimelineEvent,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def inbound(
    channel: uuid.UUID,
    external_id: str,
    kind: IdentityKind = IdentityKind.EMAIL,
    sender: str | None = "ann@example.com",
    *,
    text: str = "hello",
    at: datetime = T0,
    **thread: Any,
) -> Inbound:
    return Inbound(
        channel_id=ChannelId(str(channel)),
        external_id=ExternalId(external_id),
        sender=None if sender is None else SenderHandle(kind, sender, "Ann"),
        text=text,
        sent_at=at,
        thread=ThreadHints(**thread),
        raw=RawPayload("text/plain", f"raw {external_id}".encode()),
    )


def independent_ingestors(
    sessions: SessionFactory, box: SecretBox, data_dir: Path, n: int
) -> list[Ingestor]:
    """Ingestors that share nothing but the database, like n separate worker processes."""
    return [
        Ingestor(
            sessions,
            InProcessBus(),
            reopen_window=timedelta(days=7),
            data_dir=data_dir,
            secret_box=box,
        )
        for _ in range(n)
    ]


async def count(sessions: SessionFactory, model: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_same_inbound_twice_is_one_message(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("email")
    first = await ingestor.ingest(inbound(channel, "m1"))
    second = await ingestor.ingest(inbound(channel, "m1"))
    assert first.status == "created"
    assert second.status == "duplicate"
    assert second.message_id == first.message_id
    assert second.conversation_id == first.conversation_id
    assert await count(sessions, Message) == 1
    assert await count(sessions, RawInbound) == 1


async def test_same_external_id_on_two_channels_is_two_messages(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    a, b = await make_channel("email"), await make_channel("email")
    results = await asyncio.gather(
        ingestor.ingest(inbound(a, "m1")), ingestor.ingest(inbound(b, "m1"))
    )
    assert [r.status for r in results] == ["created", "created"]
    assert await count(sessions, Message) == 2
    assert await count(sessions, Contact) == 1  # the same person wrote to two mailboxes


async def test_duplicates_within_one_batch(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("email")
    results = await ingestor.ingest_many([inbound(channel, "m1"), inbound(channel, "m1")])
    assert [r.status for r in results] == ["created", "duplicate"]
    assert results[0].message_id == results[1].message_id
    assert await count(sessions, Message) == 1


async def test_twenty_concurrent_deliveries_make_one_message_and_one_contact(
    engine: AsyncEngine,
    make_channel: MakeChannel,
    sessions: SessionFactory,
    box: SecretBox,
    tmp_path: Path,
) -> None:
    # Twenty independent ingestors (no shared batching) race on separate connections, as
    # twenty workers receiving the same webhook redelivery would.
    channel = await make_channel("sms")
    ingestors = independent_ingestors(sessions, box, tmp_path, 20)
    message = inbound(channel, "SM1", IdentityKind.PHONE, "+14155550100")
    results = await asyncio.gather(*(i.ingest(message) for i in ingestors))
    assert sorted(r.status for r in results) == ["created"] + ["duplicate"] * 19
    assert len({r.message_id for r in results}) == 1
    assert await count(sessions, Message) == 1
    assert await count(sessions, Contact) == 1
    assert await count(sessions, Identity) == 1
    assert await count(sessions, Conversation) == 1


async def test_concurrent_messages_from_a_new_contact_share_contact_and_conversation(
    engine: AsyncEngine,
    make_channel: MakeChannel,
    sessions: SessionFactory,
    box: SecretBox,
    tmp_path: Path,
) -> None:
    channel = await make_channel("telegram")
    ingestors = independent_ingestors(sessions, box, tmp_path, 20)
    results = await asyncio.gather(
        *(
            ing.ingest(inbound(channel, f"u{n}", IdentityKind.TELEGRAM, "777"))
            for n, ing in enumerate(ingestors)
        )
    )
    assert all(r.status == "created" for r in results)
    assert await count(sessions, Message) == 20
    assert await count(sessions, Contact) == 1
    assert await count(sessions, Conversation) == 1
    async with sessions() as session:
        conv = (await session.scalars(select(Conversation))).one()
    assert conv.message_count == 20


@pytest.mark.parametrize(
    ("kind", "channel_kind", "spellings"),
    [
        (IdentityKind.PHONE, "sms", ["+1 (415) 555-0100", "14155550100", "415-555-0100"]),
        (IdentityKind.EMAIL, "email", ["Foo@Example.COM", "foo@example.com", "<foo@EXAMPLE.com>"]),
    ],
)
async def test_spellings_of_one_identity_are_one_contact(
    ingestor: Ingestor,
    make_channel: MakeChannel,
    sessions: SessionFactory,
    kind: IdentityKind,
    channel_kind: str,
    spellings: list[str],
) -> None:
    channel = await make_channel(channel_kind)
    results = [
        await ingestor.ingest(inbound(channel, f"m{n}", kind, value))
        for n, value in enumerate(spellings)
    ]
    assert len({r.contact_id for r in results}) == 1
    async with sessions() as session:
        values = (await session.scalars(select(Identity.value))).all()
    assert values == (["+14155550100"] if kind is IdentityKind.PHONE else ["foo@example.com"])


async def test_email_citing_another_customers_message_id_opens_its_own_conversation(
    ingestor: Ingestor, make_channel: MakeChannel
) -> None:
    channel = await make_channel("email")
    ann = await ingestor.ingest(
        inbound(channel, "a1", sender="ann@example.com", message_id="<a1@example.com>")
    )
    mallory = await ingestor.ingest(
        inbound(
            channel,
            "x1",
            sender="mallory@evil.test",
            message_id="<x1@evil.test>",
            in_reply_to="<a1@example.com>",
            references=("<a1@example.com>",),
        )
    )
    assert mallory.status == "created"
    assert mallory.contact_id != ann.contact_id
    assert mallory.conversation_id != ann.conversation_id


async def resolve(
    sessions: SessionFactory, conversation_id: uuid.UUID | None, at: datetime
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(status="resolved", resolved_at=at)
        )


async def test_reply_to_resolved_email_thread_reopens_it_within_the_window(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("email")
    first = await ingestor.ingest(inbound(channel, "a1", message_id="<a1@example.com>"))
    await resolve(sessions, first.conversation_id, datetime.now(UTC) - timedelta(days=1))
    reply = await ingestor.ingest(
        inbound(channel, "a2", message_id="<a2@example.com>", in_reply_to="<a1@example.com>")
    )
    assert reply.conversation_id == first.conversation_id
    async with sessions() as session:
        conv = await session.get(Conversation, first.conversation_id)
        kinds = (
            (
                await session.scalars(
                    select(TimelineEvent.kind).where(TimelineEvent.conversation_id == conv.id)
                )
            ).all()
            if conv
            else []
        )
    assert conv is not None and conv.status == "open" and conv.reopen_count == 1
    assert conv.resolved_at is None and conv.message_count == 2
    assert "conversation.reopened" in kinds


async def test_message_after_the_reopen_window_starts_a_new_conversation(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("sms")
    first = await ingestor.ingest(inbound(channel, "s1", IdentityKind.PHONE, "+14155550100"))
    await resolve(sessions, first.conversation_id, datetime.now(UTC) - timedelta(days=30))
    later = await ingestor.ingest(inbound(channel, "s2", IdentityKind.PHONE, "+14155550100"))
    assert later.contact_id == first.contact_id
    assert later.conversation_id != first.conversation_id
    async with sessions() as session:
        old = await session.get(Conversation, first.conversation_id)
    assert old is not None and old.status == "resolved"


async def test_message_on_recently_resolved_sms_conversation_reopens_it(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("sms")
    first = await ingestor.ingest(inbound(channel, "s1", IdentityKind.PHONE, "+14155550100"))
    await resolve(sessions, first.conversation_id, datetime.now(UTC) - timedelta(hours=2))
    again = await ingestor.ingest(inbound(channel, "s2", IdentityKind.PHONE, "+14155550100"))
    assert again.conversation_id == first.conversation_id


async def test_inbound_without_identity_is_kept_raw_and_flagged(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("sms")
    nobody = await ingestor.ingest(inbound(channel, "s1", IdentityKind.PHONE, None))
    garbage = await ingestor.ingest(inbound(channel, "s2", IdentityKind.PHONE, "not a number"))
    again = await ingestor.ingest(inbound(channel, "s2", IdentityKind.PHONE, "not a number"))
    assert (nobody.status, garbage.status, again.status) == ("flagged", "flagged", "flagged")
    assert garbage.error and "phone" in garbage.error
    assert again.raw_id == garbage.raw_id
    assert await count(sessions, Message) == 0
    async with sessions() as session:
        raws = (await session.scalars(select(RawInbound).order_by(RawInbound.external_id))).all()
    assert [r.parse_status for r in raws] == [ParseStatus.NO_IDENTITY.value] * 2
    assert raws[1].body == b"raw s2"
    assert raws[1].inbound is not None and raws[1].inbound["sender"]["value"] == "not a number"


async def test_bad_values_are_refused_with_a_clear_error(
    ingestor: Ingestor, make_channel: MakeChannel
) -> None:
    channel = await make_channel("email")
    with pytest.raises(IngestError, match="unknown channel"):
        await ingestor.ingest(inbound(uuid.uuid4(), "m1"))
    with pytest.raises(IngestError, match="timezone"):
        await ingestor.ingest(inbound(channel, "m1", at=datetime(2026, 1, 1)))
    with pytest.raises(IngestError, match="external_id"):
        await ingestor.ingest(inbound(channel, " "))


async def test_attachments_are_content_addressed_never_by_filename(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory, tmp_path: Path
) -> None:
    channel = await make_channel("email")
    evil = InboundAttachment("../../../etc/passwd", "text/plain", b"payload")
    message = inbound(channel, "m1")
    result = await ingestor.ingest(
        Inbound(**{**{f: getattr(message, f) for f in message.__slots__}, "attachments": (evil,)})
    )
    async with sessions() as session:
        stored = (
            await session.scalars(
                select(Attachment).where(Attachment.message_id == result.message_id)
            )
        ).one()
    assert stored.filename == "../../../etc/passwd"  # kept for display only
    path = blob_path(tmp_path / "data", stored.sha256)
    assert path.read_bytes() == b"payload"
    assert path.resolve().is_relative_to((tmp_path / "data").resolve())


async def test_events_are_published_after_commit(
    make_channel: MakeChannel,
    sessions: SessionFactory,
    box: SecretBox,
    bus: EventBus,
    tmp_path: Path,
) -> None:
    channel = await make_channel("email")
    ing = Ingestor(
        sessions, bus, reopen_window=timedelta(days=7), data_dir=tmp_path, secret_box=box
    )
    async with bus.subscribe() as events:
        result = await ing.ingest(inbound(channel, "m1"))
        seen = [await events.get(timeout=5) for _ in range(3)]
    types = [e.type for e in seen if e is not None]
    assert types == ["contact.created", "conversation.created", "message.created"]
    assert seen[2] is not None and seen[2].data["message_id"] == str(result.message_id)


async def test_a_failed_transaction_publishes_nothing_and_keeps_the_message_flagged(
    make_channel: MakeChannel,
    sessions: SessionFactory,
    box: SecretBox,
    bus: EventBus,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = await make_channel("email")
    real = timeline.ingest.ingest_batch

    async def store_then_fail(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)  # every row written, events collected...
        raise RuntimeError("disk full")  # ...then the transaction fails

    monkeypatch.setattr(timeline.ingest, "ingest_batch", store_then_fail)
    ing = Ingestor(
        sessions, bus, reopen_window=timedelta(days=7), data_dir=tmp_path, secret_box=box
    )
    async with bus.subscribe() as events:
        result = await ing.ingest(inbound(channel, "m1"))
        assert await events.get(timeout=0.5) is None
    assert result.status == "flagged" and result.error and "disk full" in result.error
    assert await count(sessions, Message) == 0
    assert await count(sessions, Contact) == 0
    async with sessions() as session:
        raw = (await session.scalars(select(RawInbound))).one()
    assert raw.id == result.raw_id and raw.parse_status == ParseStatus.FAILED.value
    assert raw.body == b"raw m1" and raw.inbound is not None


async def test_group_commit_gives_each_caller_its_own_result(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("telegram")
    messages = [
        inbound(channel, f"m{n}", IdentityKind.TELEGRAM, str(1000 + n % 7)) for n in range(60)
    ]
    results = await asyncio.gather(*(ingestor.ingest(m) for m in messages))
    assert all(r.status == "created" for r in results)
    assert len({r.message_id for r in results}) == 60
    assert len({r.contact_id for r in results}) == 7
    assert await count(sessions, Conversation) == 7
    async with sessions() as session:
        rows = (await session.execute(select(Message.external_id, Message.id))).all()
    by_external = dict(rows)
    for message, result in zip(messages, results, strict=True):
        assert by_external[message.external_id] == result.message_id


async def test_one_bad_message_does_not_fail_its_batch(
    ingestor: Ingestor,
    make_channel: MakeChannel,
    sessions: SessionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = await make_channel("email")
    refuse_batches_with(monkeypatch, "poison", ValueError("parser bug"))
    messages = [inbound(channel, f"m{n}", text="poison" if n == 3 else "ok") for n in range(8)]
    outcomes = await asyncio.gather(*(ingestor.ingest(m) for m in messages))
    assert [o.status for o in outcomes] == ["created"] * 3 + ["flagged"] + ["created"] * 4
    assert outcomes[3].error is not None and "parser bug" in outcomes[3].error
    assert await count(sessions, Message) == 7


async def test_one_transaction_opens_many_conversations_and_reopens(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    # ingest_many commits without the one-by-one fallback: every set-based statement must
    # work with many rows (executemany), not only with one.
    channel = await make_channel("sms")
    first = await ingestor.ingest_many(
        [inbound(channel, f"a{n}", IdentityKind.PHONE, f"+1415555{n:04d}") for n in range(30)]
    )
    for result in first[:10]:
        await resolve(sessions, result.conversation_id, datetime.now(UTC) - timedelta(hours=1))
    second = await ingestor.ingest_many(
        [inbound(channel, f"b{n}", IdentityKind.PHONE, f"+1415555{n:04d}") for n in range(40)]
    )
    assert [r.status for r in second] == ["created"] * 40
    assert [r.conversation_id for r in second[:30]] == [r.conversation_id for r in first]
    assert await count(sessions, Conversation) == 40
    async with sessions() as session:
        reopened = await session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.reopen_count == 1)
        )
    assert reopened == 10


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_losing_the_race_to_open_a_conversation_adopts_the_winners(
    engine: AsyncEngine, ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    # Only PostgreSQL lets two writers interleave; SQLite serializes every transaction.
    channel = await make_channel("sms")
    first = await ingestor.ingest(inbound(channel, "s0", IdentityKind.PHONE, "+14155550100"))
    await resolve(sessions, first.conversation_id, datetime.now(UTC) - timedelta(days=30))
    winner = uuid.uuid4()
    async with engine.connect() as other:
        # Another process opens the slot and has not committed yet...
        await other.execute(
            Conversation.__table__.insert().values(
                id=winner,
                contact_id=first.contact_id,
                channel_id=channel,
                status="open",
                thread_key="",
                created_at=T0,
                last_activity_at=T0,
                reopen_count=0,
                message_count=0,
                last_seq=0,
            )
        )
        # ...while ingestion, which could not see it, tries to open the same slot and waits.
        pending = asyncio.create_task(
            ingestor.ingest(inbound(channel, "s1", IdentityKind.PHONE, "+14155550100"))
        )
        waiting = await wait_for_lock_waiters(engine)
        assert waiting == 1
        await other.commit()
    result = await pending
    assert result.status == "created" and result.conversation_id == winner
    async with sessions() as session:
        adopted = await session.get(Conversation, winner)
    assert adopted is not None and adopted.message_count == 1
    assert await count(sessions, Conversation) == 2
