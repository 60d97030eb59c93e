"""Contact merge with the inbox's rows (notes, tasks), merge suggestions merged or
dismissed, and two merges of one pair in opposite directions at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from inbox.merge import (
    SUGGESTION_DISMISSED,
    SuggestionClosed,
    SuggestionNotFound,
    dismiss_suggestion,
    merge_contacts,
    merge_suggestion,
)
from inbox.models import ContactNote, Role, Task, User
from tests.timeline.conftest import wait_for_lock_waiters
from timeline.db import SessionFactory
from timeline.merge import MergeRefused
from timeline.models import (
    Channel,
    Contact,
    Conversation,
    Identity,
    MergeSuggestion,
    Message,
    TimelineEvent,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def _user(sessions: SessionFactory) -> User:
    user = User(
        email=f"{uuid.uuid4().hex[:8]}@example.com", role=Role.MANAGER.value, password_hash="x"
    )
    async with sessions() as session, session.begin():
        session.add(user)
    return user


async def _person(
    sessions: SessionFactory, channel: Channel, name: str, value: str, messages: int = 2
) -> Contact:
    """A contact with an identity, a conversation of `messages` messages, a note, a task."""
    contact = Contact(name=name)
    async with sessions() as session, session.begin():
        session.add(contact)
        await session.flush()
        conversation = Conversation(
            contact_id=contact.id,
            channel_id=channel.id,
            last_seq=messages,
            message_count=messages,
        )
        session.add_all([Identity(contact_id=contact.id, kind="email", value=value), conversation])
        await session.flush()
        session.add_all(
            Message(
                conversation_id=conversation.id,
                channel_id=channel.id,
                contact_id=contact.id,
                direction="in",
                text=f"{name} {n}",
                sent_at=NOW,
                seq=n,
            )
            for n in range(1, messages + 1)
        )
        session.add_all(
            [
                ContactNote(contact_id=contact.id, text=f"note on {name}"),
                Task(
                    title=f"call {name}",
                    due_at=NOW + timedelta(days=1),
                    contact_id=contact.id,
                    conversation_id=conversation.id,
                ),
            ]
        )
    return contact


@pytest.fixture
async def channel(sessions: SessionFactory) -> Channel:
    row = Channel(kind="email", name="mail", config_encrypted="x")
    async with sessions() as session, session.begin():
        session.add(row)
    return row


async def _owned(sessions: SessionFactory, model: Any, contact_id: uuid.UUID) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(model).where(model.contact_id == contact_id)
            )
            or 0
        )


async def test_notes_and_tasks_move_with_the_merge(
    sessions: SessionFactory, channel: Channel
) -> None:
    user = await _user(sessions)
    ann = await _person(sessions, channel, "Ann", "ann@example.com")
    bob = await _person(sessions, channel, "Bob", "bob@example.com", messages=3)
    async with sessions() as session, session.begin():
        result = await merge_contacts(session, ann.id, bob.id, user.id, NOW)
    assert (result.moved["notes"], result.moved["tasks"]) == (1, 1)
    for model in (ContactNote, Task, Message, Identity):
        assert await _owned(sessions, model, bob.id) == 0
    assert await _owned(sessions, ContactNote, ann.id) == 2
    assert await _owned(sessions, Task, ann.id) == 2
    assert await _owned(sessions, Message, ann.id) == 5


async def test_a_suggestion_is_merged_into_the_chosen_survivor(
    sessions: SessionFactory, channel: Channel
) -> None:
    user = await _user(sessions)
    ann = await _person(sessions, channel, "Ann", "ann@example.com")
    bob = await _person(sessions, channel, "Bob", "bob@example.com")
    stranger = await _person(sessions, channel, "Cy", "cy@example.com")
    suggestion = MergeSuggestion(contact_id=ann.id, other_contact_id=bob.id, reason="email:x")
    async with sessions() as session, session.begin():
        session.add(suggestion)
    async with sessions() as session, session.begin():
        with pytest.raises(MergeRefused, match="one of the suggestion"):
            await merge_suggestion(session, suggestion.id, stranger.id, user.id, NOW)
    async with sessions() as session, session.begin():
        with pytest.raises(SuggestionNotFound):
            await merge_suggestion(session, uuid.uuid4(), ann.id, user.id, NOW)
    async with sessions() as session, session.begin():
        result = await merge_suggestion(session, suggestion.id, bob.id, user.id, NOW)
    assert (result.survivor_id, result.merged_id) == (bob.id, ann.id)
    async with sessions() as session:
        stored = await session.get(MergeSuggestion, suggestion.id)
        merged = await session.get(Contact, ann.id)
    assert stored is not None and (stored.status, stored.resolved_by) == ("merged", user.id)
    assert merged is not None and merged.merged_into_id == bob.id
    async with sessions() as session, session.begin():
        with pytest.raises(SuggestionClosed, match="merged already"):
            await dismiss_suggestion(session, suggestion.id, user.id, NOW)


async def test_a_dismissed_suggestion_is_closed_once_and_recorded(
    sessions: SessionFactory, channel: Channel
) -> None:
    user = await _user(sessions)
    ann = await _person(sessions, channel, "Ann", "ann@example.com")
    bob = await _person(sessions, channel, "Bob", "bob@example.com")
    suggestion = MergeSuggestion(contact_id=ann.id, other_contact_id=bob.id, reason="email:x")
    async with sessions() as session, session.begin():
        session.add(suggestion)
    async with sessions() as session, session.begin():
        dismissed = await dismiss_suggestion(session, suggestion.id, user.id, NOW)
    assert (dismissed.suggestion.status, dismissed.suggestion.resolved_at) == ("dismissed", NOW)
    assert [e.type for e in dismissed.events] == [SUGGESTION_DISMISSED]
    async with sessions() as session, session.begin():
        with pytest.raises(SuggestionClosed, match="dismissed already"):
            await dismiss_suggestion(session, suggestion.id, user.id, NOW)
    async with sessions() as session, session.begin():
        with pytest.raises(SuggestionClosed):
            await merge_suggestion(session, suggestion.id, ann.id, user.id, NOW)
        [event] = await session.scalars(
            select(TimelineEvent).where(TimelineEvent.kind == SUGGESTION_DISMISSED)
        )
    assert event.contact_id == ann.id and event.data["by"] == str(user.id)
    # Nothing merged.
    assert await _owned(sessions, Message, bob.id) == 2


# Row locks and real concurrency: PostgreSQL (SQLite serializes writers).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_opposite_merges_of_one_pair_at_once_neither_deadlock_nor_lose_rows(
    database_url: str, engine: AsyncEngine, sessions: SessionFactory, channel: Channel
) -> None:
    user = await _user(sessions)
    ann = await _person(sessions, channel, "Ann", "ann@example.com", messages=3)
    bob = await _person(sessions, channel, "Bob", "bob@example.com", messages=4)

    # The first merge holds both row locks while the second starts and has to wait.
    first = sessions()
    await first.begin()
    await merge_contacts(first, ann.id, bob.id, user.id, NOW)

    async def second() -> None:
        async with sessions() as session, session.begin():
            await merge_contacts(session, bob.id, ann.id, user.id, NOW)

    waiting = asyncio.create_task(second())
    assert await wait_for_lock_waiters(engine, 1) == 1
    await first.commit()
    await first.close()
    with pytest.raises(MergeRefused, match="already merged"):
        await waiting

    async with sessions() as session:
        a = await session.get(Contact, ann.id)
        b = await session.get(Contact, bob.id)
        assert a is not None and b is not None
        assert (a.merged_into_id, b.merged_into_id) == (None, ann.id)
        merges = await session.scalar(
            select(func.count())
            .select_from(TimelineEvent)
            .where(TimelineEvent.kind == "contact.merged")
        )
    assert merges == 1
    assert await _owned(sessions, Message, ann.id) == 7
    assert await _owned(sessions, Identity, ann.id) == 2
    assert await _owned(sessions, ContactNote, ann.id) == 2
    assert await _owned(sessions, Task, ann.id) == 2


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_many_concurrent_merges_settle_on_one_survivor_without_deadlock(
    database_url: str, sessions: SessionFactory, channel: Channel
) -> None:
    user = await _user(sessions)
    people = [
        await _person(sessions, channel, f"P{n}", f"p{n}@example.com", messages=1) for n in range(4)
    ]
    pairs = [(a.id, b.id) for a in people for b in people if a is not b]

    async def attempt(survivor: uuid.UUID, merged: uuid.UUID) -> bool:
        try:
            async with sessions() as session, session.begin():
                await merge_contacts(session, survivor, merged, user.id, NOW)
        except MergeRefused:
            return False
        return True

    done = await asyncio.gather(*(attempt(a, b) for a, b in pairs))
    assert sum(done) == 3  # four records, one person: three merges happen
    async with sessions() as session:
        roots = set(
            await session.scalars(select(Contact.id).where(Contact.merged_into_id.is_(None)))
        )
        assert len(roots) == 1
        [root] = roots
        pointers = set(
            await session.scalars(
                select(Contact.merged_into_id).where(Contact.merged_into_id.is_not(None))
            )
        )
    assert pointers == {root}  # no chains
    assert await _owned(sessions, Message, root) == 4
    assert await _owned(sessions, Identity, root) == 4
