"""Users (agents, managers, admins), their API tokens, the idempotency keys of their
API requests, and the CRM's own records: attribute definitions, notes, follow-up tasks
and saved segments."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from timeline.ids import new_id
from timeline.models import Base, utcnow


class Role(enum.StrEnum):
    """What a user may do."""

    ADMIN = "admin"  # everything, including channels and users
    MANAGER = "manager"  # reports, plus what agents do
    AGENT = "agent"  # conversations on the channels they are members of


class User(Base):
    """A person who works in Switchboard."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default=Role.AGENT.value)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The interface language the user chose (a code of web/ui/languages.py); None: the
    # browser's Accept-Language decides.
    language: Mapped[str | None] = mapped_column(String(16))


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored (tokens are random, so no slow hash needed)."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_api_tokens_user", "user_id"),)


class IdempotencyKey(Base):
    """The first answer to a request sent with an `Idempotency-Key` header, per user.

    Written in the same transaction as what the request created, so the unique key
    decides between concurrent retries: exactly one of them creates anything, the others
    answer its result. Rows older than the replay window may be replaced and are deleted.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # sha256 hex of the method, path and canonical JSON body: the same key with another
    # request is a client's mistake (409), not a retry.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]]
    # What the request created; no foreign key, so deleting a channel's messages does
    # not have to visit this table (its rows expire within a day anyway).
    message_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)


class AttributeDefinition(Base):
    """A custom attribute contacts can carry: its type decides the column its values use
    (timeline.models.ContactAttribute) and how they are checked."""

    __tablename__ = "attribute_definitions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    # text, number, date, boolean, select, money
    type: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[str] | None] = mapped_column(JSON)  # select: the allowed values
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactNote(Base):
    """A note about a contact, written by a user."""

    __tablename__ = "contact_notes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_contact_notes_contact", "contact_id", "created_at"),)


class Task(Base):
    """A follow-up: raises exactly one "task due" event when due, however many workers run."""

    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(500))
    due_at: Mapped[datetime]
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE")
    )
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    # Set in the transaction that records the "task due" event: the exactly-once guard.
    due_notified_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_tasks_due", "due_notified_at", "due_at"),
        Index("ix_tasks_contact", "contact_id"),
        Index("ix_tasks_assignee", "assignee_id", "completed_at"),
    )


class Segment(Base):
    """A saved filter over contacts (inbox/segments.py), counted live."""

    __tablename__ = "segments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    filters: Mapped[dict[str, Any]]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# Every table of the inbox package is in the metadata once this module is imported (the
# migrations test and the personal-data scan read it); the modules of newer parts:
from inbox import account_models as account_models  # noqa: E402
from inbox import canned_models as canned_models  # noqa: E402
from inbox import metric_models as metric_models  # noqa: E402
from inbox import presence_models as presence_models  # noqa: E402
from inbox import report_models as report_models  # noqa: E402
from inbox import routing_models as routing_models  # noqa: E402
from inbox import webhook_models as webhook_models  # noqa: E402
from inbox import workflow_models as workflow_models  # noqa: E402
