"""Request and response models of canned responses (web/api/canned.py)."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from inbox.canned import (
    SHORT_CODE_MAX,
    SHORT_CODE_RULE,
    TEXT_MAX,
    TITLE_MAX,
    check_template,
    normalize_short_code,
)
from inbox.canned_models import CannedResponse, CannedScope
from web.api.schemas import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Input

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _encodable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and unpaired surrogates have no UTF-8 form.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError as err:
        raise ValueError("must be valid Unicode text") from err
    return value


def _one_line(value: str) -> str:
    value = _encodable(value).strip()
    if _CONTROL.search(value):
        raise ValueError("must be one line without control characters")
    if not value:
        raise ValueError("must not be blank")
    return value


def _template(value: str) -> str:
    _encodable(value)
    if not value.strip():
        raise ValueError("must not be blank")
    if (reason := check_template(value)) is not None:
        raise ValueError(reason)
    return value


ShortCode = Annotated[
    str,
    Field(min_length=1, max_length=SHORT_CODE_MAX + 20, description=SHORT_CODE_RULE),
    AfterValidator(normalize_short_code),
]
Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX), AfterValidator(_one_line)]
Template = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TEXT_MAX,
        description="text with placeholders such as {{contact.first_name | there}}; an "
        "unknown placeholder is refused",
    ),
    AfterValidator(_template),
]


class CannedCursor(BaseModel):
    """Where a page of canned responses ended (ordered by short code, then id)."""

    model_config = ConfigDict(frozen=True)

    code: str
    id: uuid.UUID

    def encode(self) -> str:
        return base64.urlsafe_b64encode(self.model_dump_json().encode()).rstrip(b"=").decode()

    @classmethod
    def decode(cls, cursor: str) -> CannedCursor:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            return cls.model_validate_json(raw)
        except (binascii.Error, ValidationError) as err:
            raise ValueError("not a cursor this API returned") from err


class CannedQuery(Input):
    """The canned responses the user may use, by short code; `q` searches."""

    q: Annotated[str, Field(max_length=200), AfterValidator(_encodable)] | None = Field(
        default=None,
        description="case-insensitive substring of the short code or the title",
    )
    scope: CannedScope | None = None
    team_id: uuid.UUID | None = Field(default=None, description="only this team's")
    cursor: str | None = Field(
        default=None, description="`next_cursor` of the previous page", max_length=1000
    )
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)

    @field_validator("cursor")
    @classmethod
    def _valid_cursor(cls, value: str | None) -> str | None:
        if value is not None:
            CannedCursor.decode(value)
        return value

    @property
    def position(self) -> CannedCursor | None:
        return None if self.cursor is None else CannedCursor.decode(self.cursor)


class CannedIn(Input):
    """A new canned response."""

    scope: CannedScope = Field(
        default=CannedScope.PERSONAL,
        description="global (admins and managers write), team (the team's members, admins "
        "and managers write), personal (yours alone)",
    )
    team_id: uuid.UUID | None = Field(default=None, description='with scope "team"')
    short_code: ShortCode
    title: Title
    text: Template


class CannedPatch(Input):
    """Changes to a canned response; what is left out stays."""

    scope: CannedScope | None = None
    team_id: uuid.UUID | None = None
    short_code: ShortCode | None = None
    title: Title | None = None
    text: Template | None = None

    def changes(self) -> dict[str, object]:
        """The fields sent (a null scope, short code, title or text changes nothing)."""
        sent = self.model_fields_set
        values: dict[str, object] = {
            name: getattr(self, name)
            for name in ("scope", "short_code", "title", "text")
            if name in sent and getattr(self, name) is not None
        }
        if "team_id" in sent:
            values["team_id"] = self.team_id
        return values


class CannedOut(BaseModel):
    """A canned response."""

    id: uuid.UUID
    scope: CannedScope
    team_id: uuid.UUID | None
    owner_id: uuid.UUID | None = Field(description="the owner of a personal response")
    short_code: str
    title: str
    text: str
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    can_edit: bool = Field(description="whether the requesting user may change or delete it")

    @classmethod
    def of(cls, row: CannedResponse, can_edit: bool) -> CannedOut:
        return cls(
            id=row.id,
            scope=CannedScope(row.scope),
            team_id=row.team_id,
            owner_id=row.owner_id,
            short_code=row.short_code,
            title=row.title,
            text=row.text,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            can_edit=can_edit,
        )


class CannedPage(BaseModel):
    """One page of canned responses; pass `next_cursor` as `?cursor=` for the next."""

    items: list[CannedOut]
    next_cursor: str | None


class RenderIn(Input):
    """The conversation to fill a canned response's placeholders from."""

    conversation_id: uuid.UUID


class CannedPreviewIn(Input):
    """Text not saved yet, to see as a customer would: its placeholders filled from a
    conversation you see, or from a sample contact when none is named."""

    text: Template
    conversation_id: uuid.UUID | None = None


class CannedPreviewOut(BaseModel):
    """The text with its placeholders filled, the requester as agent."""

    text: str
    sample: bool = Field(description="true when a sample contact filled the placeholders")


class RenderOut(BaseModel):
    """A canned response's text with its placeholders filled, the requester as agent."""

    text: str
