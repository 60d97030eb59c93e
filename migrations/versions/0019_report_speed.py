"""report speed: the span index covers what the reports read

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 01:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_conversation_metrics_kind_ended"
TABLE = "conversation_metrics"
# What the report's span statements read besides the key (inbox/reports.py): with them in
# the index PostgreSQL answers from the index alone instead of visiting every span row of
# the period in the table.
INCLUDED = [
    "agent_id",
    "team_id",
    "channel_id",
    "conversation_id",
    "wall_seconds",
    "business_seconds",
]


def upgrade() -> None:
    # SQLite has no INCLUDE: its index stays as it is.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name=TABLE)
    op.create_index(INDEX, TABLE, ["kind", "ended_at"], postgresql_include=INCLUDED)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name=TABLE)
    op.create_index(INDEX, TABLE, ["kind", "ended_at"])
