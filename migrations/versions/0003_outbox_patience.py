"""outbox patience: parked jobs, attempt history, early delivery reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_from", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("parked_for", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("claim_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ix_outbound_jobs_channel_state", ["channel_id", "state"], unique=False
        )
    # Jobs queued before this revision start their retry period when they were queued.
    op.execute("UPDATE outbound_jobs SET retry_from = created_at")
    with op.batch_alter_table("outbound_jobs", schema=None) as batch_op:
        batch_op.alter_column(
            "retry_from", existing_type=sa.DateTime(timezone=True), nullable=False
        )

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("provider_message_id", sa.String(length=500), nullable=True),
        sa.Column("delivery_state", sa.String(length=20), nullable=True),
        sa.Column("delivery_rank", sa.Integer(), nullable=False),
        sa.Column("delivery_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_delivery_attempts_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_delivery_attempts_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_attempts_message", ["message_id", "started_at"], unique=False
        )
        batch_op.create_index(
            "ix_delivery_attempts_channel_provider",
            ["channel_id", "provider_message_id"],
            unique=False,
            sqlite_where=sa.text("provider_message_id IS NOT NULL"),
            postgresql_where=sa.text("provider_message_id IS NOT NULL"),
        )

    op.create_table(
        "delivery_reports_pending",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_delivery_reports_pending_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_reports_pending")),
    )
    with op.batch_alter_table("delivery_reports_pending", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_reports_pending_channel_provider",
            ["channel_id", "provider_message_id"],
            unique=False,
        )
        batch_op.create_index("ix_delivery_reports_pending_received", ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_reports_pending", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_reports_pending_received")
        batch_op.drop_index("ix_delivery_reports_pending_channel_provider")
    op.drop_table("delivery_reports_pending")
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_delivery_attempts_channel_provider",
            sqlite_where=sa.text("provider_message_id IS NOT NULL"),
            postgresql_where=sa.text("provider_message_id IS NOT NULL"),
        )
        batch_op.drop_index("ix_delivery_attempts_message")
    op.drop_table("delivery_attempts")
    # Parked jobs wait for their channel again as pending ones (the state is unknown below).
    op.execute("UPDATE outbound_jobs SET state = 'pending' WHERE state = 'parked'")
    with op.batch_alter_table("outbound_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_outbound_jobs_channel_state")
        batch_op.drop_column("claim_id")
        batch_op.drop_column("parked_at")
        batch_op.drop_column("parked_for")
        batch_op.drop_column("retry_from")
