"""Canned responses, and the notifications agents get when mentioned (issue 9)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from timeline.ids import new_id
from timeline.models import Base, utcnow


class CannedScope(enum.StrEnum):
    """Who may use a canned response."""

    GLOBAL = "global"  # everyone
    TEAM = "team"  # the team's members (and admins and managers)
    PERSONAL = "personal"  # its owner alone


class CannedResponse(Base):
    """A reusable reply: a short code to pick it by, a title, and text with placeholders
    (inbox/placeholders.py), checked when saved."""

    __tablename__ = "canned_responses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(20))
    # "global", "team:<id>" or "user:<id>": one unique index over (scope_key, short_code)
    # keeps a short code unique within its scope on both databases, where a unique index
    # over nullable team_id/owner_id columns would let NULLs (the global scope) repeat.
    scope_key: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    short_code: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    # The short code and title casefolded in Python: SQLite's lower() folds ASCII only,
    # so "?q=" matches "Rückgabe" the same way on both databases.
    search_key: Mapped[str] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("scope_key", "short_code"),
        Index("ix_canned_responses_team", "team_id"),
        Index("ix_canned_responses_owner", "owner_id"),
    )


class NotificationKind(enum.StrEnum):
    """Why a user is notified."""

    MENTION = "mention"  # mentioned in a private note
    ASSIGNED = "assigned"  # given a conversation by someone else


class Notification(Base):
    """Something one user should look at, until they mark it read."""

    __tablename__ = "notifications"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE")
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]

    __table_args__ = (
        # One notification per note and mentioned user, whatever retries the writer makes.
        UniqueConstraint("message_id", "user_id", "kind"),
        Index("ix_notifications_user", "user_id", "created_at", "id"),
        Index("ix_notifications_unread", "user_id", "read_at"),
    )
