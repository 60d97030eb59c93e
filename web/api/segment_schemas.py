"""Request and response models of the segment API (saved contact filters, live counts,
CSV export); the filter itself is `inbox.segments.SegmentFilters`."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from inbox.models import Segment
from inbox.segments import SegmentFilters
from web.api.schemas import Input, Text


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value


class SegmentCreate(Input):
    """A segment to save: a name and a filter over contacts."""

    name: Text = Field(min_length=1, max_length=200)
    filters: SegmentFilters = Field(default_factory=SegmentFilters)

    _name = field_validator("name")(_not_blank)


class SegmentUpdate(Input):
    """Changes to a segment; what is left out stays as it is (`filters` is replaced whole)."""

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    filters: SegmentFilters | None = None

    _name = field_validator("name")(_not_blank)


class FiltersIn(Input):
    """A filter to count or export without saving it."""

    filters: SegmentFilters = Field(default_factory=SegmentFilters)


class CountOut(BaseModel):
    """How many contacts a filter matches right now."""

    count: int


class SegmentOut(BaseModel):
    """A saved segment with its live count."""

    id: uuid.UUID
    name: str
    filters: SegmentFilters
    count: int | None = Field(
        description="contacts matching now (those this user may see); null when the filter "
        "no longer fits the attribute definitions (see `problems`)"
    )
    problems: dict[str, str] = Field(
        default_factory=dict,
        description="filter field path -> why it cannot be evaluated (an attribute whose "
        "definition was deleted or changed type); empty when the count is known",
    )
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None

    @classmethod
    def of(cls, row: Segment, count: int | None, problems: dict[str, str]) -> SegmentOut:
        return cls(
            id=row.id,
            name=row.name,
            filters=SegmentFilters.model_validate(row.filters),
            count=count,
            problems=problems,
            created_at=row.created_at,
            updated_at=row.updated_at,
            created_by=row.created_by,
        )
