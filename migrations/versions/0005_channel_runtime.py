"""channel runtime: paused channels and per-channel receive leases

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    op.create_table(
        "channel_leases",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_leases_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_channel_leases")),
    )


def downgrade() -> None:
    op.drop_table("channel_leases")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_column("paused")
