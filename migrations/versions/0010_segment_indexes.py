"""indexes for segment filters over many contacts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 21:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A number attribute's range is read from the index, with the contact beside it; the
    # key alone (its prefix) is what the old index gave. Text values have no such index:
    # they may be 10,000 characters, beyond what a B-tree entry takes.
    op.drop_index("ix_contact_attributes_key", table_name="contact_attributes")
    op.create_index(
        "ix_contact_attributes_key_number",
        "contact_attributes",
        ["key", "number_value", "contact_id"],
    )
    # "Reachable on SMS" reads the phone identities only.
    op.create_index("ix_identities_kind_contact", "identities", ["kind", "contact_id"])
    # "Last inbound (outbound) within 30 days" reads recent conversations only.
    op.create_index(
        "ix_conversations_last_inbound", "conversations", ["last_inbound_at", "contact_id"]
    )
    op.create_index(
        "ix_conversations_last_outbound", "conversations", ["last_outbound_at", "contact_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_last_outbound", table_name="conversations")
    op.drop_index("ix_conversations_last_inbound", table_name="conversations")
    op.drop_index("ix_identities_kind_contact", table_name="identities")
    op.drop_index("ix_contact_attributes_key_number", table_name="contact_attributes")
    op.create_index("ix_contact_attributes_key", "contact_attributes", ["key"])
