"""Storage of the core domain (SQLAlchemy 2, typed). Alembic migrations mirror these tables."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from timeline.ids import new_id


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite would return naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, timezone-aware."""
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base shared by every package's tables (one metadata, one migration history)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSON(),
    }


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=new_id)


class ConversationStatus(enum.StrEnum):
    """Where a conversation is in the agents' workflow."""

    OPEN = "open"  # waiting for the team
    PENDING = "pending"  # waiting for the customer
    SNOOZED = "snoozed"  # hidden until a time or a new message
    RESOLVED = "resolved"  # done; a new message reopens it within the reopen window


class Direction(enum.StrEnum):
    """Who a message went to."""

    IN = "in"  # from the customer
    OUT = "out"  # to the customer (or a private note by an agent)


class MessageKind(enum.StrEnum):
    """What a timeline entry in a conversation is."""

    MESSAGE = "message"  # something the customer saw or wrote
    NOTE = "note"  # a private note between agents
    ACTIVITY = "activity"  # a system entry: assigned, resolved, reopened


class ParseStatus(enum.StrEnum):
    """What became of a stored raw inbound payload."""

    OK = "ok"  # it became a message
    NO_IDENTITY = "no_identity"  # no usable sender: kept and flagged, no message yet
    FAILED = "failed"  # the parser or the normalizer refused it: kept and flagged


class JobState(enum.StrEnum):
    """State of one outbound delivery job in the durable outbox."""

    PENDING = "pending"  # waiting for `next_attempt_at`
    SENDING = "sending"  # claimed by a worker until `lease_until`
    DONE = "done"  # the provider accepted it
    DEAD = "dead"  # failed permanently, or its outcome is unknown (see timeline/dispatcher.py)
    # Waiting for its channel: the connector is not running or the provider refused the
    # credentials (`parked_for`). Uses no attempts and no retry period; resumed when the
    # channel recovers (see timeline/dispatcher.py).
    PARKED = "parked"


class Channel(Base):
    """A configured channel (a mailbox, a Twilio number, a bot, a web form)."""

    __tablename__ = "channels"

    id: Mapped[uuid.UUID] = _pk()
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    config_encrypted: Mapped[str] = mapped_column(Text)
    health: Mapped[str] = mapped_column(String(32), default="unknown")
    health_reason: Mapped[str | None] = mapped_column(Text)
    last_sync_at: Mapped[datetime | None]
    # A paused channel is kept with its history but runs no connector: nothing is
    # received, and its replies wait in the outbox until it is resumed.
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ContactReachability(Base):
    """Whether a contact may be written to on a channel: they opted out (SMS STOP) or
    blocked the bot (Telegram). Replies are refused while either holds."""

    __tablename__ = "contact_reachability"

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelLease(Base):
    """Which process runs a channel's receiving side (IMAP, long polling), and until when.

    A holder renews its lease while it runs; another process takes it over only once it
    has expired, so a channel is received by exactly one process however many run.
    """

    __tablename__ = "channel_leases"

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class Contact(Base):
    """A person the company deals with; the centre of the timeline."""

    __tablename__ = "contacts"

    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str | None] = mapped_column(String(200))
    # new (not in the pipeline), lead, qualified, customer, lost (inbox/lifecycle.py).
    lifecycle_stage: Mapped[str] = mapped_column(String(32), default="new")
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    # The user who owns the relationship; no foreign key: users live in the inbox package.
    owner_id: Mapped[uuid.UUID | None]
    # Money is kept in minor units of its ISO 4217 currency: exact on both databases.
    lifetime_value_minor: Mapped[int | None] = mapped_column(BigInteger)
    lifetime_value_currency: Mapped[str | None] = mapped_column(String(3))
    # The customer's own choices: where, in which language, when and in what money.
    preferred_channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL")
    )
    language: Mapped[str | None] = mapped_column(String(35))  # BCP 47
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name
    # {"mon": [["09:00", "17:00"]], ...} in the contact's timezone.
    reachable_hours: Mapped[dict[str, Any] | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    # A contact merged into another keeps its row so its id still resolves.
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    # Erased on request (personal data): the row stays as a tombstone for report counts.
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Creation counts as activity, so the contact list sorts on one indexed column.
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_contacts_last_activity", "last_activity_at", "id"),
        Index("ix_contacts_stage", "lifecycle_stage"),
        Index("ix_contacts_owner", "owner_id"),
        Index("ix_contacts_merged_into", "merged_into_id"),
    )


class ContactTag(Base):
    """A tag on a contact."""

    __tablename__ = "contact_tags"

    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)

    __table_args__ = (Index("ix_contact_tags_tag", "tag"),)


class ContactAttribute(Base):
    """The value of one custom attribute of a contact, in the column of its type (the
    definitions are in the inbox package); one row per attribute so segments can filter
    on any of them with plain SQL on both databases."""

    __tablename__ = "contact_attributes"

    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    text_value: Mapped[str | None] = mapped_column(Text)  # text and select
    number_value: Mapped[float | None]
    date_value: Mapped[datetime | None]
    bool_value: Mapped[bool | None]
    money_minor: Mapped[int | None] = mapped_column(BigInteger)  # money, with currency
    currency: Mapped[str | None] = mapped_column(String(3))

    __table_args__ = (
        Index("ix_contact_attributes_key_number", "key", "number_value", "contact_id"),
    )


class MergeSuggestion(Base):
    """Two contacts that look like one person (an identity one offered is the other's).
    Merged or dismissed by a person, never silently."""

    __tablename__ = "merge_suggestions"

    id: Mapped[uuid.UUID] = _pk()
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    other_contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE")
    )
    reason: Mapped[str] = mapped_column(String(500))  # e.g. "phone:+14155550100"
    status: Mapped[str] = mapped_column(String(20), default="open")  # open, merged, dismissed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[uuid.UUID | None]

    __table_args__ = (
        Index("uq_merge_suggestions_pair", "contact_id", "other_contact_id", unique=True),
        Index("ix_merge_suggestions_status", "status", "created_at"),
    )


class Form(Base):
    """A web form of a webform channel; submitted at /forms/{key}."""

    __tablename__ = "forms"

    id: Mapped[uuid.UUID] = _pk()
    key: Mapped[str] = mapped_column(String(64), unique=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    # The definition (connectors/webform/definition.py) as JSON.
    definition: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FormSubmission(Base):
    """One accepted submission of a form, with where it came from."""

    __tablename__ = "form_submissions"

    id: Mapped[uuid.UUID] = _pk()
    form_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("forms.id", ondelete="CASCADE"))
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE")
    )
    attribution: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Kept only as long as the installation's retention setting allows.
    ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_form_submissions_form", "form_id", "created_at"),
        Index("ix_form_submissions_contact", "contact_id"),
    )


class Identity(Base):
    """One normalized way to reach a contact (an address, a number, a Telegram user id)."""

    __tablename__ = "identities"

    id: Mapped[uuid.UUID] = _pk()
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("uq_identities_kind_value", "kind", "value", unique=True),
        Index("ix_identities_contact", "contact_id"),
        Index("ix_identities_kind_contact", "kind", "contact_id"),
    )


# The partial unique index's predicate; ON CONFLICT must repeat it verbatim.
OPEN_THREAD_WHERE = "status <> 'resolved' AND thread_key IS NOT NULL"


class Conversation(Base):
    """A thread between the company and one contact on one channel."""

    __tablename__ = "conversations"

    id: Mapped[uuid.UUID] = _pk()
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default=ConversationStatus.OPEN.value)
    subject: Mapped[str | None] = mapped_column(Text)
    # Which thread of the contact on the channel this is, per the kind's grouping
    # (connectors.base.Grouping): an email thread's root Message-ID, "" for the one chat
    # conversation, NULL when every message starts its own conversation (web forms).
    thread_key: Mapped[str | None] = mapped_column(String(500))
    # Assignment lives in the inbox package; no foreign key here keeps the dependency one-way.
    assignee_id: Mapped[uuid.UUID | None]
    team_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Response-time metrics: when the customer first wrote, when they started waiting
    # (cleared by an agent's reply), when the team first answered, when it was resolved.
    first_inbound_at: Mapped[datetime | None]
    waiting_since: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]
    last_outbound_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    # The `seq` of its newest message. Bumped under the row's lock by every writer, so
    # message sequence numbers are assigned in commit order.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # none, low, medium, high, urgent (inbox/workflow_models.py Priority); labels,
    # participants and read marks are rows of the inbox package.
    priority: Mapped[str] = mapped_column(
        String(10), default="none", server_default=sql_text("'none'")
    )

    __table_args__ = (
        Index("ix_conversations_status_activity", "status", "last_activity_at"),
        # The snooze waker reads only snoozed conversations, by when they are due.
        Index(
            "ix_conversations_snoozed_until",
            "snoozed_until",
            sqlite_where=sql_text("status = 'snoozed'"),
            postgresql_where=sql_text("status = 'snoozed'"),
        ),
        Index("ix_conversations_contact", "contact_id", "last_activity_at"),
        Index("ix_conversations_channel_activity", "channel_id", "last_activity_at"),
        Index("ix_conversations_assignee_status", "assignee_id", "status"),
        # The conversation list with no status filter (everything, or an agent's own),
        # newest activity first: read in index order instead of sorting every row.
        Index("ix_conversations_activity", "last_activity_at", "id"),
        Index("ix_conversations_assignee_activity", "assignee_id", "last_activity_at", "id"),
        Index("ix_conversations_last_inbound", "last_inbound_at", "contact_id"),
        Index("ix_conversations_last_outbound", "last_outbound_at", "contact_id"),
        # At most one unresolved conversation per thread of a contact on a channel:
        # concurrent arrivals of one thread settle on one conversation by this index.
        Index(
            "uq_conversations_open_thread",
            "channel_id",
            "contact_id",
            "thread_key",
            unique=True,
            sqlite_where=sql_text(OPEN_THREAD_WHERE),
            postgresql_where=sql_text(OPEN_THREAD_WHERE),
        ),
    )


class RawInbound(Base):
    """Provider input exactly as received, with what the parser made of it."""

    __tablename__ = "raw_inbound"

    id: Mapped[uuid.UUID] = _pk()
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The normalized Inbound (without attachments' bytes), so it can be re-ingested.
    inbound: Mapped[dict[str, Any] | None]
    parse_status: Mapped[str] = mapped_column(String(20), default=ParseStatus.OK.value)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("uq_raw_inbound_channel_external", "channel_id", "external_id", unique=True),
        # Only flagged payloads are looked for (reprocess); most rows are "ok".
        Index(
            "ix_raw_inbound_flagged",
            "parse_status",
            "received_at",
            sqlite_where=sql_text("parse_status <> 'ok'"),
            postgresql_where=sql_text("parse_status <> 'ok'"),
        ),
    )


class Message(Base):
    """One message, note or activity in a conversation."""

    __tablename__ = "messages"

    id: Mapped[uuid.UUID] = _pk()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(20), default=MessageKind.MESSAGE.value)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    external_id: Mapped[str | None] = mapped_column(String(500))
    rfc_message_id: Mapped[str | None] = mapped_column(String(500))
    sender_identity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )
    author_id: Mapped[uuid.UUID | None]  # the agent who wrote it (inbox users)
    subject: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text, default="")
    reply_text: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    auto_submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    # The provider's (sender's) date, kept and shown; it never orders anything.
    sent_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the message reached us (server clock).
    arrived_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Position in its conversation, assigned in commit order: message lists page on it,
    # so a message that arrives late with an old date is never behind a client's cursor.
    seq: Mapped[int] = mapped_column(Integer, default=0)
    raw_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("raw_inbound.id", ondelete="SET NULL")
    )
    # The customer changed it after sending (a Telegram edit): `text` is the latest
    # version; earlier ones are in the timeline's message.edited events.
    edited_at: Mapped[datetime | None]
    # The earlier message this one answers, when the channel says so (Telegram replies).
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    # Outbound delivery; `delivery_rank` keeps state changes forward-only in one UPDATE.
    delivery_state: Mapped[str | None] = mapped_column(String(20))
    delivery_rank: Mapped[int] = mapped_column(Integer, default=0)
    delivery_error: Mapped[str | None] = mapped_column(Text)
    delivery_updated_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        Index("uq_messages_channel_external", "channel_id", "external_id", unique=True),
        Index("ix_messages_conversation_seq", "conversation_id", "seq"),
        # Partial: most rows have neither id, and skipping them makes inserts cheaper.
        Index(
            "ix_messages_channel_rfc",
            "channel_id",
            "rfc_message_id",
            sqlite_where=sql_text("rfc_message_id IS NOT NULL"),
            postgresql_where=sql_text("rfc_message_id IS NOT NULL"),
        ),
        Index(
            "ix_messages_channel_provider",
            "channel_id",
            "provider_message_id",
            sqlite_where=sql_text("provider_message_id IS NOT NULL"),
            postgresql_where=sql_text("provider_message_id IS NOT NULL"),
        ),
    )


class Attachment(Base):
    """A file of a message: content-addressed under the data directory by its sha256."""

    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = _pk()
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str | None] = mapped_column(String(255))  # for display only, never a path
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    content_id: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_attachments_message", "message_id"),)


class AttachmentFetch(Base):
    """A file of an inbound message whose download failed in a way that may pass (a
    timeout, a provider's 5xx). The message was stored without it; the worker fetches it
    again through its connector until it arrives or the attempts run out."""

    __tablename__ = "attachment_fetches"

    id: Mapped[uuid.UUID] = _pk()
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(Text)  # what the connector fetches it by
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text)  # the line in the message's text that says so
    error: Mapped[str | None] = mapped_column(Text)  # the last failure
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When it is next due; also a claim: a worker pushes it forward before it fetches.
    next_at: Mapped[datetime]
    gave_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_attachment_fetches_due", "gave_up", "next_at"),)


class TimelineEvent(Base):
    """One entry in a contact's timeline (a message, a conversation opened, a contact created)."""

    __tablename__ = "timeline_events"

    id: Mapped[uuid.UUID] = _pk()
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_timeline_events_contact", "contact_id", "occurred_at", "id"),)


class ChannelCursor(Base):
    """Durable progress of a connector (IMAP UIDVALIDITY/UID per folder, Telegram offset)."""

    __tablename__ = "channel_cursors"

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OutboundJob(Base):
    """A durable delivery job, written in the same transaction as its outbound message."""

    __tablename__ = "outbound_jobs"

    id: Mapped[uuid.UUID] = _pk()
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(20), default=JobState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Start of the retry period (database clock): set when queued or retried by an agent,
    # moved forward by the time spent parked, so waiting for a person never expires a reply.
    retry_from: Mapped[datetime] = mapped_column(default=utcnow)
    # Why the job is parked (a `ParkCause`) and since when (database clock); None otherwise.
    parked_for: Mapped[str | None] = mapped_column(String(32))
    parked_at: Mapped[datetime | None]
    # The current or last claim: the id of its `DeliveryAttempt` row. Outcomes are
    # recorded only while the job is still in this claim.
    claim_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        Index("ix_outbound_jobs_due", "state", "next_attempt_at"),
        Index("ix_outbound_jobs_channel_state", "channel_id", "state"),
    )


class ParkCause(enum.StrEnum):
    """Why an outbound job is parked (`OutboundJob.parked_for`)."""

    NOT_RUNNING = "not_running"  # the channel's connector is not running in the worker
    BAD_CREDENTIALS = "bad_credentials"  # the provider refused the channel's credentials


class AttemptOutcome(enum.StrEnum):
    """What became of one delivery attempt (`DeliveryAttempt.outcome`)."""

    SENDING = "sending"  # in flight (or its worker stopped: recovery settles it)
    ACCEPTED = "accepted"  # the provider accepted it; `provider_message_id` names it there
    FAILED = "failed"  # a transient failure: the job retries
    REFUSED = "refused"  # a permanent failure: the job is dead
    PARKED = "parked"  # the channel could not send; the attempt was not counted
    UNKNOWN = "unknown"  # the worker stopped or the send timed out: nobody knows


class DeliveryAttempt(Base):
    """One attempt to send an outbound message: the history of its provider ids and reports.

    A report about an earlier attempt's provider id is recorded here and never changes
    the message, which carries only the current attempt's id.
    """

    __tablename__ = "delivery_attempts"

    id: Mapped[uuid.UUID] = _pk()  # the claim id (`OutboundJob.claim_id`)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)  # the job's attempt count with this one
    worker: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(20), default=AttemptOutcome.SENDING.value)
    error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(500))
    # The provider's latest report about this attempt, forward-only like the message's.
    delivery_state: Mapped[str | None] = mapped_column(String(20))
    delivery_rank: Mapped[int] = mapped_column(Integer, default=0)
    delivery_updated_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_delivery_attempts_message", "message_id", "started_at"),
        Index(
            "ix_delivery_attempts_channel_provider",
            "channel_id",
            "provider_message_id",
            sqlite_where=sql_text("provider_message_id IS NOT NULL"),
            postgresql_where=sql_text("provider_message_id IS NOT NULL"),
        ),
    )


class PendingDeliveryReport(Base):
    """A delivery report that arrived before its send was recorded (Twilio often does that).

    Applied, and deleted, when a send is recorded with its provider id; dropped after a
    week if none ever is.
    """

    __tablename__ = "delivery_reports_pending"

    id: Mapped[uuid.UUID] = _pk()
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    provider_message_id: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime | None]  # when the provider says it happened
    received_at: Mapped[datetime]  # database clock, for the weekly clean-up

    __table_args__ = (
        Index("ix_delivery_reports_pending_channel_provider", "channel_id", "provider_message_id"),
        Index("ix_delivery_reports_pending_received", "received_at"),
    )
