"""indexes for reports

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 22:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reports read ranges of these times (inbox/report_models.py says why no sums are kept).
    # PostgreSQL: the counted columns are included, for index-only scans (SQLite has no
    # INCLUDE and ignores the option).
    op.create_index(
        "ix_messages_created",
        "messages",
        ["created_at"],
        postgresql_include=[
            "direction",
            "kind",
            "private",
            "auto_submitted",
            "channel_id",
            "author_id",
            "conversation_id",
        ],
    )
    op.create_index("ix_conversations_created", "conversations", ["created_at"])
    op.create_index("ix_sla_clocks_met", "sla_clocks", ["met_at"])
    op.create_index("ix_sla_clocks_due_at", "sla_clocks", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_sla_clocks_due_at", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_met", table_name="sla_clocks")
    op.drop_index("ix_conversations_created", table_name="conversations")
    op.drop_index("ix_messages_created", table_name="messages")
