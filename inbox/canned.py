"""Canned responses: who may use and write them, saving them checked, and rendering one
for a conversation.

Scopes (inbox/canned_models.CannedScope):
- global: everyone uses them; admins and managers write them.
- team: the team's members use and write them (a team curates its own replies);
  admins and managers use and write every team's.
- personal: their owner alone uses and writes them; nobody else sees them, admins
  included.

A short code is unique within its scope (the same code may exist as a global and as a
personal response: a picker shows both). Templates are checked when saved: an unknown
placeholder is an error for the author, never a literal "{{contact.frist_name}}" sent to
a customer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import Team, TeamMember
from inbox.canned_models import CannedResponse, CannedScope
from inbox.models import Role, User
from inbox.placeholders import PLACEHOLDERS, placeholder_values, render, unknown_placeholders

SHORT_CODE_MAX = 50
TITLE_MAX = 200
TEXT_MAX = 20_000
# A rendered response becomes a message's text; its placeholders may have grown it.
RENDERED_MAX = 100_000

_SHORT_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")
SHORT_CODE_RULE = "1-50 letters, digits, '-' or '_', starting with a letter or digit"

_STAFF = (Role.ADMIN.value, Role.MANAGER.value)


class CannedError(ValueError):
    """The response cannot be saved as given; `fields` says which field and why (422)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class CannedForbidden(Exception):
    """The user may not write responses of this scope (403)."""


class ShortCodeTaken(Exception):
    """Another response of the same scope has this short code (409)."""


@dataclass(frozen=True, slots=True)
class Reader:
    """A user as canned responses see them: their role and their teams."""

    user_id: uuid.UUID
    staff: bool  # admin or manager
    team_ids: frozenset[uuid.UUID]

    @property
    def personal_key(self) -> str:
        return f"user:{self.user_id}"


async def reader_of(session: AsyncSession, user: User) -> Reader:
    """The user with their teams (one query)."""
    teams = await session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user.id))
    return Reader(user.id, user.role in _STAFF, frozenset(teams))


def normalize_short_code(value: str) -> str:
    """The short code as stored (trimmed, lower case); ValueError naming the rule."""
    code = value.strip().lower()
    if not _SHORT_CODE.fullmatch(code):
        raise ValueError(f"must be {SHORT_CODE_RULE}")
    return code


def check_template(text: str) -> str | None:
    """Why `text` cannot be saved as a template (unknown placeholders); None when it can."""
    unknown = unknown_placeholders(text)
    if not unknown:
        return None
    names = ", ".join("{{" + name + "}}" for name in unknown)
    known = ", ".join(PLACEHOLDERS)
    return f"unknown placeholder {names}; known: {known}"


def scope_key(scope: CannedScope, team_id: uuid.UUID | None, owner_id: uuid.UUID | None) -> str:
    """The key a short code is unique within."""
    if scope is CannedScope.TEAM:
        return f"team:{team_id}"
    if scope is CannedScope.PERSONAL:
        return f"user:{owner_id}"
    return "global"


def search_key(short_code: str, title: str) -> str:
    """What `?q=` searches: the short code and the title, casefolded."""
    return f"{short_code}\n{title}".casefold()


def usable_by(reader: Reader) -> ColumnElement[bool]:
    """The responses `reader` may see and use."""
    if reader.staff:
        return or_(
            CannedResponse.scope_key == "global",
            CannedResponse.scope == CannedScope.TEAM.value,
            CannedResponse.scope_key == reader.personal_key,
        )
    keys = ["global", reader.personal_key, *team_keys(reader.team_ids)]
    return CannedResponse.scope_key.in_(keys)


def may_write(reader: Reader, scope: CannedScope, team_id: uuid.UUID | None) -> bool:
    """Whether `reader` may write a response of this scope (their own, if personal)."""
    if scope is CannedScope.PERSONAL:
        return True
    if scope is CannedScope.GLOBAL:
        return reader.staff
    return reader.staff or team_id in reader.team_ids


async def usable(
    session: AsyncSession, reader: Reader, canned_id: uuid.UUID
) -> CannedResponse | None:
    """The response if `reader` may use it; None when it does not exist or they may not."""
    return await session.scalar(
        select(CannedResponse).where(CannedResponse.id == canned_id, usable_by(reader))
    )


async def _check_scope(
    session: AsyncSession, reader: Reader, scope: CannedScope, team_id: uuid.UUID | None
) -> None:
    if scope is CannedScope.TEAM:
        if team_id is None:
            raise CannedError({"team_id": 'required with scope "team"'})
        if await session.get(Team, team_id) is None:
            raise CannedError({"team_id": "no such team"})
    elif team_id is not None:
        raise CannedError({"team_id": 'only with scope "team"'})
    if not may_write(reader, scope, team_id):
        who = "" if scope is CannedScope.GLOBAL else "the team's members, "
        raise CannedForbidden(f"{scope.value} responses are written by {who}admins and managers")


def _check_text(text: str) -> None:
    if (reason := check_template(text)) is not None:
        raise CannedError({"text": reason})


async def create(
    session: AsyncSession,
    reader: Reader,
    *,
    scope: CannedScope,
    team_id: uuid.UUID | None,
    short_code: str,
    title: str,
    text: str,
    now: datetime,
) -> CannedResponse:
    """Save a new response (the caller commits). CannedError, CannedForbidden,
    ShortCodeTaken."""
    await _check_scope(session, reader, scope, team_id)
    _check_text(text)
    owner_id = reader.user_id if scope is CannedScope.PERSONAL else None
    canned = CannedResponse(
        scope=scope.value,
        scope_key=scope_key(scope, team_id, owner_id),
        team_id=team_id,
        owner_id=owner_id,
        short_code=short_code,
        title=title,
        text=text,
        search_key=search_key(short_code, title),
        created_by=reader.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(canned)
    await _flush(session)
    return canned


async def update(
    session: AsyncSession,
    reader: Reader,
    canned: CannedResponse,
    changes: dict[str, object],
    now: datetime,
) -> CannedResponse:
    """Apply `changes` (any of scope, team_id, short_code, title, text) to a response the
    reader may use (the caller commits). Moving it to another scope needs the right to
    write both; a response moved out of "personal" keeps no owner, one moved into it
    becomes the reader's."""
    current = CannedScope(canned.scope)
    if not may_write(reader, current, canned.team_id):
        raise CannedForbidden("you may use this response but not change it")
    scope = CannedScope(str(changes.get("scope", current)))
    # A team response moved to another scope leaves its team without being told to.
    default_team = canned.team_id if scope is CannedScope.TEAM else None
    team_id = changes.get("team_id", default_team)
    assert team_id is None or isinstance(team_id, uuid.UUID)
    if scope is not current or team_id != canned.team_id:
        await _check_scope(session, reader, scope, team_id)
        canned.owner_id = reader.user_id if scope is CannedScope.PERSONAL else None
    if "text" in changes:
        canned.text = str(changes["text"])
        _check_text(canned.text)
    if "short_code" in changes:
        canned.short_code = str(changes["short_code"])
    if "title" in changes:
        canned.title = str(changes["title"])
    canned.scope = scope.value
    canned.team_id = team_id
    canned.scope_key = scope_key(scope, team_id, canned.owner_id)
    canned.search_key = search_key(canned.short_code, canned.title)
    canned.updated_at = now
    await _flush(session)
    return canned


def check_delete(reader: Reader, canned: CannedResponse) -> None:
    """CannedForbidden unless the reader may delete this response (as they may write it)."""
    if not may_write(reader, CannedScope(canned.scope), canned.team_id):
        raise CannedForbidden("you may use this response but not delete it")


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as err:
        # The only unique index here: (scope_key, short_code).
        raise ShortCodeTaken("this short code is taken in this scope") from err


async def render_for(
    session: AsyncSession, canned: CannedResponse, conversation_id: uuid.UUID, agent: User
) -> str:
    """The response's text for a conversation, `agent` replying. LookupError when the
    conversation does not exist."""
    values = await placeholder_values(session, conversation_id, agent)
    return render(canned.text, values)


def team_keys(team_ids: Collection[uuid.UUID]) -> list[str]:
    """The scope keys of these teams' responses."""
    return [f"team:{team}" for team in team_ids]
