"""Conversation workflow records: priorities, labels, participants and read marks (issue 9).

Labels are rows, not a JSON column: "conversations labelled X" is an index lookup on
both databases. A read mark is per user and conversation: the `seq` of the last message
the user has read (message numbers are contiguous per conversation, so the unread count
is `last_seq - read_seq`, with no count over messages).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from timeline.models import Base, utcnow


class Priority(enum.StrEnum):
    """How urgent a conversation is, lowest first (`Conversation.priority`)."""

    NONE = "none"  # not set (the default)
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class ConversationLabel(Base):
    """A label on a conversation (normalized: lower-case, trimmed; inbox/labels.py)."""

    __tablename__ = "conversation_labels"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(50), primary_key=True)

    __table_args__ = (Index("ix_conversation_labels_label", "label", "conversation_id"),)


class ConversationParticipant(Base):
    """A user following a conversation: added by hand, or by being assigned to it."""

    __tablename__ = "conversation_participants"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    added_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_conversation_participants_user", "user_id", "conversation_id"),)


class ConversationRead(Base):
    """How far a user has read a conversation."""

    __tablename__ = "conversation_reads"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    read_seq: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_conversation_reads_user", "user_id", "conversation_id"),)
