"""Conversation state under concurrency, grouping per channel kind, and time that a
sender's clock cannot game."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

import timeline.ingest
from connectors.types import IdentityKind
from tests.timeline.conftest import MakeChannel, wait_for_lock_waiters
from tests.timeline.test_ingest import count, inbound, independent_ingestors, resolve
from timeline.conversation_status import ConversationMoved, set_status
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.ingest import Ingestor
from timeline.models import Contact, Conversation, ConversationStatus, Message, TimelineEvent
from timeline.outbox import queue_outbound

PHONE = "+14155550100"


def sms(channel: uuid.UUID, external_id: str, **kwargs: Any) -> Any:
    return inbound(channel, external_id, IdentityKind.PHONE, PHONE, **kwargs)


async def conversation(sessions: SessionFactory, conversation_id: uuid.UUID | None) -> Conversation:
    async with sessions() as session:
        found = await session.get(Conversation, conversation_id)
    assert found is not None
    return found


async def reopen_events(sessions: SessionFactory, conversation_id: uuid.UUID | None) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(TimelineEvent)
                .where(
                    TimelineEvent.conversation_id == conversation_id,
                    TimelineEvent.kind == "conversation.reopened",
                )
            )
            or 0
        )


def hold_after_batch(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """Make the next ingestion transaction stop before its commit until released."""
    real = timeline.ingest.ingest_batch
    entered, release = asyncio.Event(), asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> Any:
        outcome = await real(*args, **kwargs)
        if not entered.is_set():
            entered.set()
            await release.wait()  # its rows and row locks are held, uncommitted
        return outcome

    monkeypatch.setattr(timeline.ingest, "ingest_batch", held)
    return entered, release


@pytest.mark.parametrize("status", ["pending", "snoozed"])
async def test_a_customer_message_wakes_a_pending_or_snoozed_conversation(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory, status: str
) -> None:
    channel = await make_channel("sms")
    first = await ingestor.ingest(sms(channel, "s1"))
    async with sessions() as session, session.begin():
        await session.execute(
            update(Conversation)
            .where(Conversation.id == first.conversation_id)
            .values(status=status, snoozed_until=datetime.now(UTC) + timedelta(days=1))
        )
    again = await ingestor.ingest(sms(channel, "s2"))
    assert again.conversation_id == first.conversation_id
    woken = await conversation(sessions, first.conversation_id)
    assert (woken.status, woken.snoozed_until, woken.reopen_count) == ("open", None, 0)
    assert await reopen_events(sessions, first.conversation_id) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_resolve_committed_first_then_the_message_reopens_it_once(
    engine: AsyncEngine, ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("sms")
    first = await ingestor.ingest(sms(channel, "s1"))
    async with engine.connect() as agent:
        # The agent's resolve holds the row; the message arrives meanwhile and must wait.
        await agent.execute(
            update(Conversation)
            .where(Conversation.id == first.conversation_id)
            .values(status="resolved", resolved_at=datetime.now(UTC))
        )
        pending = asyncio.create_task(ingestor.ingest(sms(channel, "s2")))
        assert await wait_for_lock_waiters(engine) == 1
        await agent.commit()
    result = await pending
    assert result.conversation_id == first.conversation_id
    reopened = await conversation(sessions, first.conversation_id)
    assert (reopened.status, reopened.reopen_count, reopened.resolved_at) == ("open", 1, None)
    assert await reopen_events(sessions, first.conversation_id) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_message_committed_first_then_a_stale_resolve_is_refused(
    engine: AsyncEngine,
    ingestor: Ingestor,
    make_channel: MakeChannel,
    sessions: SessionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = await make_channel("sms")
    first = await ingestor.ingest(sms(channel, "s1"))
    seen = (await conversation(sessions, first.conversation_id)).last_seq
    entered, release = hold_after_batch(monkeypatch)
    arriving = asyncio.create_task(ingestor.ingest(sms(channel, "s2")))
    await asyncio.wait_for(entered.wait(), 20)

    async def resolve_as_seen() -> None:
        async with sessions() as session, session.begin():
            await set_status(
                session, first.conversation_id, ConversationStatus.RESOLVED, seen_seq=seen
            )

    resolving = asyncio.create_task(resolve_as_seen())
    try:
        assert await wait_for_lock_waiters(engine) == 1  # the resolve waits on its lock
    finally:
        release.set()
    assert (await arriving).conversation_id == first.conversation_id
    with pytest.raises(ConversationMoved):
        await resolving
    still = await conversation(sessions, first.conversation_id)
    assert (still.status, still.last_seq, still.message_count) == ("open", 2, 2)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_concurrent_reopens_are_recorded_once(
    engine: AsyncEngine,
    make_channel: MakeChannel,
    sessions: SessionFactory,
    box: SecretBox,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = await make_channel("sms")
    one, two = independent_ingestors(sessions, box, tmp_path, 2)
    first = await one.ingest(sms(channel, "s1"))
    await resolve(sessions, first.conversation_id, datetime.now(UTC) - timedelta(hours=1))
    entered, release = hold_after_batch(monkeypatch)
    a = asyncio.create_task(one.ingest(sms(channel, "s2")))
    await asyncio.wait_for(entered.wait(), 20)
    b = asyncio.create_task(two.ingest(sms(channel, "s3")))
    try:
        assert await wait_for_lock_waiters(engine) == 1  # the second waits on the first's lock
    finally:
        release.set()
    results = await asyncio.gather(a, b)
    assert {r.conversation_id for r in results} == {first.conversation_id}
    reopened = await conversation(sessions, first.conversation_id)
    assert (reopened.status, reopened.reopen_count, reopened.last_seq) == ("open", 1, 3)
    assert await reopen_events(sessions, first.conversation_id) == 1
    async with sessions() as session:
        seqs = sorted((await session.scalars(select(Message.seq))).all())
    assert seqs == [1, 2, 3]


async def test_writers_racing_a_resolver_never_leave_an_unseen_message_resolved(
    make_channel: MakeChannel,
    sessions: SessionFactory,
    box: SecretBox,
    tmp_path: Any,
) -> None:
    # Six writers and a resolver racing, whatever the interleaving: if the conversation
    # ends resolved, the resolve that did it had seen every message (`seen_seq`), and each
    # message that came after a resolve reopened it.
    channel = await make_channel("sms")
    ingestors = independent_ingestors(sessions, box, tmp_path, 6)
    first = await ingestors[0].ingest(sms(channel, "s0"))
    resolved_with: list[int] = []

    async def resolver() -> None:
        for _ in range(8):
            seen = (await conversation(sessions, first.conversation_id)).last_seq
            try:
                async with sessions() as session, session.begin():
                    await set_status(
                        session,
                        first.conversation_id,
                        ConversationStatus.RESOLVED,
                        seen_seq=seen,
                    )
                resolved_with.append(seen)
            except ConversationMoved:
                pass
            await asyncio.sleep(0)

    await asyncio.gather(
        resolver(), *(ing.ingest(sms(channel, f"s{n + 1}")) for n, ing in enumerate(ingestors))
    )
    final = await conversation(sessions, first.conversation_id)
    assert final.message_count == 7 and final.last_seq == 7
    assert resolved_with  # at least the resolves after the last message succeed
    if final.status == "resolved":
        assert resolved_with[-1] == 7
    else:
        assert final.status == "open" and final.reopen_count >= 1


# --- grouping per channel kind ---------------------------------------------------------------


async def test_a_new_email_with_a_new_subject_starts_a_new_conversation(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("email")
    a = await ingestor.ingest(inbound(channel, "a", message_id="<a@x>", subject="Invoice"))
    b = await ingestor.ingest(inbound(channel, "b", message_id="<b@x>", subject="Password"))
    same_subject = await ingestor.ingest(
        inbound(channel, "c", message_id="<c@x>", subject="Invoice")
    )
    assert len({a.conversation_id, b.conversation_id, same_subject.conversation_id}) == 3
    assert a.contact_id == b.contact_id == same_subject.contact_id
    reply = await ingestor.ingest(
        inbound(channel, "d", message_id="<d@x>", in_reply_to="<b@x>", references=("<b@x>",))
    )
    assert reply.conversation_id == b.conversation_id


async def test_a_reply_citing_only_our_outbound_message_threads(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("email")
    first = await ingestor.ingest(inbound(channel, "a", message_id="<a@x>"))
    assert first.conversation_id is not None
    async with sessions() as session, session.begin():
        ours = await queue_outbound(session, conversation_id=first.conversation_id, text="Hi")
        # What the dispatcher records when the email connector reports its Message-ID.
        ours.rfc_message_id = f"{ours.id}@support.example.com"
    # Their mail client quotes only our message (In-Reply-To and References).
    reply = await ingestor.ingest(
        inbound(
            channel,
            "b",
            message_id="<b@x>",
            in_reply_to=f"<{ours.id}@support.example.com>",
            references=(f"<{ours.id}@support.example.com>",),
        )
    )
    assert reply.conversation_id == first.conversation_id


async def test_every_web_form_submission_starts_a_new_conversation(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("webform")
    results = [
        await ingestor.ingest(inbound(channel, f"f{n}", IdentityKind.WEBFORM, "visitor-1"))
        for n in range(3)
    ]
    assert len({r.conversation_id for r in results}) == 3
    assert len({r.contact_id for r in results}) == 1
    assert await count(sessions, Conversation) == 3


async def test_chat_keeps_one_open_conversation_per_contact(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("telegram")
    results = await ingestor.ingest_many(
        [inbound(channel, f"t{n}", IdentityKind.TELEGRAM, "42") for n in range(5)]
    )
    assert len({r.conversation_id for r in results}) == 1
    assert (await conversation(sessions, results[0].conversation_id)).thread_key == ""


# --- time ------------------------------------------------------------------------------------


async def test_a_date_in_the_future_counts_as_the_arrival_time(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("email")
    before = datetime.now(UTC)
    future = datetime(2099, 1, 1, tzinfo=UTC)
    result = await ingestor.ingest(inbound(channel, "m1", message_id="<m1@x>", at=future))
    after = datetime.now(UTC)
    async with sessions() as session:
        message = await session.get(Message, result.message_id)
        contact = await session.get(Contact, result.contact_id)
        conv = await session.get(Conversation, result.conversation_id)
    assert message is not None and contact is not None and conv is not None
    assert message.sent_at == future  # kept and shown
    assert before <= message.arrived_at <= after
    assert conv.last_activity_at <= after and contact.last_activity_at <= after
    assert conv.waiting_since is not None and conv.waiting_since <= after


async def test_a_late_message_with_an_older_date_comes_after_what_a_client_has_seen(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("sms")
    now = datetime.now(UTC)
    first = await ingestor.ingest(sms(channel, "s1", at=now))
    late = await ingestor.ingest(sms(channel, "s2", at=now - timedelta(days=3)))
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Message.id, Message.seq).where(
                    Message.conversation_id == first.conversation_id
                )
            )
        ).all()
        conv = await session.get(Conversation, first.conversation_id)
    seq = dict(rows)
    assert seq[late.message_id] > seq[first.message_id]
    assert conv is not None and conv.last_activity_at >= now  # never moved backwards


async def test_imported_history_keeps_its_own_dates_in_order(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("sms")
    live = await ingestor.ingest(sms(channel, "live"))
    base = datetime(2024, 5, 1, tzinfo=UTC)
    dates = [base + timedelta(hours=h) for h in (5, 1, 3, 2, 4)]  # a shuffled mailbox
    results = await ingestor.ingest_many(
        [sms(channel, f"old{n}", at=at) for n, at in enumerate(dates)], history=True
    )
    assert {r.conversation_id for r in results} == {live.conversation_id}
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Message.sent_at)
                .where(Message.external_id.like("old%"))
                .order_by(Message.seq)
            )
        ).all()
        conv = await session.get(Conversation, live.conversation_id)
        occurred = (
            await session.scalars(
                select(TimelineEvent.occurred_at)
                .where(TimelineEvent.kind == "message.received")
                .order_by(TimelineEvent.occurred_at)
            )
        ).all()
    assert [r[0] for r in rows] == sorted(dates)
    assert conv is not None and conv.last_activity_at > dates[0]  # the live message's time
    assert occurred[:5] == sorted(dates)
