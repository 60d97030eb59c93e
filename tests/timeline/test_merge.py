"""Contact merge in the timeline: everything moves to the survivor, nothing is lost, the
merged id keeps resolving, and two open chats of one thread do not collide."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from connectors.types import IdentityKind, SenderHandle
from tests.timeline.conftest import MakeChannel
from tests.timeline.test_ingest import inbound
from tests.timeline.test_ingest_extras import tg
from timeline.db import SessionFactory
from timeline.ingest import Ingestor
from timeline.merge import (
    MERGED,
    ContactNotFound,
    MergeRefused,
    merge_contacts,
    merged_stage,
    resolve_contact_id,
)
from timeline.models import (
    Contact,
    ContactAttribute,
    ContactReachability,
    ContactTag,
    Conversation,
    Form,
    FormSubmission,
    Identity,
    MergeSuggestion,
    Message,
    TimelineEvent,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ACTOR = uuid.UUID("00000000-0000-7000-8000-000000000001")
PHONE = "+14155550100"


async def _count(sessions: SessionFactory, model: Any, contact_id: uuid.UUID) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(model).where(model.contact_id == contact_id)
            )
            or 0
        )


async def _merge(sessions: SessionFactory, survivor: uuid.UUID, merged: uuid.UUID) -> Any:
    async with sessions() as session, session.begin():
        return await merge_contacts(session, survivor, merged, ACTOR, NOW)


async def _add(sessions: SessionFactory, *rows: Any) -> None:
    async with sessions() as session, session.begin():
        session.add_all(rows)


async def test_a_merge_moves_everything_and_loses_nothing(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    email = await make_channel("email")
    sms = await make_channel("sms")
    webform = await make_channel("webform")
    ann = await ingestor.ingest(inbound(email, "<1@x>", sender="ann@example.com"))
    ann2 = await ingestor.ingest(inbound(email, "<2@x>", sender="ann@example.com"))
    bob = await ingestor.ingest(inbound(sms, "SM1", IdentityKind.PHONE, PHONE, text="hi"))
    await ingestor.ingest(inbound(sms, "SM2", IdentityKind.PHONE, PHONE, text="again"))
    survivor, merged = ann.contact_id, bob.contact_id
    assert survivor and merged and ann2.contact_id == survivor
    third, fourth, earlier = Contact(name="Third"), Contact(name="Fourth"), Contact(name="Old")
    form = Form(key="k1", channel_id=webform, name="Contact us", definition={})
    await _add(sessions, third, fourth, earlier, form)
    owner = uuid.uuid4()
    async with sessions() as session, session.begin():
        a = await session.get(Contact, survivor)
        b = await session.get(Contact, merged)
        old = await session.get(Contact, earlier.id)
        assert a and b and old
        a.lifecycle_stage, b.lifecycle_stage = "lead", "customer"
        a.language = "en"
        b.language, b.timezone, b.owner_id, b.currency = "de", "Europe/Berlin", owner, "EUR"
        b.lifetime_value_minor, b.lifetime_value_currency = 125_00, "EUR"
        b.created_at = NOW - timedelta(days=400)
        old.merged_into_id = merged
        session.add_all(
            [
                ContactTag(contact_id=survivor, tag="vip"),
                ContactTag(contact_id=merged, tag="vip"),
                ContactTag(contact_id=merged, tag="b2b"),
                ContactAttribute(contact_id=survivor, key="plan", text_value="gold"),
                ContactAttribute(contact_id=merged, key="plan", text_value="silver"),
                ContactAttribute(contact_id=merged, key="region", text_value="eu"),
                ContactReachability(
                    channel_id=sms, contact_id=survivor, opted_out=False, blocked=False
                ),
                ContactReachability(
                    channel_id=sms, contact_id=merged, opted_out=True, blocked=False, detail="STOP"
                ),
                ContactReachability(
                    channel_id=email, contact_id=merged, opted_out=False, blocked=True
                ),
                FormSubmission(form_id=form.id, contact_id=merged, attribution={"utm": "x"}),
                MergeSuggestion(contact_id=survivor, other_contact_id=merged, reason="p:1"),
                MergeSuggestion(contact_id=merged, other_contact_id=third.id, reason="p:2"),
                MergeSuggestion(contact_id=survivor, other_contact_id=third.id, reason="p:3"),
                MergeSuggestion(contact_id=fourth.id, other_contact_id=merged, reason="p:4"),
            ]
        )
    events_before = await _count(sessions, TimelineEvent, survivor) + await _count(
        sessions, TimelineEvent, merged
    )

    result = await _merge(sessions, survivor, merged)

    assert result.moved["identities"] == 1
    assert result.moved["conversations"] == 1
    assert result.moved["messages"] == 2
    assert result.moved["tags"] == 1 and result.moved["attributes"] == 1
    assert result.moved["reachability"] == 2 and result.moved["form_submissions"] == 1
    assert result.moved["earlier_merges"] == 1 and result.moved["suggestions"] == 1
    for model in (Identity, Conversation, Message, TimelineEvent, ContactTag, ContactAttribute):
        assert await _count(sessions, model, merged) == 0, model
    assert await _count(sessions, Message, survivor) == 4
    assert await _count(sessions, Conversation, survivor) == 3  # two email threads, one chat
    # Every event moved, plus the audit event.
    assert await _count(sessions, TimelineEvent, survivor) == events_before + 1
    async with sessions() as session:
        a = await session.get(Contact, survivor)
        b = await session.get(Contact, merged)
        assert a and b
        assert b.merged_into_id == survivor and b.updated_at == NOW
        assert (a.lifecycle_stage, a.language, a.timezone, a.owner_id, a.currency) == (
            "customer",
            "en",  # the survivor's own value wins
            "Europe/Berlin",
            owner,
            "EUR",
        )
        assert (a.lifetime_value_minor, a.lifetime_value_currency) == (125_00, "EUR")
        assert a.created_at == NOW - timedelta(days=400)
        tags = set(await session.scalars(select(ContactTag.tag)))
        assert tags == {"vip", "b2b"}
        attributes = {
            row.key: row.text_value for row in await session.scalars(select(ContactAttribute))
        }
        assert attributes == {"plan": "gold", "region": "eu"}
        reach = {
            row.channel_id: (row.contact_id, row.opted_out, row.blocked)
            for row in await session.scalars(select(ContactReachability))
        }
        assert reach == {sms: (survivor, True, False), email: (survivor, False, True)}
        [submission] = await session.scalars(select(FormSubmission))
        assert submission.contact_id == survivor
        suggestions = {
            frozenset((s.contact_id, s.other_contact_id)): s
            for s in await session.scalars(select(MergeSuggestion))
        }
        assert set(suggestions) == {
            frozenset((survivor, merged)),
            frozenset((survivor, third.id)),
            frozenset((survivor, fourth.id)),
        }
        done = suggestions[frozenset((survivor, merged))]
        assert (done.status, done.resolved_by, done.resolved_at) == ("merged", ACTOR, NOW)
        repointed = suggestions[frozenset((survivor, fourth.id))]
        assert (repointed.status, repointed.reason) == ("open", "p:4")
        assert str(repointed.contact_id) < str(repointed.other_contact_id)
        audit = await session.scalar(select(TimelineEvent).where(TimelineEvent.kind == MERGED))
        assert audit is not None and audit.contact_id == survivor
        assert audit.data["merged_id"] == str(merged) and audit.data["by"] == str(ACTOR)
        assert audit.data["moved"]["messages"] == 2
        # No chains: the contact merged into the merged one now names the survivor.
        assert await resolve_contact_id(session, earlier.id) == survivor
        assert await resolve_contact_id(session, merged) == survivor
        assert await resolve_contact_id(session, survivor) == survivor
        assert await resolve_contact_id(session, uuid.uuid4()) is None
    assert [(e.type, e.data) for e in result.events] == [
        ("contact.updated", {"contact_id": str(survivor)}),
        (MERGED, {"survivor_id": str(survivor), "merged_id": str(merged)}),
    ]
    # The merged person's next SMS lands on the survivor.
    later = await ingestor.ingest(inbound(sms, "SM3", IdentityKind.PHONE, PHONE))
    assert later.contact_id == survivor


async def test_merges_that_cannot_be_made_are_refused_and_change_nothing(
    sessions: SessionFactory,
) -> None:
    a, b, c, gone = Contact(name="A"), Contact(name="B"), Contact(name="C"), Contact()
    gone.erased_at = NOW
    await _add(sessions, a, b, c, gone)
    with pytest.raises(MergeRefused, match="itself"):
        await _merge(sessions, a.id, a.id)
    with pytest.raises(ContactNotFound):
        await _merge(sessions, a.id, uuid.uuid4())
    with pytest.raises(ContactNotFound):
        await _merge(sessions, uuid.uuid4(), a.id)
    with pytest.raises(MergeRefused, match="erased"):
        await _merge(sessions, gone.id, a.id)
    with pytest.raises(MergeRefused, match="erased"):
        await _merge(sessions, a.id, gone.id)
    await _merge(sessions, a.id, b.id)
    with pytest.raises(MergeRefused, match="already merged"):
        await _merge(sessions, a.id, b.id)  # b again
    with pytest.raises(MergeRefused, match="already merged"):
        await _merge(sessions, b.id, c.id)  # into a merged contact
    async with sessions() as session:
        still = await session.get(Contact, c.id)
        assert still is not None and still.merged_into_id is None
        assert await session.scalar(select(func.count()).select_from(TimelineEvent)) == 1


async def test_two_open_chats_of_one_thread_stay_two_conversations(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    telegram = await make_channel("telegram")
    first = await ingestor.ingest(tg(telegram, "1001:1", "1001"))
    second = await ingestor.ingest(tg(telegram, "1002:1", "1002"))
    await ingestor.ingest(tg(telegram, "1002:2", "1002"))
    assert first.contact_id and second.contact_id
    async with sessions() as session:
        keys = set(await session.scalars(select(Conversation.thread_key)))
    assert len(keys) == 1  # both open on the one chat thread: the index's case

    result = await _merge(sessions, first.contact_id, second.contact_id)

    assert result.moved["conversations_split"] == 1
    async with sessions() as session:
        rows = {
            c.id: c
            for c in await session.scalars(select(Conversation).order_by(Conversation.created_at))
        }
    assert {c.contact_id for c in rows.values()} == {first.contact_id}
    kept, split = rows[first.conversation_id], rows[second.conversation_id]  # type: ignore[index]
    assert kept.thread_key is not None and split.thread_key is None
    assert (split.message_count, split.last_seq, split.status) == (2, 2, "open")
    # The merged person's next message joins the survivor's open chat, whatever account.
    later = await ingestor.ingest(tg(telegram, "1002:3", "1002"))
    assert (later.contact_id, later.conversation_id) == (first.contact_id, kept.id)


async def test_a_merge_suggestion_raised_by_ingestion_is_settled_by_the_merge(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    sms = await make_channel("sms")
    telegram = await make_channel("telegram")
    by_sms = await ingestor.ingest(inbound(sms, "SM1", IdentityKind.PHONE, PHONE))
    offered = SenderHandle(IdentityKind.PHONE, PHONE, "Ann")
    by_bot = await ingestor.ingest(tg(telegram, "1001:5", identities=(offered,)))
    assert by_sms.contact_id and by_bot.contact_id
    await _merge(sessions, by_bot.contact_id, by_sms.contact_id)
    async with sessions() as session:
        [suggestion] = await session.scalars(select(MergeSuggestion))
        assert suggestion.status == "merged"
        values = set(
            await session.scalars(
                select(Identity.value).where(Identity.contact_id == by_bot.contact_id)
            )
        )
    assert values == {"1001", PHONE}


STAGES = st.sampled_from(["new", "lead", "qualified", "customer", "lost"])
RANK = {"new": 0, "lead": 1, "qualified": 2, "customer": 3}


@given(STAGES, STAGES)
def test_the_merged_stage_is_the_further_one_and_lost_only_when_both_were(a: str, b: str) -> None:
    stage = merged_stage(a, b)
    assert stage == merged_stage(b, a)
    assert (stage == "lost") == (a == b == "lost")
    if stage != "lost":
        assert all(RANK[stage] >= RANK[s] for s in (a, b) if s != "lost")
        assert stage in (a, b)
