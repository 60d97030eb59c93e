"""Request and response models of the CRM API: contact changes, attribute definitions,
notes and tasks (see web/api/crm.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    Field,
    field_validator,
    model_validator,
)

from inbox.attributes import KEY_PATTERN, MAX_LABEL_LENGTH, MAX_OPTIONS, AttributeType
from inbox.lifecycle import MAX_REASON_LENGTH, Stage
from inbox.models import AttributeDefinition, ContactNote, Task
from inbox.notes import MAX_NOTE_LENGTH
from inbox.tasks import MAX_TITLE_LENGTH, task_status
from web.api.schemas import Input, PageQuery, Text

MAX_TAGS = 50
MAX_TAG_LENGTH = 100  # contact_tags.tag
MAX_ATTRIBUTE_CHANGES = 100


def _tag(value: str) -> str:
    # Tags are compared and filtered on: one spelling per tag.
    tag = value.strip().lower()
    if not tag:
        raise ValueError("a tag must not be blank")
    if len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"a tag has at most {MAX_TAG_LENGTH} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in tag):
        raise ValueError("a tag must not contain control characters")
    return tag


Tag = Annotated[Text, AfterValidator(_tag)]


def _distinct(tags: list[str] | None) -> list[str] | None:
    return None if tags is None else list(dict.fromkeys(tags))


class MoneyIn(Input):
    """An exact amount: a decimal string (never a JSON number) and an ISO 4217 code."""

    amount: str = Field(max_length=40, examples=["1234.50"])
    currency: str = Field(max_length=10, examples=["EUR"])


# Fields a PATCH may not set to null (they have no "none" value).
_NOT_NULL = ("lifecycle_stage", "tags", "add_tags", "remove_tags", "attributes")


class ContactPatch(Input):
    """Changes to a contact; fields left out stay as they are, null clears a value."""

    name: Text | None = Field(default=None, max_length=200)
    lifecycle_stage: Stage | None = None
    lost_reason: Text | None = Field(
        default=None,
        max_length=MAX_REASON_LENGTH,
        description="required with lifecycle_stage lost; cleared when the contact leaves lost",
    )
    owner_id: uuid.UUID | None = Field(default=None, description="an active user, or null")
    tags: list[Tag] | None = Field(
        default=None, max_length=MAX_TAGS, description="the whole set (trimmed, lower-cased)"
    )
    add_tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    remove_tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    attributes: dict[str, Any] | None = Field(
        default=None,
        max_length=MAX_ATTRIBUTE_CHANGES,
        description="values by attribute key; null removes one; keys left out are kept",
    )
    lifetime_value: MoneyIn | None = None
    preferred_channel_id: uuid.UUID | None = None
    language: Text | None = Field(default=None, max_length=64, examples=["pt-BR"])
    timezone: Text | None = Field(default=None, max_length=64, examples=["Europe/Berlin"])
    reachable_hours: dict[str, Any] | None = Field(
        default=None,
        examples=[{"mon": [["09:00", "17:00"], ["19:00", "21:00"]]}],
        description="ranges per day (mon..sun) in the contact's timezone, 00:00 to 24:00",
    )
    currency: Text | None = Field(default=None, max_length=10, examples=["EUR"])

    @field_validator("tags", "add_tags", "remove_tags")
    @classmethod
    def _distinct_tags(cls, value: list[str] | None) -> list[str] | None:
        return _distinct(value)

    @field_validator("attributes")
    @classmethod
    def _keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not all(KEY_PATTERN.fullmatch(key) for key in value):
            raise ValueError("keys must be attribute keys: a-z first, then a-z, 0-9 and _")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ContactPatch:
        for name in _NOT_NULL:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if self.tags is not None and (self.add_tags is not None or self.remove_tags is not None):
            raise ValueError("send tags (the whole set) or add_tags/remove_tags, not both")
        if set(self.add_tags or ()) & set(self.remove_tags or ()):
            raise ValueError("a tag cannot be both added and removed")
        return self


class AttributeDefinitionIn(Input):
    """A custom attribute contacts can carry."""

    key: str = Field(
        max_length=64, pattern=f"^{KEY_PATTERN.pattern}$", description="^[a-z][a-z0-9_]{0,63}$"
    )
    label: Text = Field(min_length=1, max_length=MAX_LABEL_LENGTH)
    type: AttributeType
    options: list[Text] | None = Field(
        default=None, max_length=MAX_OPTIONS, description="the allowed values of a select"
    )


class AttributeDefinitionPatch(Input):
    """Changes to a definition. Its type cannot change while contacts hold values of it,
    and a select cannot lose an option a contact holds (409)."""

    label: Text | None = Field(default=None, min_length=1, max_length=MAX_LABEL_LENGTH)
    type: AttributeType | None = None
    options: list[Text] | None = Field(default=None, max_length=MAX_OPTIONS)


class AttributeDefinitionOut(BaseModel):
    """A custom attribute definition."""

    key: str
    label: str
    type: AttributeType
    options: list[str] | None
    created_at: datetime

    @classmethod
    def of(cls, row: AttributeDefinition) -> AttributeDefinitionOut:
        return cls(
            key=row.key,
            label=row.label,
            type=AttributeType(row.type),
            options=row.options,
            created_at=row.created_at,
        )


class NoteIn(Input):
    """A note's text."""

    text: Text = Field(min_length=1, max_length=MAX_NOTE_LENGTH)


class NoteOut(BaseModel):
    """A note about a contact."""

    id: uuid.UUID
    contact_id: uuid.UUID
    author_id: uuid.UUID | None
    text: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ContactNote) -> NoteOut:
        return cls(
            id=row.id,
            contact_id=row.contact_id,
            author_id=row.author_id,
            text=row.text,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class TaskIn(Input):
    """A follow-up task about a contact, a conversation, or both."""

    title: Text = Field(min_length=1, max_length=MAX_TITLE_LENGTH)
    due_at: AwareDatetime
    assignee_id: uuid.UUID | None = Field(
        default=None, description="an active user; left out: the user creating the task"
    )
    contact_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None


class TaskPatch(Input):
    """Changes to a task. A later `due_at` re-arms its due notice."""

    title: Text | None = Field(default=None, min_length=1, max_length=MAX_TITLE_LENGTH)
    due_at: AwareDatetime | None = None
    assignee_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None
    status: Literal["open", "done"] | None = Field(
        default=None, description="done completes the task; open reopens it"
    )

    @model_validator(mode="after")
    def _not_null(self) -> TaskPatch:
        for name in ("title", "due_at", "status"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TaskOut(BaseModel):
    """A follow-up task."""

    id: uuid.UUID
    title: str
    due_at: datetime
    status: Literal["open", "done"]
    assignee_id: uuid.UUID | None
    contact_id: uuid.UUID | None
    conversation_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime
    completed_at: datetime | None
    due_notified_at: datetime | None = Field(description="when the due notice was raised")

    @classmethod
    def of(cls, row: Task) -> TaskOut:
        return cls(
            id=row.id,
            title=row.title,
            due_at=row.due_at,
            status="open" if task_status(row) == "open" else "done",
            assignee_id=row.assignee_id,
            contact_id=row.contact_id,
            conversation_id=row.conversation_id,
            created_by=row.created_by,
            created_at=row.created_at,
            completed_at=row.completed_at,
            due_notified_at=row.due_notified_at,
        )


class TaskQuery(PageQuery):
    """Filters of the task list (all must match); ordered by due time, soonest first."""

    assignee_id: uuid.UUID | Literal["me"] | None = Field(
        default=None, description="a user id, or `me`"
    )
    contact_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None
    status: Literal["open", "done"] | None = None
    due_before: AwareDatetime | None = Field(default=None, description="due strictly before")

    @field_validator("assignee_id", mode="before")
    @classmethod
    def _user_id_or_me(cls, value: object) -> object:
        # One clear message instead of one error per member of the union.
        if isinstance(value, str) and value != "me":
            try:
                return uuid.UUID(value)
            except ValueError as err:
                raise ValueError("must be a user id (UUID) or 'me'") from err
        return value
