"""Request and response models of the accounts API: sessions, users, API tokens, teams
and channel membership (see web/api/accounts.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from inbox.account_models import Team
from inbox.membership import Membership, UserChannel
from inbox.models import ApiToken, Role, User
from inbox.teams import TeamView
from inbox.users import MAX_PASSWORD_LENGTH
from web.api.schemas import Input, Text
from web.ui.languages import LanguageCode

MAX_IDS = 1000
MAX_NAME_LENGTH = 200  # users.name, teams.name, api_tokens.name


def _plain(value: str) -> str:
    # A name shows in every agent's list and in activity lines: no control characters,
    # no surrounding blanks, never empty.
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise ValueError("must not contain control characters")
    return value


Name = Annotated[Text, Field(max_length=MAX_NAME_LENGTH), AfterValidator(_plain)]
Email = Annotated[Text, Field(max_length=320)]
Password = Annotated[Text, Field(max_length=MAX_PASSWORD_LENGTH)]


# --- sessions --------------------------------------------------------------------------------


class LoginIn(Input):
    """Sign in with a user's email and password."""

    email: Email
    password: Password


class PasswordChangeIn(Input):
    """Change one's own password; the user's other sessions end."""

    current_password: Password
    new_password: Password


class UserOut(BaseModel):
    """A user (never their password hash)."""

    id: uuid.UUID
    email: str
    name: str | None
    role: Role
    is_active: bool
    created_at: datetime

    @classmethod
    def of(cls, row: User) -> UserOut:
        return cls(
            id=row.id,
            email=row.email,
            name=row.name,
            role=Role(row.role),
            is_active=row.is_active,
            created_at=row.created_at,
        )


class SessionOut(BaseModel):
    """Who is signed in. `csrf_token` is sent back as the X-CSRF-Token header of every
    POST, PUT, PATCH and DELETE made with the session cookie (null for bearer tokens)."""

    user: UserOut
    csrf_token: str | None
    expires_at: datetime | None = Field(
        description="when the session ends at the latest (it ends sooner when idle)"
    )


class SessionPreferencesIn(Input):
    """The signed-in user's own preferences."""

    language: LanguageCode | None = Field(
        description="the interface language; null: follow the browser's Accept-Language"
    )


class SessionPreferencesOut(BaseModel):
    """The signed-in user's own preferences."""

    language: LanguageCode | None


# --- users and tokens ------------------------------------------------------------------------


class UserCreate(Input):
    """A new user (admins)."""

    email: Email
    password: Password
    role: Role = Role.AGENT
    name: Name | None = None


class UserUpdate(Input):
    """Changes to a user (admins). A new password or deactivation ends their sessions."""

    email: Email | None = None
    name: Name | None = None
    role: Role | None = None
    is_active: bool | None = None
    password: Password | None = None


class TokenCreate(Input):
    """A new API token."""

    name: Name | None = None


class TokenOut(BaseModel):
    """An API token; the token itself is shown only when created."""

    id: uuid.UUID
    name: str | None
    created_at: datetime
    last_used_at: datetime | None = Field(description="recorded at most once a minute")

    @classmethod
    def of(cls, row: ApiToken) -> TokenOut:
        return cls(
            id=row.id, name=row.name, created_at=row.created_at, last_used_at=row.last_used_at
        )


class TokenCreated(TokenOut):
    """A new token: `token` is shown this once and never stored (only its hash is)."""

    token: str


class UserChannelOut(BaseModel):
    """A channel a user works: directly (`direct`) and/or through teams (`team_ids`)."""

    id: uuid.UUID
    name: str
    kind: str
    direct: bool
    team_ids: list[uuid.UUID]

    @classmethod
    def of(cls, item: UserChannel) -> UserChannelOut:
        channel = item.channel
        return cls(
            id=channel.id,
            name=channel.name,
            kind=channel.kind,
            direct=item.direct,
            team_ids=item.team_ids,
        )


# --- teams and channel members ---------------------------------------------------------------


class TeamCreate(Input):
    """A new team (admins)."""

    name: Name
    description: Annotated[Text, Field(max_length=1000)] | None = None
    member_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_IDS)


class TeamUpdate(Input):
    """Changes to a team (admins); `member_ids` replaces its members."""

    name: Name | None = None
    description: Annotated[Text, Field(max_length=1000)] | None = None
    member_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)


class TeamOut(BaseModel):
    """A team, its members, and the channels it works."""

    id: uuid.UUID
    name: str
    description: str | None
    member_ids: list[uuid.UUID]
    channel_ids: list[uuid.UUID]
    created_at: datetime

    @classmethod
    def of(cls, view: TeamView) -> TeamOut:
        team: Team = view.team
        return cls(
            id=team.id,
            name=team.name,
            description=team.description,
            member_ids=view.member_ids,
            channel_ids=view.channel_ids,
            created_at=team.created_at,
        )


class ChannelMembersIn(Input):
    """Who works a channel: replaces its members. Agents see the channel's conversations
    when they are listed, or are in a listed team."""

    user_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_IDS)
    team_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_IDS)


class ChannelMembersOut(BaseModel):
    """A channel's members: users directly, and teams."""

    channel_id: uuid.UUID
    user_ids: list[uuid.UUID]
    team_ids: list[uuid.UUID]

    @classmethod
    def of(cls, channel_id: uuid.UUID, membership: Membership) -> ChannelMembersOut:
        return cls(
            channel_id=channel_id, user_ids=membership.user_ids, team_ids=membership.team_ids
        )
