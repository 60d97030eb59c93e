"""Routing records: routing rules, their firings, auto-assignment settings (issue 9).

A rule's conditions and actions are JSON checked when saved (inbox/routing_rules.py);
rules reference channels, teams and users by id without foreign keys, so deleting a team
leaves the rule readable and its action is skipped (and the skip recorded) when it fires.

`MessageRouting` is the exactly-once claim: one row per inbound message routed, keyed by
the message id and inserted in the transaction that applies the rules' actions, so two
workers (or a redelivered bus event) never route one message twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from timeline.ids import new_id
from timeline.models import Base, utcnow


class RoutingRule(Base):
    """An admin's rule: when every condition (and one of the `any` group) holds for an
    inbound message, its actions run; rules run in `position` order."""

    __tablename__ = "routing_rules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # {"all": [condition, ...], "any": [condition, ...]} (inbox/routing_rules.py)
    conditions: Mapped[dict[str, Any]]
    # [action, ...] in the order they run
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # When the rule fires, later rules are not evaluated for that message.
    stop_processing: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_routing_rules_position", "position", "created_at"),)


class MessageRouting(Base):
    """An inbound message the routing engine has handled (the exactly-once claim)."""

    __tablename__ = "message_routings"

    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    rules_fired: Mapped[int] = mapped_column(Integer, default=0)
    # Why routing gave up on the message (an unexpected error), so it is not retried forever.
    error: Mapped[str | None] = mapped_column(Text)
    routed_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoutingFiring(Base):
    """One rule firing on one message, with what each of its actions did."""

    __tablename__ = "routing_firings"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("routing_rules.id", ondelete="SET NULL")
    )
    rule_name: Mapped[str] = mapped_column(String(200))  # as it was when it fired
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    # [{"type": "add_label", "outcome": "applied" | "unchanged" | "skipped", "reason": ...}]
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_routing_firings_rule", "rule_id", "fired_at"),
        Index("ix_routing_firings_message", "message_id"),
        Index("ix_routing_firings_conversation", "conversation_id", "fired_at"),
    )


class AssignmentPolicy(Base):
    """Auto-assignment of one channel's or one team's unassigned open conversations:
    round robin over the pool's online agents who are under their capacity."""

    __tablename__ = "assignment_policies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Exactly one of the two is set (checked by the API); one policy per channel or team.
    channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), unique=True
    )
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), unique=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Open conversations an agent of this pool may hold, unless the agent has their own
    # limit (`AgentCapacity`); None: unlimited.
    default_capacity: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AssignmentTurn(Base):
    """When a policy last auto-assigned to an agent: the round robin's memory, in the
    database so the rotation stays fair across restarts and workers."""

    __tablename__ = "assignment_turns"

    policy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assignment_policies.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    last_assigned_at: Mapped[datetime]


class AgentCapacity(Base):
    """An agent's own limit of open conversations assigned to them (wins over the
    policy's default); no row: the policy's default applies."""

    __tablename__ = "agent_capacities"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    max_open: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
