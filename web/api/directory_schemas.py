"""Request and response models of the user directory (web/api/directory.py)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from inbox.models import Role
from inbox.presence import Availability
from web.api.schemas import Input

DIRECTORY_MAX = 500  # users or teams in one answer: a picker, not an export


class DirectoryQuery(Input):
    """Whom a conversation on `channel_id` may be assigned to or mention."""

    channel_id: uuid.UUID = Field(description="a channel you can see")
    q: str | None = Field(
        default=None,
        max_length=200,
        description="case-insensitive substring of the name or email address",
    )


class DirectoryUserOut(BaseModel):
    """An active user who can see the channel, and whether they are around."""

    id: uuid.UUID
    name: str = Field(description="the user's name, or their email address when unnamed")
    email: str
    role: Role
    presence: Availability = Field(description="online, away or offline (inbox/presence.py)")


class DirectoryUsersOut(BaseModel):
    """The channel's users, by name."""

    items: list[DirectoryUserOut]


class DirectoryTeamOut(BaseModel):
    """A team a conversation may be handed to."""

    id: uuid.UUID
    name: str
    works_channel: bool = Field(description="the team is a member of the channel")


class DirectoryTeamsOut(BaseModel):
    """Every team, those working the channel first, then by name."""

    items: list[DirectoryTeamOut]
