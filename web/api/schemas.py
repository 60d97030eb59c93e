"""Request and response models of the REST API: they validate input, shape output and
generate the OpenAPI document (see web/openapi.py)."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from connectors.registry import REGISTRY, spec_for
from connectors.types import ChannelKind
from inbox.attributes import render
from inbox.labels import LabelError, normalize_label
from inbox.money import Money
from inbox.preferences import local_time, reachable_now
from inbox.user_ref import UserIdOrNone
from inbox.workflow_models import Priority
from timeline.models import (
    Attachment,
    Contact,
    ContactAttribute,
    ContactTag,
    Conversation,
    ConversationStatus,
    Identity,
    Message,
    TimelineEvent,
    utcnow,
)
from web.openapi import REF_TEMPLATE

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL (SQLite would store it): refuse it here, with the
    # field named, rather than fail the INSERT. (Unpaired surrogates never get this far:
    # pydantic refuses them while parsing.)
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(no_nul)]
"""A string that can be stored on both databases."""


class Input(BaseModel):
    """Base of request bodies and query strings: unknown keys are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


# --- paging ----------------------------------------------------------------------------------


class Keyset(BaseModel):
    """Where a page ended: the sort time and id of its last row. Opaque to clients."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    id: uuid.UUID
    seq: int | None = None  # lists ordered by a sequence number (a conversation's messages)

    def encode(self) -> str:
        """The cursor: urlsafe base64 (unpadded) of this keyset as JSON."""
        return base64.urlsafe_b64encode(self.model_dump_json().encode()).rstrip(b"=").decode()

    @classmethod
    def decode(cls, cursor: str) -> Keyset:
        """The keyset of a cursor made by `encode`; ValueError for anything else."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            return cls.model_validate_json(raw)
        except (binascii.Error, ValidationError) as err:
            raise ValueError("not a cursor this API returned") from err


class PageQuery(Input):
    """`?cursor=` and `?limit=` of every list."""

    cursor: str | None = Field(
        default=None, description="`next_cursor` of the previous page", max_length=1000
    )
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)

    @field_validator("cursor")
    @classmethod
    def _valid_cursor(cls, value: str | None) -> str | None:
        if value is not None:
            Keyset.decode(value)
        return value

    @property
    def keyset(self) -> Keyset | None:
        """The position after which this page starts."""
        return None if self.cursor is None else Keyset.decode(self.cursor)


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` as `?cursor=` for the next (null: no more)."""

    items: list[T]
    next_cursor: str | None


# --- channels --------------------------------------------------------------------------------


def _known_kind(value: object) -> object:
    if isinstance(value, str):
        try:
            spec_for(value)
        except KeyError as err:
            # The registry's message names the known kinds.
            raise PydanticCustomError("unknown_kind", "{reason}", {"reason": err.args[0]}) from err
    return value


def _any_channel_config(schema: dict[str, Any]) -> None:
    # Generated from the registry, so a new channel kind documents itself.
    schema["anyOf"] = [
        {"$ref": REF_TEMPLATE.format(model=spec.config.__name__)} for spec in REGISTRY.values()
    ]


class ChannelCreate(Input):
    """A channel to connect; `config` is validated by the kind's configuration model."""

    kind: Annotated[ChannelKind, BeforeValidator(_known_kind)]
    name: Text = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict, json_schema_extra=_any_channel_config)


class ChannelUpdate(Input):
    """Changes to a channel: `config` is merged onto the stored one; a secret sent as
    `***` or left out keeps its stored value."""

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    paused: bool | None = Field(
        default=None,
        description="true stops receiving and holds replies in the outbox; false resumes",
    )


class ConnectionTest(Input):
    """Configuration changes to test before saving them, merged onto the stored ones as a
    PATCH would; an empty body tests the stored configuration."""

    config: dict[str, Any] | None = None


class ConnectionTestOut(BaseModel):
    """The answer of a connection test: `errors` by configuration key, empty when it worked."""

    ok: bool
    checked: bool = Field(description="false when this kind has nothing to connect to")
    errors: dict[str, str]


class ChannelOut(BaseModel):
    """A channel; secrets in `config` show as `***` (generated ones once, at creation)."""

    id: uuid.UUID
    kind: ChannelKind
    name: str
    config: dict[str, Any] | None = Field(
        description="null when the stored configuration cannot be read (secret key changed?)"
    )
    health: str
    health_reason: str | None
    last_sync_at: datetime | None
    created_at: datetime
    paused: bool
    running: bool = Field(
        description="whether a connector runs for it: false while paused or while its kind "
        "has no connector"
    )


# --- contacts --------------------------------------------------------------------------------


class IdentityOut(BaseModel):
    """One normalized way to reach a contact."""

    kind: str
    value: str
    display_name: str | None

    @classmethod
    def of(cls, row: Identity) -> IdentityOut:
        return cls(kind=row.kind, value=row.value, display_name=row.display_name)


class MoneyOut(BaseModel):
    """An exact amount: a decimal string in an ISO 4217 currency."""

    amount: str = Field(examples=["1234.50"])
    currency: str = Field(examples=["EUR"])


class ContactOut(BaseModel):
    """A contact: every identity it is known by, its CRM fields, and the customer's own
    choices with their local time."""

    # Every field is always sent: the document says so even for those with defaults.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: uuid.UUID
    name: str | None
    lifecycle_stage: str
    lost_reason: str | None = None
    owner_id: uuid.UUID | None = None
    identities: list[IdentityOut]
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        description="custom attribute values by key: text and select as strings, numbers, "
        'booleans, dates as "YYYY-MM-DD", money as {"amount", "currency"}',
    )
    lifetime_value: MoneyOut | None = None
    preferred_channel_id: uuid.UUID | None = None
    language: str | None = Field(default=None, description="BCP 47, e.g. pt-BR")
    timezone: str | None = Field(default=None, description="IANA, e.g. Europe/Berlin")
    reachable_hours: dict[str, Any] | None = Field(
        default=None, description='in the contact\'s timezone: {"mon": [["09:00", "17:00"]]}'
    )
    currency: str | None = Field(default=None, description="ISO 4217")
    local_time: datetime | None = Field(
        default=None, description="now in the contact's timezone; null without one"
    )
    reachable_now: bool | None = Field(
        default=None, description="whether now is within their hours; null when unknown"
    )
    created_at: datetime
    last_activity_at: datetime
    merged_into_id: uuid.UUID | None = Field(
        default=None, description="the contact this one was merged into"
    )
    erased: bool = Field(default=False, description="personal data erased on request")

    @classmethod
    def of(
        cls,
        row: Contact,
        identities: Sequence[Identity],
        tags: Sequence[ContactTag] = (),
        attributes: Sequence[ContactAttribute] = (),
        now: datetime | None = None,
    ) -> ContactOut:
        now = now or utcnow()
        lifetime_value = (
            None
            if row.lifetime_value_minor is None or row.lifetime_value_currency is None
            else MoneyOut(**Money(row.lifetime_value_minor, row.lifetime_value_currency).as_json())
        )
        return cls(
            id=row.id,
            name=row.name,
            lifecycle_stage=row.lifecycle_stage,
            lost_reason=row.lost_reason,
            owner_id=row.owner_id,
            identities=[IdentityOut.of(identity) for identity in identities],
            tags=sorted(tag.tag for tag in tags),
            attributes={attribute.key: render(attribute) for attribute in attributes},
            lifetime_value=lifetime_value,
            preferred_channel_id=row.preferred_channel_id,
            language=row.language,
            timezone=row.timezone,
            reachable_hours=row.reachable_hours,
            currency=row.currency,
            local_time=local_time(row, now),
            reachable_now=reachable_now(row, now),
            created_at=row.created_at,
            last_activity_at=row.last_activity_at,
            merged_into_id=row.merged_into_id,
            erased=row.erased_at is not None,
        )


class ContactQuery(PageQuery):
    """Filters of the contact list."""

    q: Text | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="case-insensitive search in names and identity values",
    )
    identity: Text | None = Field(
        default=None,
        max_length=400,
        description="KIND:VALUE, e.g. email:ann@example.com, phone:+14155550100, telegram:123456",
    )


# --- messages --------------------------------------------------------------------------------


class AttachmentOut(BaseModel):
    """A file of a message."""

    id: uuid.UUID
    filename: str | None
    content_type: str
    size: int
    inline: bool

    @classmethod
    def of(cls, row: Attachment) -> AttachmentOut:
        return cls(
            id=row.id,
            filename=row.filename,
            content_type=row.content_type,
            size=row.size,
            inline=row.inline,
        )


class DeliveryOut(BaseModel):
    """Where an outbound message is on its way to the customer."""

    state: str
    error: str | None


class MessageOut(BaseModel):
    """A message, private note or activity of a conversation."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    channel_id: uuid.UUID = Field(description="the channel it came in or went out on")
    direction: Literal["in", "out"]
    kind: str
    private: bool
    text: str
    reply_text: str | None
    html: str | None = Field(description="sanitized")
    subject: str | None
    sent_at: datetime = Field(description="the sender's (provider's) date, as they gave it")
    arrived_at: datetime = Field(description="when Switchboard received or queued it")
    seq: int = Field(description="position in the conversation, in the order messages arrived")
    author_id: uuid.UUID | None
    edited_at: datetime | None = Field(
        default=None, description="when the customer last changed it (text is the latest)"
    )
    reply_to_id: uuid.UUID | None = Field(default=None, description="the message it answers")
    delivery: DeliveryOut | None = Field(description="null for inbound messages and notes")
    attachments: list[AttachmentOut]

    @classmethod
    def of(cls, row: Message, attachments: Sequence[Attachment] = ()) -> MessageOut:
        delivery = (
            None
            if row.delivery_state is None
            else DeliveryOut(state=row.delivery_state, error=row.delivery_error)
        )
        return cls(
            id=row.id,
            conversation_id=row.conversation_id,
            channel_id=row.channel_id,
            direction="in" if row.direction == "in" else "out",
            kind=row.kind,
            private=row.private,
            text=row.text,
            reply_text=row.reply_text,
            html=row.html,
            subject=row.subject,
            sent_at=row.sent_at,
            arrived_at=row.arrived_at,
            seq=row.seq,
            author_id=row.author_id,
            edited_at=row.edited_at,
            reply_to_id=row.reply_to_id,
            delivery=delivery,
            attachments=[AttachmentOut.of(attachment) for attachment in attachments],
        )


MAX_ATTACHMENTS = 10
# RFC 6838 section 4.2 restricted names, type/subtype, without parameters.
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)


class AttachmentIn(Input):
    """A file to send with a reply, its content base64-encoded."""

    filename: str = Field(min_length=1, max_length=255, description="shown to the recipient")
    content_type: str = Field(max_length=255, examples=["application/pdf", "image/png"])
    data: str = Field(min_length=1, description="the file's bytes, base64 (RFC 4648 section 4)")

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # A name, never a path: connectors put it in MIME headers and provider uploads.
        if any(c in "/\\" for c in value) or value in (".", ".."):
            raise ValueError("must be a file name, not a path")
        if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("content_type")
    @classmethod
    def _media_type(cls, value: str) -> str:
        if not _MEDIA_TYPE.fullmatch(value):
            raise ValueError("must be a media type such as application/pdf, without parameters")
        return value.lower()  # media types are case-insensitive (RFC 6838 section 4.2)

    @field_validator("data")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error as err:
            raise ValueError("must be base64-encoded") from err
        return value

    @property
    def size(self) -> int:
        """The decoded file's size in bytes, without decoding it (the data is valid base64)."""
        return len(self.data) // 4 * 3 - self.data[-2:].count("=")

    def content(self) -> bytes:
        """The decoded file."""
        return base64.b64decode(self.data, validate=True)


class TimelineEventOut(BaseModel):
    """One entry of a contact's timeline, with its message when it is about one."""

    id: uuid.UUID
    kind: str
    occurred_at: datetime
    conversation_id: uuid.UUID | None
    message_id: uuid.UUID | None
    data: dict[str, Any]
    message: MessageOut | None

    @classmethod
    def of(cls, row: TimelineEvent, message: MessageOut | None) -> TimelineEventOut:
        return cls(
            id=row.id,
            kind=row.kind,
            occurred_at=row.occurred_at,
            conversation_id=row.conversation_id,
            message_id=row.message_id,
            data=row.data,
            message=message,
        )


# --- conversations ---------------------------------------------------------------------------


class ConversationOut(BaseModel):
    """A thread with one contact on one channel, as the requesting user sees it."""

    # Every field is always sent: the document says so even for those with defaults.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: uuid.UUID
    contact_id: uuid.UUID
    channel_id: uuid.UUID
    status: ConversationStatus
    subject: str | None
    assignee_id: uuid.UUID | None
    team_id: uuid.UUID | None
    created_at: datetime
    last_activity_at: datetime
    first_response_at: datetime | None
    waiting_since: datetime | None
    resolved_at: datetime | None
    message_count: int
    snoozed_until: datetime | None = Field(default=None, description="while snoozed")
    priority: Priority = Priority.NONE
    labels: list[str] = Field(default_factory=list, description="sorted")
    participants: list[uuid.UUID] = Field(
        default_factory=list, description="users following it (the assignee among them)"
    )
    last_seq: int = Field(
        default=0,
        description="`seq` of its newest message; send it as `seen_seq` with a change to "
        "refuse the change (409) if a message arrived meanwhile",
    )
    unread: int = Field(default=0, description="messages after the requesting user's read mark")
    reopen_count: int = 0

    @classmethod
    def of(
        cls,
        row: Conversation,
        *,
        labels: Sequence[str] = (),
        participants: Sequence[uuid.UUID] = (),
        read_seq: int = 0,
    ) -> ConversationOut:
        return cls(
            id=row.id,
            contact_id=row.contact_id,
            channel_id=row.channel_id,
            status=ConversationStatus(row.status),
            subject=row.subject,
            assignee_id=row.assignee_id,
            team_id=row.team_id,
            created_at=row.created_at,
            last_activity_at=row.last_activity_at,
            first_response_at=row.first_response_at,
            waiting_since=row.waiting_since,
            resolved_at=row.resolved_at,
            message_count=row.message_count,
            snoozed_until=row.snoozed_until,
            priority=Priority(row.priority),
            labels=sorted(labels),
            participants=list(participants),
            last_seq=row.last_seq,
            unread=max(row.last_seq - read_seq, 0),
            reopen_count=row.reopen_count,
        )


def _label(value: str) -> str:
    try:
        return normalize_label(value)
    except LabelError as err:
        raise ValueError(str(err)) from err


Label = Annotated[str, AfterValidator(_label)]
"""A conversation label, normalized (lower-case, trimmed; inbox/labels.py)."""


class ConversationQuery(PageQuery):
    """Filters of the conversation list (all must match)."""

    status: ConversationStatus | None = None
    assignee: UserIdOrNone | None = Field(
        default=None, description="an assignee's user id, or `none` for unassigned"
    )
    team_id: uuid.UUID | None = None
    channel_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    label: Label | None = Field(default=None, description="has this label")
    priority: Priority | None = None
    unread: bool | None = Field(
        default=None,
        description="true: has messages the requesting user has not read; false: has none",
    )
    participant: uuid.UUID | None = Field(default=None, description="followed by this user")
    sort: Literal["last_activity", "waiting"] = Field(
        default="last_activity",
        description="`last_activity`: most recent activity first; `waiting`: the customer "
        "waiting longest for an answer first (`waiting_since`), those not waiting last",
    )


class MessageQuery(PageQuery):
    """Paging of a conversation's messages in arrival order."""

    after_seq: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="only messages that arrived after the one with this `seq`: poll with the "
        "last `seq` seen to get every message that arrived since, whatever its date",
    )
