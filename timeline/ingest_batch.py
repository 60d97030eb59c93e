"""One ingestion transaction for a batch of inbound messages, in a few set-based statements.

Every step is settled by a unique index or a row lock rather than by locks in memory, so
several processes may ingest at once: the raw payload's (channel, external id) claims the
message, identities' (kind, value) settles the contact, the open-thread index (one
unresolved conversation per thread of a contact on a channel) settles a new
conversation, and existing conversations are locked, re-read and woken in the statement
that appends to them. Which conversation a message joins is decided by
timeline/routing.py; this module carries the decisions out. Rows are written in key
order so concurrent batches on PostgreSQL take locks in the same order.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import (
    Table,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.base import Grouping
from connectors.types import FormRecord, IdentityKind, Inbound, InboundAttachment
from timeline.bulk import insert_rows
from timeline.events import Event
from timeline.identity import phone_timezone
from timeline.ids import new_id
from timeline.ingest_edits import apply_edits
from timeline.ingest_extras import Extras, store_extras
from timeline.models import (
    OPEN_THREAD_WHERE,
    Attachment,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    FormSubmission,
    Identity,
    Message,
    MessageKind,
    ParseStatus,
    RawInbound,
    TimelineEvent,
    UTCDateTime,
)
from timeline.routing import Arrival, Candidate, Router
from timeline.storable import CONTENT_TYPE_LENGTH, cut

IngestStatus = Literal["created", "duplicate", "flagged", "edited"]

_raw = cast(Table, RawInbound.__table__)
_msg = cast(Table, Message.__table__)
_ident = cast(Table, Identity.__table__)
_contact = cast(Table, Contact.__table__)
_conv = cast(Table, Conversation.__table__)
_event = cast(Table, TimelineEvent.__table__)
_attach = cast(Table, Attachment.__table__)
_form_submission = cast(Table, FormSubmission.__table__)


class RetryBatch(Exception):
    """A race with another transaction that only a fresh attempt can settle."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one inbound message."""

    # created; duplicate (already stored); flagged (kept raw, no message); edited (a new
    # version of the message `message_id`, which now holds its text)
    status: IngestStatus
    raw_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    error: str | None = None  # why it was flagged


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    """An attachment whose bytes are already in the blob store."""

    source: InboundAttachment
    sha256: str
    size: int


@dataclass(slots=True)
class Prepared:
    """An inbound message checked and normalized, ready for the transaction."""

    inbound: Inbound  # with every value storable (timeline/storable.py)
    channel_uuid: uuid.UUID
    external_id: str  # the idempotency key, fitted to its column
    identity: tuple[str, str] | None  # (kind, normalized value); None → flagged
    flag_reason: str | None
    inbound_json: dict[str, Any] | None
    grouping: Grouping = Grouping.CONTACT
    attachments: tuple[StoredAttachment, ...] = ()
    references: tuple[str, ...] = ()  # normalized thread references, most relevant first
    rfc_message_id: str | None = None
    history: bool = False  # imported history: its own dates count (see _effective_at)
    author: tuple[str, str] | None = None  # (kind, value) of a group member who wrote it
    edit_of: str | None = None  # external id of the message this one edits
    reply_to: str | None = None  # external id of the message this one answers
    # Files to fetch again later (their download failed in a way that may pass).
    deferred: tuple[InboundAttachment, ...] = ()
    # Other identities the message vouches for: (kind, normalized value, display name).
    offered: tuple[tuple[str, str, str | None], ...] = ()


@dataclass(slots=True, eq=False)  # identity semantics: one state per conversation
class _ConvState:
    """What a batch adds to one conversation."""

    id: uuid.UUID
    is_new: bool
    subject: str | None = None
    woken_from: str | None = None  # the status an inbound message moved it from
    announced: bool = False  # its opening or reopening was recorded in the timeline
    count: int = 0
    seq_base: int = 0  # its last message's seq before this batch
    first_at: datetime | None = None
    last_at: datetime | None = None

    def add(self, at: datetime, subject: str | None = None) -> None:
        """Count one more message of the batch, at `at`."""
        self.count += 1
        self._widen(at)
        if self.subject is None:
            self.subject = subject

    def merge(self, other: _ConvState) -> None:
        """Fold another state's messages into this one (an adopted conversation)."""
        self.count += other.count
        for at in (other.first_at, other.last_at):
            if at is not None:
                self._widen(at)

    def _widen(self, at: datetime) -> None:
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)


@dataclass(slots=True)
class BatchOutcome:
    """Results in input order, and the events to publish once the transaction commits."""

    results: list[IngestResult]
    events: list[Event] = field(default_factory=list)


_T = TypeVar("_T")


def _padded(values: Iterable[_T]) -> list[_T]:
    """Distinct values in a stable order, padded to a power of two by repeating the last one.

    An IN list's length is part of the statement text; padding keeps the number of distinct
    statements (each prepared and planned per connection) to a handful whatever the batch.
    """
    unique = sorted(set(values), key=str)
    if len(unique) > 1:
        unique.extend(unique[-1:] * ((1 << (len(unique) - 1).bit_length()) - len(unique)))
    return unique


def _upsert_insert(conn: AsyncConnection, table: Any) -> Any:
    """INSERT that supports ON CONFLICT on the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def ingest_batch(
    conn: AsyncConnection, items: Sequence[Prepared], *, reopen_window: timedelta, now: datetime
) -> BatchOutcome:
    """Store a batch of prepared inbound messages in the caller's transaction."""
    results: list[IngestResult | None] = [None] * len(items)
    events: list[Event] = []

    # 1. Claim each (channel, external id) by inserting its raw payload; a conflict means
    #    it was stored before (or by a concurrent transaction that has now committed).
    first_of: dict[tuple[uuid.UUID, str], int] = {}
    key: tuple[uuid.UUID, str]
    repeats: list[tuple[int, int]] = []
    for index, item in enumerate(items):
        key = (item.channel_uuid, item.external_id)
        if key in first_of:
            repeats.append((index, first_of[key]))
        else:
            first_of[key] = index
    raw_ids = {key: new_id() for key in first_of}
    raw_rows = []
    for key in sorted(first_of, key=lambda k: (str(k[0]), k[1])):
        item = items[first_of[key]]
        status = ParseStatus.OK if item.identity else ParseStatus.NO_IDENTITY
        raw_rows.append(_raw_row(item, raw_ids[key], now, status, item.flag_reason))
    inserted = await insert_rows(
        conn,
        _raw,
        raw_rows,
        conflict=("channel_id", "external_id"),
        returning=("channel_id", "external_id"),
    )
    claimed = {(row[0], row[1]) for row in inserted}
    for key, index in first_of.items():
        if key not in claimed and items[index].identity is not None:
            # Stored before but flagged (no identity, parser refused it): now that it is
            # usable, take the raw row over. The WHERE makes exactly one transaction win.
            row = (
                await conn.execute(
                    update(_raw)
                    .where(
                        _raw.c.channel_id == key[0],
                        _raw.c.external_id == key[1],
                        _raw.c.parse_status != ParseStatus.OK.value,
                    )
                    .values(parse_status=ParseStatus.OK.value, error=None, inbound=None)
                    .returning(_raw.c.id)
                )
            ).first()
            if row is not None:
                raw_ids[key] = row[0]
                claimed.add(key)

    fresh: list[int] = []
    duplicates: list[int] = []
    for key, index in first_of.items():
        if key not in claimed:
            duplicates.append(index)
        elif items[index].identity is None:
            results[index] = IngestResult(
                "flagged", raw_id=raw_ids[key], error=items[index].flag_reason
            )
        else:
            fresh.append(index)
    if duplicates:
        await _resolve_duplicates(conn, items, duplicates, results)

    edits = [i for i in fresh if items[i].edit_of is not None]
    # An edit whose original arrives in this same batch (a poller catching up) is applied
    # once that original is stored, below.
    arriving = {(items[i].channel_uuid, items[i].external_id) for i in fresh}
    after = [i for i in edits if (items[i].channel_uuid, items[i].edit_of) in arriving]
    edits = [i for i in edits if i not in after]
    if edits:
        # An edit of a message we never stored is kept as a message of its own.
        unmatched = await _apply_edits(conn, items, edits, raw_ids, results, events)
        fresh = [i for i in fresh if items[i].edit_of is None or i in unmatched]
    fresh = [i for i in fresh if i not in after]
    if fresh:
        await _store_messages(conn, items, fresh, raw_ids, results, events, reopen_window, now)
    if after and (late := await _apply_edits(conn, items, after, raw_ids, results, events)):
        await _store_messages(
            conn, items, sorted(late), raw_ids, results, events, reopen_window, now
        )

    for index, first in repeats:
        original = results[first]
        assert original is not None
        results[index] = (
            original
            if original.status == "flagged"
            else dataclasses.replace(original, status="duplicate")
        )
    final = [r for r in results if r is not None]
    assert len(final) == len(items)
    return BatchOutcome(final, events)


async def _apply_edits(
    conn: AsyncConnection,
    items: Sequence[Prepared],
    indexes: list[int],
    raw_ids: dict[tuple[uuid.UUID, str], uuid.UUID],
    results: list[IngestResult | None],
    events: list[Event],
) -> set[int]:
    """Apply the edits at `indexes`, answering for each; returns those whose original is
    not stored."""
    applied, unmatched = await apply_edits(conn, items, indexes, events)
    for i, edited in applied.items():
        results[i] = IngestResult(
            "edited",
            raw_id=raw_ids[(items[i].channel_uuid, items[i].external_id)],
            message_id=edited.message_id,
            conversation_id=edited.conversation_id,
            contact_id=edited.contact_id,
        )
    return unmatched


async def _resolve_duplicates(
    conn: AsyncConnection,
    items: Sequence[Prepared],
    indexes: list[int],
    results: list[IngestResult | None],
) -> None:
    keys = [(items[i].channel_uuid, items[i].external_id) for i in indexes]
    rows = await conn.execute(
        select(
            _raw.c.channel_id,
            _raw.c.external_id,
            _raw.c.id,
            _raw.c.parse_status,
            _raw.c.error,
            _msg.c.id,
            _msg.c.conversation_id,
            _msg.c.contact_id,
        )
        .select_from(_raw.outerjoin(_msg, _msg.c.raw_id == _raw.c.id))
        .where(tuple_(_raw.c.channel_id, _raw.c.external_id).in_(_padded(keys)))
    )
    found = {(r[0], r[1]): r for r in rows}
    for index, key in zip(indexes, keys, strict=True):
        row = found.get(key)
        if row is None:
            # The raw row conflicted but is gone (deleted concurrently): report, don't guess.
            results[index] = IngestResult("flagged", error="conflicting record disappeared")
        elif row[5] is None and row[3] == ParseStatus.OK.value:
            # Stored without a message of its own: an edit, applied to its original.
            results[index] = IngestResult("duplicate", raw_id=row[2])
        elif row[5] is None:
            results[index] = IngestResult("flagged", raw_id=row[2], error=row[4])
        else:
            results[index] = IngestResult(
                "duplicate",
                raw_id=row[2],
                message_id=row[5],
                conversation_id=row[6],
                contact_id=row[7],
            )


async def _resolve_contacts(
    conn: AsyncConnection, items: Sequence[Prepared], fresh: list[int], now: datetime
) -> tuple[dict[tuple[str, str], tuple[uuid.UUID, uuid.UUID]], set[uuid.UUID]]:
    """Map each identity to (identity id, contact id), creating contacts as needed."""
    # Each identity's display name, from the first message naming it: senders, and the
    # members who wrote in a group.
    wanted: dict[tuple[str, str], str | None] = {}
    # A new contact starts with the stage and language of the first message it sent.
    starts: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for i in fresh:
        ident = items[i].identity
        if ident is not None:
            sender = items[i].inbound.sender
            wanted.setdefault(ident, sender.display_name if sender else None)
            inbound = items[i].inbound
            starts.setdefault(ident, (inbound.new_contact_stage, inbound.language))
        author = items[i].author
        if author is not None:
            handle = items[i].inbound.author
            wanted.setdefault(author, handle.display_name if handle else None)
    keys = sorted(wanted)
    found: dict[tuple[str, str], tuple[uuid.UUID, uuid.UUID]] = {}
    for kind, value, ident_id, contact_id in await _select_identities(conn, keys):
        found[(kind, value)] = (ident_id, contact_id)
    missing = [k for k in keys if k not in found]
    created: set[uuid.UUID] = set()
    if not missing:
        return found, created

    names = wanted
    planned = {k: (new_id(), new_id()) for k in missing}
    await insert_rows(
        conn,
        _contact,
        [
            {
                "id": planned[k][1],
                "name": names.get(k),
                "lifecycle_stage": starts.get(k, (None, None))[0] or "new",
                "language": starts.get(k, (None, None))[1],
                # Where a phone number tells, the customer's timezone from the start.
                "timezone": phone_timezone(k[1]) if k[0] == IdentityKind.PHONE.value else None,
                "created_at": now,
                "updated_at": now,
                "last_activity_at": now,
            }
            for k in missing
        ],
    )
    inserted = await insert_rows(
        conn,
        _ident,
        [
            {
                "id": planned[k][0],
                "contact_id": planned[k][1],
                "kind": k[0],
                "value": k[1],
                "display_name": names.get(k),
                "created_at": now,
            }
            for k in missing
        ],
        conflict=("kind", "value"),
        returning=("kind", "value"),
    )
    won = {(r[0], r[1]) for r in inserted}
    lost = [k for k in missing if k not in won]
    for k in missing:
        if k in won:
            found[k] = planned[k]
            created.add(planned[k][1])
    if lost:
        # A concurrent transaction created these identities first: use its contacts and
        # drop the ones we made for nothing.
        await conn.execute(
            delete(_contact).where(_contact.c.id.in_(_padded(planned[k][1] for k in lost)))
        )
        for kind, value, ident_id, contact_id in await _select_identities(conn, lost):
            found[(kind, value)] = (ident_id, contact_id)
    return found, created


async def _store_messages(
    conn: AsyncConnection,
    items: Sequence[Prepared],
    fresh: list[int],
    raw_ids: dict[tuple[uuid.UUID, str], uuid.UUID],
    results: list[IngestResult | None],
    events: list[Event],
    reopen_window: timedelta,
    now: datetime,
) -> None:
    identities, new_contacts = await _resolve_contacts(conn, items, fresh, now)
    ident_of = {i: _identity(items[i]) for i in fresh}
    contact_of = {i: identities[ident_of[i]][1] for i in fresh}
    cutoff = now - reopen_window

    # 2. Candidate conversations (open, pending, snoozed, or resolved within the window)
    #    of these contacts on these channels, and the conversations holding the cited
    #    Message-IDs; then route every message in order (timeline/routing.py).
    candidates, cited = await _candidates(conn, items, fresh, contact_of, cutoff)
    router = Router(candidates, cited, cutoff, new_id)
    chosen: dict[int, Candidate] = {}
    ordered = sorted(fresh, key=lambda i: (_effective_at(items[i], now), i))
    for i in ordered:
        item = items[i]
        chosen[i] = router.route(
            Arrival(
                item.channel_uuid,
                contact_of[i],
                item.grouping,
                item.references,
                item.rfc_message_id,
            )
        )

    # 3. Open the new conversations; a concurrent transaction may have opened the same
    #    thread first, and then its conversation is used.
    states: dict[uuid.UUID, _ConvState] = {}
    for i in ordered:
        conv = chosen[i]
        state = states.get(conv.id)
        if state is None:
            state = states[conv.id] = _ConvState(conv.id, is_new=conv.id in router.opened)
        state.add(_effective_at(items[i], now), items[i].inbound.thread.subject)
    new_convs = sorted((states[c] for c in router.opened if c in states), key=lambda s: str(s.id))
    if new_convs:
        lost = await _open_conversations(
            conn, [router.opened[s.id] for s in new_convs], states, now
        )
        if lost:
            await _adopt_existing(conn, lost, chosen, states)

    # 4. Lock the existing conversations, read their state as it is now, and wake them
    #    (pending, snoozed or resolved → open) in the statement that appends to them. The
    #    row lock is held to commit, so a concurrent resolve either commits first (and
    #    this message reopens it) or waits and sees the message.
    existing = sorted((s for s in states.values() if not s.is_new), key=lambda s: str(s.id))
    if existing:
        await _touch_existing(conn, existing)

    # 5. Messages (numbered in their conversation), attachments and timeline events.
    seq: dict[uuid.UUID, int] = {s.id: s.seq_base for s in states.values()}
    message_rows, attachment_rows, event_rows = [], [], []
    form_rows: list[dict[str, Any]] = []
    extras: list[Extras] = []
    replies: list[dict[str, Any]] = []
    for i in ordered:
        item = items[i]
        state = states[chosen[i].id]
        inbound = item.inbound
        ident_id, contact_id = identities[ident_of[i]]
        if item.author is not None:
            # In a group the conversation's contact is the group; who wrote is the member.
            ident_id = identities[item.author][0]
        raw_id = raw_ids[(item.channel_uuid, item.external_id)]
        message_id = new_id()
        at = _effective_at(item, now)
        seq[state.id] += 1
        message_rows.append(
            {
                "id": message_id,
                "conversation_id": state.id,
                "channel_id": item.channel_uuid,
                "contact_id": contact_id,
                "direction": Direction.IN.value,
                "kind": MessageKind.MESSAGE.value,
                "private": False,
                "external_id": item.external_id,
                "rfc_message_id": item.rfc_message_id,
                "sender_identity_id": ident_id,
                "author_id": None,
                "subject": inbound.thread.subject,
                "text": inbound.text,
                "reply_text": inbound.reply_text,
                "html": inbound.html,
                "auto_submitted": inbound.auto_submitted,
                "sent_at": inbound.sent_at,
                "created_at": now,
                "arrived_at": now,
                "seq": seq[state.id],
                "raw_id": raw_id,
                "delivery_state": None,
                "delivery_rank": 0,
                "delivery_error": None,
                "delivery_updated_at": None,
                "provider_message_id": None,
                "edited_at": None,
                "reply_to_id": None,
            }
        )
        if item.reply_to is not None:
            replies.append(
                {"b_id": message_id, "b_channel": item.channel_uuid, "b_external": item.reply_to}
            )
        for stored in item.attachments:
            attachment_rows.append(
                {
                    "id": new_id(),
                    "message_id": message_id,
                    "sha256": stored.sha256,
                    "size": stored.size,
                    "content_type": stored.source.content_type,
                    "filename": stored.source.filename,
                    "inline": stored.source.inline,
                    "content_id": stored.source.content_id,
                    "created_at": now,
                }
            )
        if item.deferred or item.offered or inbound.attribution or inbound.language:
            extras.append(
                Extras(
                    message_id,
                    state.id,
                    identities[item.author][1] if item.author is not None else contact_id,
                    item.channel_uuid,
                    at,
                    item.deferred,
                    item.offered,
                    inbound.attribution,
                    inbound.attribution_event,
                    inbound.language,
                )
            )
        ids = {
            "message_id": str(message_id),
            "conversation_id": str(state.id),
            "contact_id": str(contact_id),
            "channel_id": str(item.channel_uuid),
        }
        if contact_id in new_contacts:
            new_contacts.discard(contact_id)
            event_rows.append(_event_row(contact_id, None, None, "contact.created", now, {}))
            events.append(Event("contact.created", {"contact_id": str(contact_id)}))
        conv_ids = {k: v for k, v in ids.items() if k != "message_id"}
        if not state.announced and (state.is_new or state.woken_from is not None):
            state.announced = True
            data: dict[str, Any] = {"channel_id": str(item.channel_uuid)}
            if state.is_new:
                kind, bus_kind = "conversation.opened", "conversation.created"
            else:
                kind = bus_kind = "conversation.reopened"
                data["from"] = state.woken_from
            event_rows.append(_event_row(contact_id, state.id, None, kind, at, data))
            events.append(
                Event(bus_kind, {**conv_ids, **{k: data[k] for k in ("from",) if k in data}})
            )
        event_rows.append(
            _event_row(
                contact_id,
                state.id,
                message_id,
                "message.received",
                at,
                # Imported history is marked, so that what reacts to new messages (routing
                # rules, automatic replies) leaves it alone.
                {
                    "channel_id": str(item.channel_uuid),
                    **({"history": True} if item.history else {}),
                },
            )
        )
        events.append(Event("message.created", {**ids, "direction": Direction.IN.value}))
        if inbound.form is not None:
            form_rows.append(_form_row(inbound.form, message_id, contact_id, now))
        results[i] = IngestResult(
            "created",
            raw_id=raw_id,
            message_id=message_id,
            conversation_id=state.id,
            contact_id=contact_id,
        )
    message_rows.sort(key=lambda row: (str(row["channel_id"]), row["external_id"]))
    await insert_rows(conn, _msg, message_rows)
    await insert_rows(conn, _attach, attachment_rows)
    await insert_rows(conn, _event, event_rows)
    await insert_rows(conn, _form_submission, form_rows)
    if replies:
        # After the insert, so a reply to a message of this same batch finds it too.
        await conn.execute(_LINK_REPLY, replies)
    if extras:
        await store_extras(conn, extras, events, now)

    # 6. Contacts' last activity, for "most recent customers" lists; never backwards.
    latest: dict[uuid.UUID, datetime] = {}
    for i in fresh:
        contact_id, at = contact_of[i], _effective_at(items[i], now)
        latest[contact_id] = max(latest.get(contact_id, at), at)
    await conn.execute(
        _TOUCH_CONTACT,
        [
            {"b_id": contact_id, "b_at": latest[contact_id]}
            for contact_id in sorted(latest, key=str)
        ],
    )


def _form_row(
    form: FormRecord, message_id: uuid.UUID, contact_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "form_id": uuid.UUID(form.form_id),
        "message_id": message_id,
        "contact_id": contact_id,
        "attribution": dict(form.attribution),
        "ip": form.ip,
        "created_at": now,
    }


def _raw_row(
    item: Prepared, raw_id: uuid.UUID, now: datetime, status: ParseStatus, error: str | None
) -> dict[str, Any]:
    raw = item.inbound.raw
    return {
        "id": raw_id,
        "channel_id": item.channel_uuid,
        "external_id": item.external_id,
        "content_type": cut(raw.content_type, CONTENT_TYPE_LENGTH)
        if raw
        else "application/x-switchboard-none",
        "body": raw.data if raw else None,
        "inbound": item.inbound_json if status is not ParseStatus.OK else None,
        "parse_status": status.value,
        "error": error,
        "received_at": now,
    }


async def flag_refused(
    conn: AsyncConnection, item: Prepared, reason: str, now: datetime
) -> uuid.UUID | None:
    """Keep a message the database refused as a flagged raw payload (its own transaction).

    Returns the raw row's id, or None when the message is stored after all (a concurrent
    delivery of it succeeded), in which case the caller reads it as a duplicate.
    """
    row = _raw_row(item, new_id(), now, ParseStatus.FAILED, reason)
    stmt = _upsert_insert(conn, _raw).values(row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["channel_id", "external_id"],
        set_={
            "parse_status": stmt.excluded.parse_status,
            "error": stmt.excluded.error,
            "inbound": stmt.excluded.inbound,
        },
        where=_raw.c.parse_status != ParseStatus.OK.value,
    ).returning(_raw.c.id)
    return cast(uuid.UUID | None, (await conn.execute(stmt)).scalar())


def _effective_at(item: Prepared, now: datetime) -> datetime:
    """When a message counts as having happened: its arrival, unless it is imported history.

    The sender's clock orders nothing live: an email dated 2099 would otherwise pin its
    conversation to the top of every list. Imported history keeps its own dates, and a
    date in the future still counts as now.
    """
    if item.history:
        return min(item.inbound.sent_at, now)
    return now


async def _candidates(
    conn: AsyncConnection,
    items: Sequence[Prepared],
    fresh: list[int],
    contact_of: dict[int, uuid.UUID],
    cutoff: datetime,
) -> tuple[list[Candidate], dict[tuple[uuid.UUID, str], uuid.UUID]]:
    """Conversations routing may choose from, and which conversation holds each cited id."""
    pairs = {(items[i].channel_uuid, contact_of[i]) for i in fresh}
    routed = [i for i in fresh if items[i].grouping is not Grouping.MESSAGE]
    found: dict[uuid.UUID, Candidate] = {}
    if routed:
        # Plain IN lists (which the indexes serve) rather than row-value IN, which
        # PostgreSQL plans poorly for hundreds of pairs; the exact pairs are picked here.
        rows = await conn.execute(
            select(*_CANDIDATE_COLUMNS).where(
                _conv.c.contact_id.in_(_padded(contact_of[i] for i in routed)),
                or_(
                    _conv.c.status != ConversationStatus.RESOLVED.value,
                    _conv.c.resolved_at >= cutoff,
                ),
            )
        )
        for row in rows:
            if (row.channel_id, row.contact_id) in pairs:
                found[row.id] = _candidate(row)
    cited: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    refs = {(items[i].channel_uuid, r) for i in fresh for r in items[i].references}
    if refs:
        rows = await conn.execute(
            select(_msg.c.channel_id, _msg.c.rfc_message_id, *_CANDIDATE_COLUMNS)
            .select_from(_msg.join(_conv, _conv.c.id == _msg.c.conversation_id))
            .where(
                _msg.c.rfc_message_id.in_(_padded(r[1] for r in refs)),
                _msg.c.channel_id.in_(_padded(r[0] for r in refs)),
            )
        )
        for row in rows:
            if (row[0], row[1]) in refs:
                cited[(row[0], row[1])] = row.id
                found.setdefault(row.id, _candidate(row))
    return list(found.values()), cited


_CANDIDATE_COLUMNS = (
    _conv.c.id,
    _conv.c.channel_id,
    _conv.c.contact_id,
    _conv.c.status,
    _conv.c.thread_key,
    _conv.c.resolved_at,
)


def _candidate(row: Any) -> Candidate:
    return Candidate(
        row.id, row.channel_id, row.contact_id, row.status, row.thread_key, row.resolved_at
    )


async def _open_conversations(
    conn: AsyncConnection,
    opened: list[Candidate],
    states: dict[uuid.UUID, _ConvState],
    now: datetime,
) -> list[Candidate]:
    """Insert new conversations; returns those whose thread another transaction opened."""
    rows = []
    for conv in opened:
        state = states[conv.id]
        rows.append(
            {
                "id": conv.id,
                "contact_id": conv.contact_id,
                "channel_id": conv.channel_id,
                "status": ConversationStatus.OPEN.value,
                "subject": state.subject,
                "thread_key": conv.thread_key,
                "created_at": now,
                "last_activity_at": state.last_at,
                "first_inbound_at": state.first_at,
                "waiting_since": state.first_at,
                "last_inbound_at": state.last_at,
                "message_count": state.count,
                "last_seq": state.count,
                "reopen_count": 0,
            }
        )
    inserted = await insert_rows(
        conn,
        _conv,
        rows,
        conflict=("channel_id", "contact_id", "thread_key"),
        conflict_where=OPEN_THREAD_WHERE,  # the partial index's predicate, verbatim
        returning=("id",),
    )
    won = {r[0] for r in inserted}
    return [conv for conv in opened if conv.id not in won]


async def _adopt_existing(
    conn: AsyncConnection,
    lost: list[Candidate],
    chosen: dict[int, Candidate],
    states: dict[uuid.UUID, _ConvState],
) -> None:
    """Another transaction opened these threads first: move our messages to its conversations."""
    rows = await conn.execute(
        select(*_CANDIDATE_COLUMNS).where(
            _conv.c.contact_id.in_(_padded(c.contact_id for c in lost)),
            _conv.c.status != ConversationStatus.RESOLVED.value,
            _conv.c.thread_key.is_not(None),
        )
    )
    winner = {(r.channel_id, r.contact_id, r.thread_key): _candidate(r) for r in rows}
    replacements: dict[uuid.UUID, Candidate] = {}
    for conv in lost:
        found = winner.get((conv.channel_id, conv.contact_id, conv.thread_key))
        if found is None:
            # The winner was resolved before we could read it: start the batch again.
            raise RetryBatch("conversation thread taken by a conversation no longer open")
        replacements[conv.id] = found
        mine = states.pop(conv.id)
        state = states.get(found.id)
        if state is None:
            states[found.id] = dataclasses.replace(mine, id=found.id, is_new=False)
        else:
            state.merge(mine)
    for index, current in chosen.items():
        chosen[index] = replacements.get(current.id, current)


async def _touch_existing(conn: AsyncConnection, existing: list[_ConvState]) -> None:
    """Lock, re-read and update the existing conversations a batch appends to."""
    locked = (
        await conn.execute(
            select(_conv.c.id, _conv.c.status, _conv.c.last_seq)
            .where(_conv.c.id.in_(_padded(s.id for s in existing)))
            .order_by(_conv.c.id)
            .with_for_update()
        )
    ).all()
    current = {row.id: row for row in locked}
    params = []
    for state in existing:
        row = current.get(state.id)
        if row is None:
            # Deleted since it was chosen: route the batch again.
            raise RetryBatch(f"conversation {state.id} disappeared")
        state.seq_base = row.last_seq
        if row.status != ConversationStatus.OPEN.value:
            state.woken_from = row.status
        params.append(
            {
                "b_id": state.id,
                "b_reopened": 1 if row.status == ConversationStatus.RESOLVED.value else 0,
                "b_seq": row.last_seq + state.count,
                "b_count": state.count,
                "b_last": state.last_at,
                "b_first": state.first_at,
            }
        )
    await conn.execute(_TOUCH_CONVERSATION, params)


async def _select_identities(
    conn: AsyncConnection, keys: list[tuple[str, str]]
) -> list[tuple[str, str, uuid.UUID, uuid.UUID]]:
    """(kind, value, identity id, contact id) of the given identities that exist.

    Read under a share lock (PostgreSQL; SQLite serializes writers anyway): a merge moves
    identities to the surviving contact, so a message from a contact being merged waits
    for the merge and lands on the survivor, instead of on the contact merged away (whose
    rows the merge has already moved). A merge waiting on ingestion's lock deadlocks with
    it at worst, and both retry.
    """
    wanted = set(keys)
    rows = await conn.execute(
        select(_ident.c.kind, _ident.c.value, _ident.c.id, _ident.c.contact_id)
        .where(
            _ident.c.kind.in_(_padded(k[0] for k in keys)),
            _ident.c.value.in_(_padded(k[1] for k in keys)),
        )
        .with_for_update(read=True)
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows if (r[0], r[1]) in wanted]


def _identity(item: Prepared) -> tuple[str, str]:
    assert item.identity is not None, "flagged messages never reach this step"
    return item.identity


def _greatest(column: Any, value: Any) -> Any:
    # GREATEST() differs between the two databases in how it treats NULL; CASE does not.
    return case((or_(column.is_(None), column < value), value), else_=column)


_b_last = bindparam("b_last", type_=UTCDateTime())
_b_first = bindparam("b_first", type_=UTCDateTime())
# One statement for all touched conversations of a batch (executemany), not one each.
_TOUCH_CONVERSATION = (
    update(_conv)
    .where(_conv.c.id == bindparam("b_id"))
    .values(
        # A customer message leaves its conversation open, whatever it was. The counts are
        # computed from the row as read under the lock this transaction holds.
        status=ConversationStatus.OPEN.value,
        resolved_at=None,
        snoozed_until=None,
        reopen_count=_conv.c.reopen_count + bindparam("b_reopened"),
        last_seq=bindparam("b_seq"),
        message_count=_conv.c.message_count + bindparam("b_count"),
        last_activity_at=_greatest(_conv.c.last_activity_at, _b_last),
        last_inbound_at=_greatest(_conv.c.last_inbound_at, _b_last),
        first_inbound_at=func.coalesce(_conv.c.first_inbound_at, _b_first),
        waiting_since=func.coalesce(_conv.c.waiting_since, _b_first),
    )
)
_TOUCH_CONTACT = (
    update(_contact)
    .where(_contact.c.id == bindparam("b_id"))
    .values(
        last_activity_at=_greatest(
            _contact.c.last_activity_at, bindparam("b_at", type_=UTCDateTime())
        )
    )
)


_replied = _msg.alias("replied")
_LINK_REPLY = (
    update(_msg)
    .where(_msg.c.id == bindparam("b_id"))
    .values(
        reply_to_id=select(_replied.c.id)
        .where(
            _replied.c.channel_id == bindparam("b_channel"),
            _replied.c.external_id == bindparam("b_external"),
        )
        .scalar_subquery()
    )
)


def _event_row(
    contact_id: uuid.UUID,
    conversation_id: uuid.UUID | None,
    message_id: uuid.UUID | None,
    kind: str,
    at: datetime,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "contact_id": contact_id,
        "conversation_id": conversation_id,
        "message_id": message_id,
        "kind": kind,
        "data": data,
        "occurred_at": at,
    }
