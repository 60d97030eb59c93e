"""Response-time metrics, business hours and SLA policies (issue 9).

`conversation_metrics` holds one row per measured span (first response, reply,
resolution) as it completes, in wall-clock and business seconds; the reports API reads
it by `ended_at`. `sla_clocks` holds the running SLA targets of conversations, so the
worker finds the overdue ones with one indexed query.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from timeline.ids import new_id
from timeline.models import Base, utcnow


class MetricKind(enum.StrEnum):
    """What a `conversation_metrics` row measures."""

    FIRST_RESPONSE = "first_response"  # a cycle's first customer message → first reply by a person
    REPLY = "reply"  # a later customer turn's first message → the next reply by a person
    RESOLUTION = "resolution"  # a cycle's opening → its resolution


class SlaTarget(enum.StrEnum):
    """What an SLA policy sets a time for."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class BusinessHours(Base):
    """A calendar: timezone, ranges per weekday, holidays (inbox/business_hours.py)."""

    __tablename__ = "business_hours"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    # {"mon": [["09:00", "17:00"]], ...}
    week: Mapped[dict[str, Any]]
    # [{"date": "2024-12-25", "name": "Christmas"}]
    holidays: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelBusinessHours(Base):
    """The calendar a channel's conversations are measured by (unless their team has one)."""

    __tablename__ = "channel_business_hours"

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    business_hours_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("business_hours.id", ondelete="CASCADE")
    )

    __table_args__ = (Index("ix_channel_business_hours_calendar", "business_hours_id"),)


class TeamBusinessHours(Base):
    """The calendar of a team's conversations; wins over the channel's. No foreign key to
    teams: they are another part's table, and a team's deletion leaves a harmless row."""

    __tablename__ = "team_business_hours"

    team_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    business_hours_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("business_hours.id", ondelete="CASCADE")
    )

    __table_args__ = (Index("ix_team_business_hours_calendar", "business_hours_id"),)


class ConversationMetric(Base):
    """One measured span of a conversation. Recorded idempotently: the unique key makes a
    second (or concurrent) recording of the same span a no-op."""

    __tablename__ = "conversation_metrics"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    team_id: Mapped[uuid.UUID | None]  # the conversation's team when recorded
    agent_id: Mapped[uuid.UUID | None]  # who replied, or who resolved
    cycle: Mapped[int] = mapped_column(Integer)  # 1 for the opening, +1 per reopen
    kind: Mapped[str] = mapped_column(String(20))  # a MetricKind
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    wall_seconds: Mapped[float]
    business_seconds: Mapped[float | None]  # None: no calendar applied
    business_hours_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("business_hours.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(
            "uq_conversation_metrics_span",
            "conversation_id",
            "cycle",
            "kind",
            "started_at",
            unique=True,
        ),
        # Reports read a date range of one kind, then group. On PostgreSQL the columns
        # they group and rank by ride along, for index-only scans (migration 0019).
        Index(
            "ix_conversation_metrics_kind_ended",
            "kind",
            "ended_at",
            postgresql_include=[
                "agent_id",
                "team_id",
                "channel_id",
                "conversation_id",
                "wall_seconds",
                "business_seconds",
            ],
        ),
    )


class SlaPolicy(Base):
    """Time targets for conversations; the first enabled policy (by position) whose
    conditions all hold applies. An empty condition list matches everything."""

    __tablename__ = "sla_policies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    first_response_seconds: Mapped[int | None] = mapped_column(Integer)
    next_response_seconds: Mapped[int | None] = mapped_column(Integer)
    resolution_seconds: Mapped[int | None] = mapped_column(Integer)
    channel_ids: Mapped[list[str]] = mapped_column(JSON)
    team_ids: Mapped[list[str]] = mapped_column(JSON)
    priorities: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SlaClock(Base):
    """A running (or finished) SLA target of a conversation's cycle. `breached_at` is set
    once, in the transaction that records the "sla.breached" event: the exactly-once
    guard. For next_response the row follows the cycle's latest customer turn."""

    __tablename__ = "sla_clocks"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    cycle: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(20), primary_key=True)  # an SlaTarget
    policy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sla_policies.id", ondelete="CASCADE"))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    met_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_sla_clocks_due", "breached_at", "due_at"),)


class MetricCursor(Base):
    """How far the metrics recorder has read the timeline (by event id time)."""

    __tablename__ = "metric_cursors"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    position: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
