"""Outgoing webhook subscriptions and their delivery log (issue 9)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from timeline.ids import new_id
from timeline.models import Base, utcnow


class DeliveryStatus(enum.StrEnum):
    """Where one webhook delivery is (`WebhookDelivery.status`)."""

    QUEUED = "queued"  # waiting for `next_attempt_at` (or being posted, under a claim)
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # given up: out of attempts or time, 410 Gone, or refused address


class WebhookSubscription(Base):
    """An integrator's endpoint and the timeline event kinds it wants."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(String(2000))
    # Kinds from inbox/webhook_kinds.py, or ["*"] for every kind.
    event_types: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why it was switched off by the system (the receiver answered 410 Gone); None when
    # an admin did it or it is active.
    inactive_reason: Mapped[str | None] = mapped_column(String(500))
    # The signing secret, encrypted with the secret key (timeline/crypto.py): signing
    # needs the secret itself, so it cannot be hashed like a token.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # After a rotation with a grace period, the old secret also signs until then.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # Events recorded from this time on are delivered: a new subscription gets no history.
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One timeline event for one subscription: the durable queue and the delivery log."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    # No foreign key (inserting a delivery need not lock the event); the contact's
    # cascade removes deliveries together with the contact's events.
    event_id: Mapped[uuid.UUID]
    event_kind: Mapped[str] = mapped_column(String(50))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    # The body as posted (a snapshot at fan-out); emptied when the contact is erased.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When it is next due; also a claim: a worker pushes it forward before it posts.
    next_attempt_at: Mapped[datetime]
    # The current claim: an outcome is recorded only while the row is still in it, so a
    # slow post finishing after a redelivery (or after its claim lapsed) changes nothing.
    claim_id: Mapped[uuid.UUID | None]
    # Start of the retry period: creation, or the last manual redelivery.
    retry_from: Mapped[datetime]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_webhook_deliveries_subscription_event", "subscription_id", "event_id", unique=True
        ),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_log", "subscription_id", "created_at", "id"),
        Index("ix_webhook_deliveries_contact", "contact_id"),
    )


class WebhookCursor(Base):
    """How far fan-out has read the timeline: the newest event id seen (one row)."""

    __tablename__ = "webhook_cursor"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    last_event_id: Mapped[uuid.UUID]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
