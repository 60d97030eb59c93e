"""routing rules, auto-assignment and agent capacity

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 00:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("stop_processing", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("routing_rules", "created_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    op.create_index("ix_routing_rules_position", "routing_rules", ["position", "created_at"])
    op.create_table(
        "message_routings",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("rules_fired", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("routed_at", sa.DateTime(timezone=True), nullable=False),
        _fk("message_routings", "message_id", "messages", "CASCADE"),
        _fk("message_routings", "conversation_id", "conversations", "CASCADE"),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_routings")),
    )
    op.create_table(
        "routing_firings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        _fk("routing_firings", "rule_id", "routing_rules", "SET NULL"),
        _fk("routing_firings", "message_id", "messages", "CASCADE"),
        _fk("routing_firings", "conversation_id", "conversations", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_firings")),
    )
    op.create_index("ix_routing_firings_rule", "routing_firings", ["rule_id", "fired_at"])
    op.create_index("ix_routing_firings_message", "routing_firings", ["message_id"])
    op.create_index(
        "ix_routing_firings_conversation", "routing_firings", ["conversation_id", "fired_at"]
    )
    op.create_table(
        "assignment_policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("default_capacity", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("assignment_policies", "channel_id", "channels", "CASCADE"),
        _fk("assignment_policies", "team_id", "teams", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignment_policies")),
        sa.UniqueConstraint("channel_id", name=op.f("uq_assignment_policies_channel_id")),
        sa.UniqueConstraint("team_id", name=op.f("uq_assignment_policies_team_id")),
    )
    op.create_table(
        "assignment_turns",
        sa.Column("policy_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=False),
        _fk("assignment_turns", "policy_id", "assignment_policies", "CASCADE"),
        _fk("assignment_turns", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("policy_id", "user_id", name=op.f("pk_assignment_turns")),
    )
    op.create_table(
        "agent_capacities",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("max_open", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("agent_capacities", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agent_capacities")),
    )


def downgrade() -> None:
    op.drop_table("agent_capacities")
    op.drop_table("assignment_turns")
    op.drop_table("assignment_policies")
    op.drop_index("ix_routing_firings_conversation", table_name="routing_firings")
    op.drop_index("ix_routing_firings_message", table_name="routing_firings")
    op.drop_index("ix_routing_firings_rule", table_name="routing_firings")
    op.drop_table("routing_firings")
    op.drop_table("message_routings")
    op.drop_index("ix_routing_rules_position", table_name="routing_rules")
    op.drop_table("routing_rules")
