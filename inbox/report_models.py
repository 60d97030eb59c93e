"""Indexes the reports read by (issue 9). No pre-aggregated tables.

Why nothing is pre-aggregated: a report's days are the reader's local days, in any
timezone, DST included, so per-day sums would be wrong at every day edge but UTC's;
per-hour sums would not fit half- and quarter-hour zones; and percentiles (the figures
managers asked for, instead of averages) cannot be added up from partial sums at all.
What a report reads is a range of one indexed time per table: conversations by
creation, messages by creation, recorded metric spans by (kind, end) (defined with the
metrics), SLA clocks by when they were met and when they fell due. A 90-day report
reads those rows once per figure; the benchmark (`python -m bench.inbox`) keeps that
honest.

The indexes are declared here, on the other packages' tables, so the report queries and
the indexes that serve them live side by side; migration 0015 creates them.
"""

from __future__ import annotations

from sqlalchemy import Index

from inbox.metric_models import SlaClock
from timeline.models import Conversation, Message

# Messages in / out, and the hour-of-week volume, over a range of creation times. On
# PostgreSQL the columns the counts filter and group by ride along in the index, so a
# report reads the index only, not 250,000 scattered rows of message text.
MESSAGE_REPORT_COLUMNS = [
    "direction",
    "kind",
    "private",
    "auto_submitted",
    "channel_id",
    "author_id",
    "conversation_id",
]
MESSAGES_CREATED = Index(
    "ix_messages_created", Message.created_at, postgresql_include=MESSAGE_REPORT_COLUMNS
)
# Conversations opened in a range.
CONVERSATIONS_CREATED = Index("ix_conversations_created", Conversation.created_at)
# SLA targets met in a range, and targets that fell due in a range.
SLA_CLOCKS_MET = Index("ix_sla_clocks_met", SlaClock.met_at)
SLA_CLOCKS_DUE_AT = Index("ix_sla_clocks_due_at", SlaClock.due_at)
