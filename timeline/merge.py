"""Merging two records of one person: everything the merged contact holds moves to the
survivor in one transaction, and the merged id keeps resolving to the survivor.

Merges (and erases) run one at a time, with both contact rows and the ones merged into
the merged contact earlier (which are re-pointed) locked (`lock_contacts`): two merges
of one pair in opposite directions queue instead of deadlocking, and the second then
finds one of them merged and is refused. Rows move with set-based UPDATEs; where the
survivor already has a row with the same key (a tag, an attribute, a channel's
reachability) the two are combined as documented at each step.

Two open conversations of one thread on one channel (two chats with the same bot, say)
would break the partial unique index uq_conversations_open_thread. The merged contact's
conversation is kept as a conversation of its own, with its thread key cleared: nothing
is renumbered, the message positions clients paged past and the response-time metrics
of both conversations stay true, and new messages of that thread go to the survivor's
conversation (the one the index now names). Folding the messages into one conversation
would rewrite `seq`s and metrics that reports and clients already rely on.

Other packages (the inbox's notes and tasks) move their rows through `also`, in the
same transaction; this package does not know their tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Delete,
    Update,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from timeline.events import Event
from timeline.models import (
    Contact,
    ContactAttribute,
    ContactReachability,
    ContactTag,
    Conversation,
    ConversationStatus,
    FormSubmission,
    Identity,
    MergeSuggestion,
    Message,
    TimelineEvent,
)

MERGED = "contact.merged"

# Lifecycle stages by how far along the pipeline they are (inbox/lifecycle.py names them);
# `lost` is kept only when both were lost. An unknown stored value counts as `new`.
_STAGE_RANK = {"new": 0, "lead": 1, "qualified": 2, "customer": 3}
_LOST = "lost"

# Fields of the survivor filled from the merged contact when the survivor has none.
_FILLED = (
    "name",
    "owner_id",
    "language",
    "timezone",
    "reachable_hours",
    "preferred_channel_id",
    "currency",
)

# Key of the advisory lock merges and erases take (see `lock_contacts`): an arbitrary
# constant of our own, "sbmerge" in ASCII.
_MERGE_LOCK = 0x73626D65726765

MoveRows = Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[dict[str, int]]]
"""Moves another package's rows from the merged contact (2nd) to the survivor (1st);
answers how many of each kind moved."""


class MergeRefused(Exception):
    """A merge that cannot be made; the message says why."""


class ContactNotFound(MergeRefused):
    """One of the two contacts does not exist."""


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What a merge did; `events` are published once the transaction has committed."""

    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    moved: dict[str, int]
    events: tuple[Event, ...] = field(default=())


async def resolve_contact_id(session: AsyncSession, contact_id: uuid.UUID) -> uuid.UUID | None:
    """The contact an id names now: itself, or the survivor it was merged into; None
    when no contact has that id. Merges re-point older merges, so one step suffices;
    the loop only guards against a cycle written by hand."""
    seen: set[uuid.UUID] = set()
    current = contact_id
    while current not in seen:
        seen.add(current)
        row = (
            await session.execute(
                select(Contact.id, Contact.merged_into_id).where(Contact.id == current)
            )
        ).first()
        if row is None:
            return None
        if row.merged_into_id is None:
            return current
        current = row.merged_into_id
    return None


async def lock_contacts(
    session: AsyncSession, *ids: uuid.UUID, aliases_of: uuid.UUID | None = None
) -> dict[uuid.UUID, Contact]:
    """The contacts with these ids, and those merged into `aliases_of`, locked and read
    fresh, for a merge or an erase.

    On PostgreSQL, merges and erases first take one transaction-level advisory lock: they
    are rare, deliberate acts of a person, and running them one at a time means no two of
    them can deadlock however their contacts overlap (a merge also re-points rows outside
    its pair: the contacts merged into the merged one). SQLite serializes writers anyway.
    The rows are then locked in id order, FOR NO KEY UPDATE: other transactions may still
    insert rows that reference these contacts (foreign key checks take KEY SHARE), so
    ingestion is not held up by a merge.
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_MERGE_LOCK)))
    condition: ColumnElement[bool] = Contact.id.in_(ids)
    if aliases_of is not None:
        condition = or_(condition, Contact.merged_into_id == aliases_of)
    statement = (
        select(Contact)
        .where(condition)
        .order_by(Contact.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return {contact.id: contact for contact in await session.scalars(statement)}


async def merge_contacts(
    session: AsyncSession,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    now: datetime,
    *,
    also: Sequence[MoveRows] = (),
) -> MergeResult:
    """Merge `merged_id` into `survivor_id` in the caller's transaction (nothing is
    committed or published here). Raises MergeRefused when the merge cannot be made."""
    if survivor_id == merged_id:
        raise MergeRefused("a contact cannot be merged into itself")
    contacts = await lock_contacts(session, survivor_id, merged_id, aliases_of=merged_id)
    survivor, merged = contacts.get(survivor_id), contacts.get(merged_id)
    if survivor is None or merged is None:
        raise ContactNotFound("no such contact")
    for contact in (survivor, merged):
        if contact.merged_into_id is not None:
            raise MergeRefused(
                f"contact {contact.id} was already merged into {contact.merged_into_id}"
            )
        if contact.erased_at is not None:
            raise MergeRefused(f"contact {contact.id} was erased")

    moved: dict[str, int] = {}
    moved["identities"] = await _move(session, Identity, survivor_id, merged_id)
    moved["conversations_split"] = await _split_open_threads(session, survivor_id, merged_id)
    moved["conversations"] = await _move(session, Conversation, survivor_id, merged_id)
    moved["messages"] = await _move(session, Message, survivor_id, merged_id)
    moved["timeline_events"] = await _move(session, TimelineEvent, survivor_id, merged_id)
    moved["reachability"] = await _move_reachability(session, survivor_id, merged_id)
    moved["tags"] = await _move_tags(session, survivor_id, merged_id)
    moved["attributes"] = await _move_attributes(session, survivor_id, merged_id)
    moved["form_submissions"] = await _move(session, FormSubmission, survivor_id, merged_id)
    for move in also:
        moved.update(await move(session, survivor_id, merged_id))
    moved["suggestions"] = await _settle_suggestions(session, survivor_id, merged_id, actor_id, now)
    # No chains: what was merged into the merged contact now points at the survivor.
    moved["earlier_merges"] = await _rowcount(
        session,
        update(Contact)
        .where(Contact.merged_into_id == merged_id)
        .values(merged_into_id=survivor_id, updated_at=now),
    )

    _combine_fields(survivor, merged)
    survivor.updated_at = now
    merged.merged_into_id = survivor_id
    merged.updated_at = now
    session.add(
        TimelineEvent(
            contact_id=survivor_id,
            kind=MERGED,
            data={
                "merged_id": str(merged_id),
                "by": None if actor_id is None else str(actor_id),
                "moved": moved,
            },
            occurred_at=now,
        )
    )
    await session.flush()
    events = (
        Event("contact.updated", {"contact_id": str(survivor_id)}),
        Event(MERGED, {"survivor_id": str(survivor_id), "merged_id": str(merged_id)}),
    )
    return MergeResult(survivor_id, merged_id, moved, events)


async def _rowcount(session: AsyncSession, statement: Update | Delete) -> int:
    # synchronize_session=False: the rows are not loaded here, and the ORM must not try
    # to evaluate the WHERE clause against its identity map.
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], result).rowcount or 0)


async def _move(
    session: AsyncSession, model: type[Any], survivor_id: uuid.UUID, merged_id: uuid.UUID
) -> int:
    column = model.contact_id
    return await _rowcount(
        session, update(model).where(column == merged_id).values(contact_id=survivor_id)
    )


async def _split_open_threads(
    session: AsyncSession, survivor_id: uuid.UUID, merged_id: uuid.UUID
) -> int:
    """Clear the thread key of each open conversation of the merged contact whose thread
    the survivor also has open on the same channel (see the module docstring)."""
    survivors_open = (
        select(Conversation.channel_id, Conversation.thread_key)
        .where(
            Conversation.contact_id == survivor_id,
            Conversation.status != ConversationStatus.RESOLVED.value,
            Conversation.thread_key.is_not(None),
        )
        .subquery()
    )
    clashing = select(Conversation.id).join(
        survivors_open,
        and_(
            survivors_open.c.channel_id == Conversation.channel_id,
            survivors_open.c.thread_key == Conversation.thread_key,
        ),
    )
    clashing = clashing.where(
        Conversation.contact_id == merged_id,
        Conversation.status != ConversationStatus.RESOLVED.value,
    )
    ids = list(await session.scalars(clashing))
    if not ids:
        return 0
    return await _rowcount(
        session, update(Conversation).where(Conversation.id.in_(ids)).values(thread_key=None)
    )


async def _move_reachability(
    session: AsyncSession, survivor_id: uuid.UUID, merged_id: uuid.UUID
) -> int:
    """Move opt-outs and blocks; where both have a row for a channel, the stricter wins:
    a person who said STOP from either record must not be written to."""
    rows = list(
        await session.scalars(
            select(ContactReachability).where(
                ContactReachability.contact_id.in_((survivor_id, merged_id))
            )
        )
    )
    mine = {row.channel_id: row for row in rows if row.contact_id == survivor_id}
    moved = 0
    for row in rows:
        if row.contact_id != merged_id:
            continue
        kept = mine.get(row.channel_id)
        if kept is None:
            await _rowcount(
                session,
                update(ContactReachability)
                .where(
                    ContactReachability.channel_id == row.channel_id,
                    ContactReachability.contact_id == merged_id,
                )
                .values(contact_id=survivor_id),
            )
        else:
            kept.opted_out = kept.opted_out or row.opted_out
            kept.blocked = kept.blocked or row.blocked
            kept.detail = kept.detail or row.detail
            kept.updated_at = max(kept.updated_at, row.updated_at)
            await session.delete(row)
        moved += 1
    await session.flush()
    return moved


async def _move_tags(session: AsyncSession, survivor_id: uuid.UUID, merged_id: uuid.UUID) -> int:
    """The union of both contacts' tags."""
    held = set(
        await session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == survivor_id))
    )
    theirs = set(
        await session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == merged_id))
    )
    new = theirs - held
    if new:
        await _rowcount(
            session,
            update(ContactTag)
            .where(ContactTag.contact_id == merged_id, ContactTag.tag.in_(new))
            .values(contact_id=survivor_id),
        )
    await _rowcount(session, delete(ContactTag).where(ContactTag.contact_id == merged_id))
    return len(new)


async def _move_attributes(
    session: AsyncSession, survivor_id: uuid.UUID, merged_id: uuid.UUID
) -> int:
    """Attributes the survivor lacks move; where both have one, the survivor's value wins."""
    held = set(
        await session.scalars(
            select(ContactAttribute.key).where(ContactAttribute.contact_id == survivor_id)
        )
    )
    moved = await _rowcount(
        session,
        update(ContactAttribute)
        .where(ContactAttribute.contact_id == merged_id, ContactAttribute.key.not_in(held))
        .values(contact_id=survivor_id),
    )
    await _rowcount(
        session, delete(ContactAttribute).where(ContactAttribute.contact_id == merged_id)
    )
    return moved


async def _settle_suggestions(
    session: AsyncSession,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    now: datetime,
) -> int:
    """Open suggestions between the two become "merged"; the merged contact's open ones
    with third contacts are re-pointed to the survivor, or dropped when the survivor
    already has one with that contact. Closed ones stay as history."""
    pair = (survivor_id, merged_id)
    await _rowcount(
        session,
        update(MergeSuggestion)
        .where(
            MergeSuggestion.contact_id.in_(pair),
            MergeSuggestion.other_contact_id.in_(pair),
            MergeSuggestion.status == "open",
        )
        .values(status="merged", resolved_at=now, resolved_by=actor_id),
    )
    theirs = list(
        await session.scalars(
            select(MergeSuggestion)
            .where(
                or_(
                    MergeSuggestion.contact_id == merged_id,
                    MergeSuggestion.other_contact_id == merged_id,
                ),
                MergeSuggestion.status == "open",
            )
            .order_by(MergeSuggestion.created_at, MergeSuggestion.id)
        )
    )
    if not theirs:
        return 0
    existing = await session.execute(
        select(MergeSuggestion.contact_id, MergeSuggestion.other_contact_id).where(
            or_(
                MergeSuggestion.contact_id == survivor_id,
                MergeSuggestion.other_contact_id == survivor_id,
            )
        )
    )
    taken = {frozenset(row) for row in existing}
    moved = 0
    for suggestion in theirs:
        third = (
            suggestion.other_contact_id
            if suggestion.contact_id == merged_id
            else suggestion.contact_id
        )
        key = frozenset((survivor_id, third))
        if key in taken:
            await session.delete(suggestion)
            continue
        taken.add(key)
        # Ingestion writes each pair in str order (timeline/ingest_extras.py): keep it so
        # its ON CONFLICT finds this row.
        first, second = sorted((survivor_id, third), key=str)
        suggestion.contact_id, suggestion.other_contact_id = first, second
        moved += 1
    await session.flush()
    return moved


def _combine_fields(survivor: Contact, merged: Contact) -> None:
    """Fill the survivor's empty fields from the merged contact; combine the stage."""
    for name in _FILLED:
        if getattr(survivor, name) is None and getattr(merged, name) is not None:
            setattr(survivor, name, getattr(merged, name))
    if survivor.lifetime_value_minor is None and merged.lifetime_value_minor is not None:
        # Amount and currency travel together: one without the other means nothing.
        survivor.lifetime_value_minor = merged.lifetime_value_minor
        survivor.lifetime_value_currency = merged.lifetime_value_currency
    stage = merged_stage(survivor.lifecycle_stage, merged.lifecycle_stage)
    if stage == _LOST:
        survivor.lost_reason = survivor.lost_reason or merged.lost_reason
    else:
        survivor.lost_reason = None
    survivor.lifecycle_stage = stage
    survivor.created_at = min(survivor.created_at, merged.created_at)
    survivor.last_activity_at = max(survivor.last_activity_at, merged.last_activity_at)


def merged_stage(a: str, b: str) -> str:
    """The stage of two merged records: the further one along; lost only if both were."""
    if a == _LOST and b == _LOST:
        return _LOST
    candidates = [stage for stage in (a, b) if stage != _LOST]
    return max(candidates, key=lambda stage: _STAGE_RANK.get(stage, 0))
