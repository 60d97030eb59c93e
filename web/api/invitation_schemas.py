"""Request and response models of invitations (see web/api/invitations.py), and of
setting the channels a user works directly (the team screen)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from inbox.account_models import Invitation
from inbox.invitations import MAX_TOKEN_LENGTH
from inbox.models import Role
from web.api.account_schemas import MAX_IDS, Email, Name, Password, UserOut
from web.api.schemas import Input, Text


class InvitationCreate(Input):
    """Invite someone: they get a set-password link. Inviting again someone who has not
    set their password yet gives them a new link (the previous one stops working) and
    these details."""

    email: Email
    name: Name | None = None
    role: Role = Role.AGENT
    channel_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_IDS,
        description="the channels they work directly (replaces those of an earlier invitation)",
    )


class InvitationOut(BaseModel):
    """A user's open set-password link (never the token, which is shown only when made)."""

    id: uuid.UUID
    user_id: uuid.UUID
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    expired: bool

    @classmethod
    def of(cls, row: Invitation, now: datetime) -> InvitationOut:
        return cls(
            id=row.id,
            user_id=row.user_id,
            created_by=row.created_by,
            created_at=row.created_at,
            expires_at=row.expires_at,
            expired=row.expires_at <= now,
        )


class InvitationCreated(BaseModel):
    """A new link: `url` (and `token`) are shown this once; only a hash is kept."""

    user: UserOut
    invitation: InvitationOut
    token: str
    url: str = Field(description="the set-password page to send to the invitee")


class InvitationAccept(Input):
    """Set one's password with an invitation's token (then sign in with POST /session)."""

    token: Annotated[Text, Field(max_length=MAX_TOKEN_LENGTH)]
    password: Password


class UserChannelsIn(Input):
    """The channels a user works directly (PUT /users/{id}/channels in web/api/accounts.py,
    kept here with the team screen's other inputs); their teams' channels stay theirs."""

    channel_ids: list[uuid.UUID] = Field(max_length=MAX_IDS)
