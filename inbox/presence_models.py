"""Who is connected: one row per live websocket connection (issue 9, realtime).

A row per connection rather than per user: an agent with two tabs, or with tabs on two
web processes, stays online until the last one goes. A process that dies leaves its rows
behind; they stop counting once their heartbeat is older than the presence TTL
(inbox/presence.py), so nobody stays "online" because a server crashed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from timeline.models import Base, utcnow


class PresenceConnection(Base):
    """One open websocket connection of a user, refreshed by its process's heartbeat."""

    __tablename__ = "presence_connections"
    __table_args__ = (Index("ix_presence_connections_user", "user_id", "seen_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # the connection's id
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # inbox.presence.Availability
    process: Mapped[str] = mapped_column(String(200))  # which web process holds it
    connected_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
