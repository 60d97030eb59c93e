"""Request and response models of contact merge, merge suggestions and personal data
(export and erase)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from timeline.models import MergeSuggestion
from web.api.schemas import ContactOut, Input, PageQuery, Text


class ContactMergeIn(Input):
    """The contact to merge into the one in the path (which survives)."""

    other_id: uuid.UUID = Field(description="the contact merged away; its id keeps resolving")


class SuggestionMergeIn(Input):
    """Which of the suggestion's two contacts survives."""

    survivor_id: uuid.UUID = Field(description="one of the suggestion's two contacts")


class MergeOut(BaseModel):
    """A merge done: the survivor as it is now, and how many rows of each kind moved."""

    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    moved: dict[str, int]
    contact: ContactOut


class SuggestedContact(BaseModel):
    """One side of a merge suggestion."""

    id: uuid.UUID
    name: str | None


class MergeSuggestionOut(BaseModel):
    """Two contacts that look like one person, and why."""

    id: uuid.UUID
    contact: SuggestedContact
    other_contact: SuggestedContact
    reason: str = Field(description="the identity both offered, e.g. phone:+14155550100")
    status: str = Field(description="open, merged or dismissed")
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: uuid.UUID | None

    @classmethod
    def of(cls, row: MergeSuggestion, names: dict[uuid.UUID, str | None]) -> MergeSuggestionOut:
        return cls(
            id=row.id,
            contact=SuggestedContact(id=row.contact_id, name=names.get(row.contact_id)),
            other_contact=SuggestedContact(
                id=row.other_contact_id, name=names.get(row.other_contact_id)
            ),
            reason=row.reason,
            status=row.status,
            created_at=row.created_at,
            resolved_at=row.resolved_at,
            resolved_by=row.resolved_by,
        )


class SuggestionQuery(PageQuery):
    """Paging of the open merge suggestions, oldest first (a work queue)."""


class EraseIn(Input):
    """Erasing cannot be undone: `confirm` must repeat the contact's id."""

    confirm: Text = Field(max_length=100, description="the id of the contact being erased")


class ErasureOut(BaseModel):
    """An erase done (or repeated): what was removed."""

    contact_id: uuid.UUID
    erased_at: datetime
    already_erased: bool = Field(description="true when the contact had been erased before")
    counts: dict[str, int]
    files_removed: int
