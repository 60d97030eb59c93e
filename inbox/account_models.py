"""Teams, who belongs to which team, which users and teams serve which channel, and the
server side of cookie sessions (issue 9)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from timeline.ids import new_id
from timeline.models import Base, utcnow


class Team(Base):
    """A group of users (first line, second line, sales…): conversations can be assigned
    to it, and it can be made a member of channels for all its users at once."""

    __tablename__ = "teams"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamMember(Base):
    """A user in a team."""

    __tablename__ = "team_members"

    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_team_members_user", "user_id"),)


class ChannelMember(Base):
    """A user who works a channel: an agent sees its conversations and contacts."""

    __tablename__ = "channel_members"

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_channel_members_user", "user_id"),)


class ChannelTeam(Base):
    """A team that works a channel: every member of the team is a member of the channel."""

    __tablename__ = "channel_teams"

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_channel_teams_team", "team_id"),)


class WebSession(Base):
    """A cookie session kept in the database (when Redis is not configured).

    The id is the SHA-256 of the cookie's random value: whoever reads this table (a
    backup, a replica) cannot log in with what they read.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Idle expiry is counted from here; refreshed at most once a minute.
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The absolute end, whatever the activity.
    expires_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_web_sessions_user", "user_id"),
        Index("ix_web_sessions_expires", "expires_at"),
    )


class Invitation(Base):
    """A one-time link with which an invited user sets their first password (issue 11).

    As with sessions and API tokens, only the SHA-256 of the link's random token is kept.
    A link works once (`used_at`), until `expires_at`, and only while it is the user's
    newest: inviting again sets `replaced_at` on the previous one. A user is still
    "invited" while they have a link neither used nor replaced.
    """

    __tablename__ = "invitations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Who invited them; kept when that admin's account goes.
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    replaced_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_invitations_user", "user_id"),)
