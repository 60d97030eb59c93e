"""Request and response models of conversation changes: PATCH, bulk changes, results."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from inbox.conversation_changes import UNSET, Changes
from inbox.labels import MAX_LABELS
from inbox.workflow_models import Priority
from timeline.models import ConversationStatus
from web.api.schemas import ConversationOut, Input, Label
from web.errors import ErrorDetail

MAX_BULK = 100
# Fields whose null would mean nothing: refused rather than taken as "leave alone".
_NOT_NULL = ("status", "priority", "labels", "add_labels", "remove_labels", "seen_seq")


class _ChangeFields(Input):
    """What both a PATCH and a bulk change may set; a field left out is left alone."""

    status: ConversationStatus | None = Field(
        default=None, description="`snoozed` needs `snoozed_until`; any other clears it"
    )
    snoozed_until: AwareDatetime | None = Field(
        default=None, description="when a snoozed conversation opens again (in the future)"
    )
    assignee_id: uuid.UUID | None = Field(
        default=None, description="an active user; null unassigns (left out: unchanged)"
    )
    team_id: uuid.UUID | None = Field(default=None, description="a team; null: no team")
    priority: Priority | None = None
    add_labels: list[Label] = Field(default_factory=list, max_length=MAX_LABELS)
    remove_labels: list[Label] = Field(default_factory=list, max_length=MAX_LABELS)

    @field_validator(*_NOT_NULL, mode="before", check_fields=False)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null (leave the field out to keep it unchanged)")
        return value

    def changes(self, **more: Any) -> Changes:
        """The change to make: assignee and team only when given (null unassigns)."""
        given = self.model_fields_set
        return Changes(
            status=self.status,
            snoozed_until=self.snoozed_until,
            assignee_id=self.assignee_id if "assignee_id" in given else UNSET,
            team_id=self.team_id if "team_id" in given else UNSET,
            priority=self.priority,
            add_labels=frozenset(self.add_labels),
            remove_labels=frozenset(self.remove_labels),
            **more,
        )


class ConversationPatch(_ChangeFields):
    """Changes to one conversation; every change is recorded on the timeline with who
    made it. `labels` replaces the labels; `add_labels`/`remove_labels` edit them."""

    labels: list[Label] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description="the labels (lower-cased, trimmed, 1-50 characters), replacing them all",
    )
    seen_seq: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="the conversation's `last_seq` as the agent saw it: if a message arrived "
        "since, nothing changes and the answer is 409",
    )

    def to_changes(self) -> Changes:
        return self.changes(
            labels=None if self.labels is None else frozenset(self.labels),
            seen_seq=self.seen_seq,
        )


class BulkChanges(_ChangeFields):
    """Changes applied to each conversation of a bulk request (labels are added/removed)."""


class BulkChange(Input):
    """The same change to up to 100 conversations, each changed on its own: one that
    cannot be changed does not hold back the others."""

    ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BULK)
    changes: BulkChanges

    @field_validator("ids")
    @classmethod
    def _distinct(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(value)) != len(value):
            raise ValueError("each id at most once")
        return value


class BulkItemOut(BaseModel):
    """What became of one conversation of a bulk change."""

    id: uuid.UUID
    status: int = Field(description="200 changed (or already so), 404 unknown, 409, 422")
    conversation: ConversationOut | None = Field(description="after the change, on 200")
    error: ErrorDetail | None = Field(description="why not, otherwise")


class BulkOut(BaseModel):
    """The results of a bulk change, in the order of `ids`."""

    results: list[BulkItemOut]
