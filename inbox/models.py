"""Users (agents, managers, admins), their API tokens, and the idempotency keys of their
API requests."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
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
