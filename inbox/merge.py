"""Contact merge as the product does it: the timeline's merge (timeline/merge.py) plus the
inbox's own rows about the contact (notes, follow-up tasks), in one transaction; and the
people's answers to merge suggestions (merge one, or dismiss it).

Every function works in the caller's transaction and returns the bus events to publish
once it has committed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import ContactNote, Task
from timeline import merge as timeline_merge
from timeline.events import Event
from timeline.merge import MergeRefused, MergeResult
from timeline.models import MergeSuggestion, TimelineEvent

SUGGESTION_DISMISSED = "contact.merge_dismissed"


class SuggestionNotFound(Exception):
    """No merge suggestion has that id."""


class SuggestionClosed(MergeRefused):
    """The suggestion was merged or dismissed already."""


@dataclass(frozen=True, slots=True)
class Dismissed:
    """A dismissed suggestion and the events to publish after commit."""

    suggestion: MergeSuggestion
    events: tuple[Event, ...]


async def merge_contacts(
    session: AsyncSession,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    now: datetime,
) -> MergeResult:
    """Merge `merged_id` into `survivor_id`, notes and tasks included (MergeRefused when
    it cannot be made)."""
    return await timeline_merge.merge_contacts(
        session, survivor_id, merged_id, actor_id, now, also=(_move_inbox_rows,)
    )


async def _move_inbox_rows(
    session: AsyncSession, survivor_id: uuid.UUID, merged_id: uuid.UUID
) -> dict[str, int]:
    moved = {}
    for name, model in (("notes", ContactNote), ("tasks", Task)):
        result = await session.execute(
            update(model)
            .where(model.contact_id == merged_id)
            .values(contact_id=survivor_id)
            .execution_options(synchronize_session=False)
        )
        moved[name] = int(cast(CursorResult[Any], result).rowcount or 0)
    return moved


async def _open_suggestion(session: AsyncSession, suggestion_id: uuid.UUID) -> MergeSuggestion:
    suggestion = await session.get(
        MergeSuggestion, suggestion_id, with_for_update=True, populate_existing=True
    )
    if suggestion is None:
        raise SuggestionNotFound(str(suggestion_id))
    if suggestion.status != "open":
        raise SuggestionClosed(f"this suggestion was {suggestion.status} already")
    return suggestion


async def merge_suggestion(
    session: AsyncSession,
    suggestion_id: uuid.UUID,
    survivor_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    now: datetime,
) -> MergeResult:
    """Merge the two contacts of an open suggestion, keeping `survivor_id` (one of them)."""
    suggestion = await _open_suggestion(session, suggestion_id)
    pair = (suggestion.contact_id, suggestion.other_contact_id)
    if survivor_id not in pair:
        raise MergeRefused("survivor_id must be one of the suggestion's two contacts")
    merged_id = pair[1] if survivor_id == pair[0] else pair[0]
    return await merge_contacts(session, survivor_id, merged_id, actor_id, now)


async def dismiss_suggestion(
    session: AsyncSession, suggestion_id: uuid.UUID, actor_id: uuid.UUID | None, now: datetime
) -> Dismissed:
    """Record that the two contacts of an open suggestion are different people."""
    suggestion = await _open_suggestion(session, suggestion_id)
    suggestion.status = "dismissed"
    suggestion.resolved_at = now
    suggestion.resolved_by = actor_id
    data = {
        "suggestion_id": str(suggestion.id),
        "other_contact_id": str(suggestion.other_contact_id),
        "by": None if actor_id is None else str(actor_id),
    }
    session.add(
        TimelineEvent(
            contact_id=suggestion.contact_id,
            kind=SUGGESTION_DISMISSED,
            data=data,
            occurred_at=now,
        )
    )
    await session.flush()
    events = (
        Event(
            SUGGESTION_DISMISSED,
            {
                "suggestion_id": str(suggestion.id),
                "contact_id": str(suggestion.contact_id),
                "other_contact_id": str(suggestion.other_contact_id),
            },
        ),
    )
    return Dismissed(suggestion, events)
