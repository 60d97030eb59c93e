"""Request and answer models of the inbox's search, counts and list previews
(web/api/search.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from timeline.models import ConversationStatus
from web.api.schemas import Input, Text

SEARCH_LIMIT = 10  # hits of each kind by default
SEARCH_MAX = 25
PREVIEW_MAX_IDS = 100  # the list asks for one page (25) at a time; bulk pages up to 100
PREVIEW_CHARS = 160  # a list row shows one line: the start of the text is enough


class SearchQuery(Input):
    """`GET /search?q=`: contacts by name or identity, messages by text."""

    q: Text = Field(
        min_length=1,
        max_length=200,
        description="searched for as it is (case-insensitive; % and _ are plain characters)",
    )
    limit: int = Field(default=SEARCH_LIMIT, ge=1, le=SEARCH_MAX, description="hits of each kind")

    @field_validator("q")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("type something to search for")
        return value


class ContactHit(BaseModel):
    """A contact whose name or an identity matched."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: uuid.UUID
    name: str | None
    identities: list[str] = Field(description="`kind:value` of each identity, at most 5")
    conversation_id: uuid.UUID | None = Field(
        description="their most recent conversation the user may see"
    )


class MessageHit(BaseModel):
    """A message or note whose text matched, newest first."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: uuid.UUID
    conversation_id: uuid.UUID
    contact_id: uuid.UUID
    contact_name: str | None
    channel_kind: str
    direction: str
    private: bool
    text: str = Field(description="the text around the first match, at most 160 characters")
    arrived_at: datetime


class SearchOut(BaseModel):
    """What matched, bounded to `limit` of each kind (`more_*`: there are more)."""

    contacts: list[ContactHit]
    messages: list[MessageHit]
    more_contacts: bool
    more_messages: bool


class CountsQuery(Input):
    """`GET /conversations/counts`: the sidebar's counts for one status."""

    status: ConversationStatus = ConversationStatus.OPEN


class CountsOut(BaseModel):
    """Conversations per sidebar view key (`mine`, `unassigned`, `all`, `team:<id>`,
    `channel:<id>`, `label:<label>`); a view not named has none."""

    status: ConversationStatus
    counts: dict[str, int]


class PreviewQuery(Input):
    """`GET /conversations/previews?ids=a,b,c`."""

    ids: str = Field(description=f"comma-separated conversation ids, at most {PREVIEW_MAX_IDS}")

    @property
    def id_list(self) -> list[uuid.UUID]:
        return _ids(self.ids)

    @field_validator("ids")
    @classmethod
    def _valid_ids(cls, value: str) -> str:
        _ids(value)
        return value


def _ids(value: str) -> list[uuid.UUID]:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise ValueError("name at least one conversation")
    if len(parts) > PREVIEW_MAX_IDS:
        raise ValueError(f"at most {PREVIEW_MAX_IDS} ids")
    try:
        return list(dict.fromkeys(uuid.UUID(part) for part in parts))
    except ValueError as err:
        raise ValueError("not a list of ids") from err


class LastMessage(BaseModel):
    """The newest message or note of a conversation, cut for a list row."""

    text: str
    direction: str
    private: bool
    arrived_at: datetime
    author_id: uuid.UUID | None


class PreviewOut(BaseModel):
    """What a list row shows beside the conversation itself."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: uuid.UUID
    contact_name: str | None
    contact_identity: str | None = Field(description="an identity value, for unnamed contacts")
    channel_kind: str
    channel_name: str
    assignee_name: str | None
    last_message: LastMessage | None


class PreviewsOut(BaseModel):
    """Previews of the named conversations the user may see (others are left out)."""

    items: list[PreviewOut]
