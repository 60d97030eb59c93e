"""Request and response models of notifications (web/api/notifications.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from inbox.canned_models import Notification, NotificationKind
from web.api.schemas import Input, PageQuery


class NotificationQuery(PageQuery):
    """The requesting user's notifications, newest first."""

    unread: bool | None = Field(default=None, description="true: unread only; false: read only")


class NotificationOut(BaseModel):
    """Something for the requesting user to look at."""

    id: uuid.UUID
    kind: NotificationKind = Field(
        description="mention: mentioned in a private note (message_id is the note); "
        "assigned: given a conversation by someone else"
    )
    conversation_id: uuid.UUID | None
    message_id: uuid.UUID | None
    actor_id: uuid.UUID | None = Field(description="who caused it")
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, row: Notification) -> NotificationOut:
        return cls(
            id=row.id,
            kind=NotificationKind(row.kind),
            conversation_id=row.conversation_id,
            message_id=row.message_id,
            actor_id=row.actor_id,
            created_at=row.created_at,
            read_at=row.read_at,
        )


class NotificationPage(BaseModel):
    """One page of notifications, and how many of all of them are unread."""

    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int


class UnreadCountOut(BaseModel):
    """How many of the requesting user's notifications are unread (for a badge)."""

    unread_count: int


class ReadAllQuery(Input):
    """Which notifications "read all" marks."""

    until: AwareDatetime | None = Field(
        default=None,
        description="only those created at or before this time (the newest one the client "
        "showed), so one that arrived meanwhile stays unread; default: all",
    )


class ReadAllOut(BaseModel):
    """What "read all" did."""

    marked: int
    unread_count: int
