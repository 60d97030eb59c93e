"""ingestion hardening: arrival time, conversation slots

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OPEN_THREAD_WHERE = "status <> 'resolved' AND thread_key IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seq", sa.Integer(), nullable=True))

    # Existing messages arrived when they were stored; their order in a conversation is
    # the one they were shown in until now (sender's date, then id).
    op.execute("UPDATE messages SET arrived_at = created_at")
    op.execute(
        "UPDATE messages SET seq = ranked.n FROM ("
        " SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY sent_at, id) AS n"
        " FROM messages) AS ranked WHERE messages.id = ranked.id"
    )
    op.execute(
        "UPDATE conversations SET last_seq = COALESCE("
        "(SELECT MAX(seq) FROM messages WHERE messages.conversation_id = conversations.id), 0)"
    )
    # Thread keys follow the kind's grouping now: chat kinds have one conversation slot
    # per contact (""), web form submissions none (NULL); email keeps its root Message-ID.
    op.execute(
        "UPDATE conversations SET thread_key = '' WHERE channel_id IN "
        "(SELECT id FROM channels WHERE kind IN ('sms', 'telegram'))"
    )
    op.execute(
        "UPDATE conversations SET thread_key = NULL WHERE channel_id IN "
        "(SELECT id FROM channels WHERE kind = 'webform')"
    )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column(
            "arrived_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index("ix_messages_conversation_sent")
        batch_op.create_index(
            "ix_messages_conversation_seq", ["conversation_id", "seq"], unique=False
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.alter_column("last_seq", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index(
            "uq_conversations_open_slot",
            sqlite_where=sa.text("status <> 'resolved'"),
            postgresql_where=sa.text("status <> 'resolved'"),
        )
        batch_op.create_index(
            "uq_conversations_open_thread",
            ["channel_id", "contact_id", "thread_key"],
            unique=True,
            sqlite_where=sa.text(OPEN_THREAD_WHERE),
            postgresql_where=sa.text(OPEN_THREAD_WHERE),
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_conversations_open_thread",
            sqlite_where=sa.text(OPEN_THREAD_WHERE),
            postgresql_where=sa.text(OPEN_THREAD_WHERE),
        )
        batch_op.create_index(
            "uq_conversations_open_slot",
            ["channel_id", "contact_id"],
            unique=True,
            sqlite_where=sa.text("status <> 'resolved'"),
            postgresql_where=sa.text("status <> 'resolved'"),
        )
        batch_op.drop_column("last_seq")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_conversation_seq")
        batch_op.create_index(
            "ix_messages_conversation_sent", ["conversation_id", "sent_at", "id"], unique=False
        )
        batch_op.drop_column("seq")
        batch_op.drop_column("arrived_at")
