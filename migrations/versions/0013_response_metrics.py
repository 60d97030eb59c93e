"""response-time metrics, business hours and SLA policies

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "business_hours",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("week", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_hours")),
    )
    op.create_table(
        "metric_cursors",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("position", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_metric_cursors")),
    )
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("first_response_seconds", sa.Integer(), nullable=True),
        sa.Column("next_response_seconds", sa.Integer(), nullable=True),
        sa.Column("resolution_seconds", sa.Integer(), nullable=True),
        sa.Column("channel_ids", sa.JSON(), nullable=False),
        sa.Column("team_ids", sa.JSON(), nullable=False),
        sa.Column("priorities", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
    )
    op.create_table(
        "channel_business_hours",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("business_hours_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_hours_id"],
            ["business_hours.id"],
            name=op.f("fk_channel_business_hours_business_hours_id_business_hours"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_business_hours_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_channel_business_hours")),
    )
    op.create_index(
        "ix_channel_business_hours_calendar",
        "channel_business_hours",
        ["business_hours_id"],
        unique=False,
    )
    op.create_table(
        "team_business_hours",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("business_hours_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_hours_id"],
            ["business_hours.id"],
            name=op.f("fk_team_business_hours_business_hours_id_business_hours"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_team_business_hours")),
    )
    op.create_index(
        "ix_team_business_hours_calendar",
        "team_business_hours",
        ["business_hours_id"],
        unique=False,
    )
    op.create_table(
        "conversation_metrics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wall_seconds", sa.Double(), nullable=False),
        sa.Column("business_seconds", sa.Double(), nullable=True),
        sa.Column("business_hours_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_hours_id"],
            ["business_hours.id"],
            name=op.f("fk_conversation_metrics_business_hours_id_business_hours"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_conversation_metrics_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_metrics_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_metrics")),
    )
    op.create_index(
        "ix_conversation_metrics_kind_ended",
        "conversation_metrics",
        ["kind", "ended_at"],
        unique=False,
    )
    op.create_index(
        "uq_conversation_metrics_span",
        "conversation_metrics",
        ["conversation_id", "cycle", "kind", "started_at"],
        unique=True,
    )
    op.create_table(
        "sla_clocks",
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("policy_id", sa.Uuid(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_sla_clocks_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["sla_policies.id"],
            name=op.f("fk_sla_clocks_policy_id_sla_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "cycle", "target", name=op.f("pk_sla_clocks")),
    )
    op.create_index("ix_sla_clocks_due", "sla_clocks", ["breached_at", "due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sla_clocks_due", table_name="sla_clocks")
    op.drop_table("sla_clocks")
    op.drop_index("ix_conversation_metrics_kind_ended", table_name="conversation_metrics")
    op.drop_index("uq_conversation_metrics_span", table_name="conversation_metrics")
    op.drop_table("conversation_metrics")
    op.drop_index("ix_team_business_hours_calendar", table_name="team_business_hours")
    op.drop_table("team_business_hours")
    op.drop_index("ix_channel_business_hours_calendar", table_name="channel_business_hours")
    op.drop_table("channel_business_hours")
    op.drop_table("sla_policies")
    op.drop_table("metric_cursors")
    op.drop_table("business_hours")
