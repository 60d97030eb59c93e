"""outgoing webhook subscriptions and their delivery log

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # filled by the issue 9 work


def downgrade() -> None:
    pass
