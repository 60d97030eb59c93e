"""One ingestion transaction for a batch of inbound messages, in a few set-based statements.

Every step is settled by a unique index rather than by locks in memory, so several
processes may ingest at once: the raw payload's (channel, external id) claims the
message, identities' (kind, value) settles the contact, and the one-unresolved-
conversation-per-contact-and-channel index settles the conversation. Rows are written
in key order so concurrent batches on PostgreSQL take locks in the same order.
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
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.types import Inbound, InboundAttachment
from timeline.events import Event
from timeline.ids import new_id
from timeline.models import (
    Attachment,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Identity,
    Message,
    MessageKind,
    ParseStatus,
    RawInbound,
    TimelineEvent,
    UTCDateTime,
)

IngestStatus = Literal["created", "duplicate", "flagged"]

_raw = cast(Table, RawInbound.__table__)
_msg = cast(Table, Message.__table__)
_ident = cast(Table, Identity.__table__)
_contact = cast(Table, Contact.__table__)
_conv = cast(Table, Conversation.__table__)
_event = cast(Table, TimelineEvent.__table__)
_attach = cast(Table, Attachment.__table__)


class RetryBatch(Exception):
    """A race with another transaction that only a fresh attempt can settle."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one inbound message."""

    status: IngestStatus  # created; duplicate (already stored); flagged (kept raw, no message)
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

    inbound: Inbound
    channel_uuid: uuid.UUID
    identity: tuple[str, str] | None  # (kind, normalized value); None → flagged
    flag_reason: str | None
    inbound_json: dict[str, Any] | None
    attachments: tuple[StoredAttachment, ...] = ()
    references: tuple[str, ...] = ()  # normalized thread references, most relevant first
    rfc_message_id: str | None = None


@dataclass(slots=True, eq=False)  # identity semantics: one state per conversation
class _ConvState:
    id: uuid.UUID
    is_new: bool
    subject: str | None = None
    thread_key: str | None = None
    channel_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    reopened: bool = False
    announced: bool = False  # its opening was recorded in the timeline
    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None


@dataclass(slots=True)
class BatchOutcome:
    """Results in input order, and the events to publish once the transaction commits."""

    results: list[IngestResult]
    events: list[Event] = field(default_factory=list)


_T = TypeVar("_T")


def _bulk(table: Table) -> Any:
    """A many-row INSERT sent as multi-row VALUES statements instead of one per row.

    SQLAlchemy batches executemany into "insertmanyvalues" only when RETURNING is asked
    for; asking for the (already known) ids is what buys the batching.
    """
    return insert(table).returning(table.c.id)


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
        key = (item.channel_uuid, item.inbound.external_id)
        if key in first_of:
            repeats.append((index, first_of[key]))
        else:
            first_of[key] = index
    raw_ids = {key: new_id() for key in first_of}
    raw_rows = []
    for key in sorted(first_of, key=lambda k: (str(k[0]), k[1])):
        item = items[first_of[key]]
        raw = item.inbound.raw
        raw_rows.append(
            {
                "id": raw_ids[key],
                "channel_id": key[0],
                "external_id": key[1],
                "content_type": raw.content_type if raw else "application/x-switchboard-none",
                "body": raw.data if raw else None,
                "inbound": item.inbound_json,
                "parse_status": (
                    ParseStatus.OK.value if item.identity else ParseStatus.NO_IDENTITY.value
                ),
                "error": item.flag_reason,
                "received_at": now,
            }
        )
    stmt = (
        _upsert_insert(conn, _raw)
        .on_conflict_do_nothing(index_elements=["channel_id", "external_id"])
        .returning(_raw.c.channel_id, _raw.c.external_id)
    )
    claimed = {(row[0], row[1]) for row in (await conn.execute(stmt, raw_rows)).all()}
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

    if fresh:
        await _store_messages(conn, items, fresh, raw_ids, results, events, reopen_window, now)

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


async def _resolve_duplicates(
    conn: AsyncConnection,
    items: Sequence[Prepared],
    indexes: list[int],
    results: list[IngestResult | None],
) -> None:
    keys = [(items[i].channel_uuid, items[i].inbound.external_id) for i in indexes]
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
    wanted: dict[tuple[str, str], int] = {}
    for i in fresh:
        ident = items[i].identity
        if ident is not None:
            wanted.setdefault(ident, i)
    keys = sorted(wanted)
    found: dict[tuple[str, str], tuple[uuid.UUID, uuid.UUID]] = {}
    for kind, value, ident_id, contact_id in await _select_identities(conn, keys):
        found[(kind, value)] = (ident_id, contact_id)
    missing = [k for k in keys if k not in found]
    created: set[uuid.UUID] = set()
    if not missing:
        return found, created

    names: dict[tuple[str, str], str | None] = {}
    for k in missing:
        sender = items[wanted[k]].inbound.sender
        names[k] = sender.display_name if sender else None
    planned = {k: (new_id(), new_id()) for k in missing}
    await conn.execute(
        _bulk(_contact),
        [
            {
                "id": planned[k][1],
                "name": names.get(k),
                "lifecycle_stage": "new",
                "created_at": now,
                "updated_at": now,
                "last_activity_at": now,
            }
            for k in missing
        ],
    )
    stmt = (
        _upsert_insert(conn, _ident)
        .on_conflict_do_nothing(index_elements=["kind", "value"])
        .returning(_ident.c.kind, _ident.c.value)
    )
    won = {
        (r[0], r[1])
        for r in await conn.execute(
            stmt,
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
        )
    }
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

    # 2. Candidate conversations: unresolved or recently resolved ones of these contacts on
    #    these channels, and (email) the conversations holding the referenced Message-IDs.
    pairs = sorted({(items[i].channel_uuid, contact_of[i]) for i in fresh}, key=str)
    slots: dict[tuple[uuid.UUID, uuid.UUID], _ConvState] = {}
    recent: dict[tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, datetime]] = {}
    # Plain IN lists (which the indexes serve) rather than row-value IN, which PostgreSQL
    # plans poorly for hundreds of pairs; the exact pairs are picked out here.
    wanted_pairs = set(pairs)
    rows = await conn.execute(
        select(
            _conv.c.id, _conv.c.channel_id, _conv.c.contact_id, _conv.c.status, _conv.c.resolved_at
        ).where(
            _conv.c.contact_id.in_(_padded(p[1] for p in pairs)),
            or_(_conv.c.status != ConversationStatus.RESOLVED.value, _conv.c.resolved_at >= cutoff),
        )
    )
    for conv_id, channel_id, contact_id, status, resolved_at in rows:
        pair = (channel_id, contact_id)
        if pair not in wanted_pairs:
            continue
        if status != ConversationStatus.RESOLVED.value:
            slots[pair] = _ConvState(conv_id, is_new=False)
        elif resolved_at is not None and (pair not in recent or recent[pair][1] < resolved_at):
            recent[pair] = (conv_id, resolved_at)

    threaded: dict[tuple[uuid.UUID, str], _ThreadHit] = {}
    refs = sorted({(items[i].channel_uuid, r) for i in fresh for r in items[i].references}, key=str)
    if refs:
        thread_rows = await conn.execute(
            select(
                _msg.c.channel_id,
                _msg.c.rfc_message_id,
                _conv.c.id,
                _conv.c.contact_id,
                _conv.c.status,
                _conv.c.resolved_at,
            )
            .select_from(_msg.join(_conv, _conv.c.id == _msg.c.conversation_id))
            .where(
                _msg.c.rfc_message_id.in_(_padded(r[1] for r in refs)),
                _msg.c.channel_id.in_(_padded(r[0] for r in refs)),
            )
        )
        wanted_refs = set(refs)
        for row in thread_rows:
            if (row[0], row[1]) in wanted_refs:
                threaded[(row[0], row[1])] = (row[2], row[3], row[4], row[5])

    # 3. Choose each message's conversation, in arrival order, so a later message of the
    #    batch sees the conversation an earlier one opened.
    convs: dict[uuid.UUID, _ConvState] = {s.id: s for s in slots.values()}
    reopen: list[uuid.UUID] = []
    chosen: dict[int, _ConvState] = {}
    ordered = sorted(fresh, key=lambda i: (items[i].inbound.sent_at, i))
    for i in ordered:
        item = items[i]
        pair = (item.channel_uuid, contact_of[i])
        state = _thread_match(item, pair, threaded, slots, convs, cutoff)
        if state is None and pair in slots:
            state = slots[pair]
        if state is None and pair in recent:
            state = convs.setdefault(recent[pair][0], _ConvState(recent[pair][0], is_new=False))
            state.reopened = True
        if state is None:
            state = _ConvState(
                new_id(),
                is_new=True,
                subject=item.inbound.thread.subject,
                thread_key=_thread_key(item),
                channel_id=pair[0],
                contact_id=pair[1],
            )
            convs[state.id] = state
        if state.reopened and state.id not in reopen:
            reopen.append(state.id)
        slots[pair] = state
        sent_at = item.inbound.sent_at
        state.count += 1
        state.first_at = sent_at if state.first_at is None else min(state.first_at, sent_at)
        state.last_at = sent_at if state.last_at is None else max(state.last_at, sent_at)
        chosen[i] = state
        if item.rfc_message_id:
            threaded[(item.channel_uuid, item.rfc_message_id)] = (
                state.id,
                pair[1],
                ConversationStatus.OPEN.value,
                None,
            )

    # 4. Open new conversations; a concurrent transaction may have opened the slot first.
    new_convs = sorted((s for s in convs.values() if s.is_new), key=lambda s: str(s.id))
    if new_convs:
        stmt = (
            _upsert_insert(conn, _conv)
            .on_conflict_do_nothing(
                index_elements=["channel_id", "contact_id"],
                index_where=text("status <> 'resolved'"),  # the partial index, verbatim
            )
            .returning(_conv.c.id)
        )
        opened = {
            r[0]
            for r in await conn.execute(
                stmt,
                [
                    {
                        "id": s.id,
                        "contact_id": s.contact_id,
                        "channel_id": s.channel_id,
                        "status": ConversationStatus.OPEN.value,
                        "subject": s.subject,
                        "thread_key": s.thread_key,
                        "created_at": now,
                        "last_activity_at": s.last_at,
                        "first_inbound_at": s.first_at,
                        "waiting_since": s.first_at,
                        "last_inbound_at": s.last_at,
                        "message_count": s.count,
                        "reopen_count": 0,
                    }
                    for s in new_convs
                ],
            )
        }
        lost = [s for s in new_convs if s.id not in opened]
        if lost:
            await _adopt_existing(conn, lost, chosen)
    if reopen:
        await conn.execute(
            update(_conv)
            .where(
                _conv.c.id.in_(_padded(reopen)),
                _conv.c.status == ConversationStatus.RESOLVED.value,
            )
            .values(
                status=ConversationStatus.OPEN.value,
                resolved_at=None,
                reopen_count=_conv.c.reopen_count + 1,
            )
        )
    # Adopted conversations are no longer new, so this one statement touches them too.
    existing = sorted((s for s in set(chosen.values()) if not s.is_new), key=lambda s: str(s.id))
    if existing:
        await conn.execute(_TOUCH_CONVERSATION, [_touch_params(state) for state in existing])

    # 5. Messages, attachments and timeline events.
    message_rows, attachment_rows, event_rows = [], [], []
    for i in sorted(
        fresh, key=lambda i: (str(items[i].channel_uuid), items[i].inbound.external_id)
    ):
        item, state = items[i], chosen[i]
        inbound = item.inbound
        ident_id, contact_id = identities[ident_of[i]]
        raw_id = raw_ids[(item.channel_uuid, inbound.external_id)]
        message_id = new_id()
        message_rows.append(
            {
                "id": message_id,
                "conversation_id": state.id,
                "channel_id": item.channel_uuid,
                "contact_id": contact_id,
                "direction": Direction.IN.value,
                "kind": MessageKind.MESSAGE.value,
                "private": False,
                "external_id": inbound.external_id,
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
                "raw_id": raw_id,
                "delivery_state": None,
                "delivery_rank": 0,
                "delivery_error": None,
                "delivery_updated_at": None,
                "provider_message_id": None,
            }
        )
        for stored in item.attachments:
            attachment_rows.append(
                {
                    "id": new_id(),
                    "message_id": message_id,
                    "sha256": stored.sha256,
                    "size": stored.size,
                    "content_type": stored.source.content_type[:255],
                    "filename": (stored.source.filename or None) and stored.source.filename[:255],
                    "inline": stored.source.inline,
                    "content_id": stored.source.content_id,
                    "created_at": now,
                }
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
        if not state.announced and (state.is_new or state.reopened):
            state.announced = True
            kind = "conversation.opened" if state.is_new else "conversation.reopened"
            event_rows.append(
                _event_row(
                    contact_id, state.id, None, kind, now, {"channel_id": str(item.channel_uuid)}
                )
            )
            bus_kind = "conversation.created" if state.is_new else "conversation.reopened"
            events.append(Event(bus_kind, conv_ids))
        event_rows.append(
            _event_row(
                contact_id,
                state.id,
                message_id,
                "message.received",
                inbound.sent_at,
                {"channel_id": str(item.channel_uuid)},
            )
        )
        events.append(Event("message.created", {**ids, "direction": Direction.IN.value}))
        results[i] = IngestResult(
            "created",
            raw_id=raw_id,
            message_id=message_id,
            conversation_id=state.id,
            contact_id=contact_id,
        )
    await conn.execute(_bulk(_msg), message_rows)
    if attachment_rows:
        await conn.execute(_bulk(_attach), attachment_rows)
    await conn.execute(_bulk(_event), event_rows)

    # 6. Contacts' last activity, for "most recent customers" lists.
    latest: dict[uuid.UUID, datetime] = {}
    for i in fresh:
        contact_id, sent_at = contact_of[i], items[i].inbound.sent_at
        latest[contact_id] = max(latest.get(contact_id, sent_at), sent_at)
    await conn.execute(
        _TOUCH_CONTACT,
        [
            {"b_id": contact_id, "b_at": latest[contact_id]}
            for contact_id in sorted(latest, key=str)
        ],
    )


_ThreadHit = tuple[uuid.UUID, uuid.UUID, str, datetime | None]


async def _select_identities(
    conn: AsyncConnection, keys: list[tuple[str, str]]
) -> list[tuple[str, str, uuid.UUID, uuid.UUID]]:
    """(kind, value, identity id, contact id) of the given identities that exist."""
    wanted = set(keys)
    rows = await conn.execute(
        select(_ident.c.kind, _ident.c.value, _ident.c.id, _ident.c.contact_id).where(
            _ident.c.kind.in_(_padded(k[0] for k in keys)),
            _ident.c.value.in_(_padded(k[1] for k in keys)),
        )
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows if (r[0], r[1]) in wanted]


def _identity(item: Prepared) -> tuple[str, str]:
    assert item.identity is not None, "flagged messages never reach this step"
    return item.identity


def _thread_match(
    item: Prepared,
    pair: tuple[uuid.UUID, uuid.UUID],
    threaded: dict[tuple[uuid.UUID, str], _ThreadHit],
    slots: dict[tuple[uuid.UUID, uuid.UUID], _ConvState],
    convs: dict[uuid.UUID, _ConvState],
    cutoff: datetime,
) -> _ConvState | None:
    """The conversation an email reply belongs to: same channel and the same contact only."""
    for ref in item.references:
        hit = threaded.get((item.channel_uuid, ref))
        # Never attach a message to another person's thread, whatever it cites.
        if hit is None or hit[1] != pair[1]:
            continue
        conv_id, _contact_id, status, resolved_at = hit
        if conv_id in convs:
            return convs[conv_id]
        if status != ConversationStatus.RESOLVED.value:
            return convs.setdefault(conv_id, _ConvState(conv_id, is_new=False))
        open_slot = slots.get(pair)
        if resolved_at is not None and resolved_at >= cutoff and open_slot is None:
            state = convs.setdefault(conv_id, _ConvState(conv_id, is_new=False))
            state.reopened = True
            return state
        return None
    return None


def _thread_key(item: Prepared) -> str | None:
    hints = item.inbound.thread
    if item.references:
        return item.references[-1][:500]
    if item.rfc_message_id:
        return item.rfc_message_id[:500]
    return hints.chat_id[:500] if hints.chat_id else None


async def _adopt_existing(
    conn: AsyncConnection, lost: list[_ConvState], chosen: dict[int, _ConvState]
) -> None:
    """Another transaction opened these slots first: move our messages to its conversations."""
    pairs = [(s.channel_id, s.contact_id) for s in lost]
    rows = await conn.execute(
        select(_conv.c.id, _conv.c.channel_id, _conv.c.contact_id).where(
            tuple_(_conv.c.channel_id, _conv.c.contact_id).in_(_padded(pairs)),
            _conv.c.status != ConversationStatus.RESOLVED.value,
        )
    )
    winner = {(r[1], r[2]): r[0] for r in rows}
    replacements: dict[uuid.UUID, _ConvState] = {}
    for state in lost:
        conv_id = winner.get((state.channel_id, state.contact_id))
        if conv_id is None:
            # The winner was resolved before we could read it: start the batch again.
            raise RetryBatch("conversation slot taken by a conversation no longer open")
        replacements[state.id] = _ConvState(
            conv_id, is_new=False, count=state.count, first_at=state.first_at, last_at=state.last_at
        )
    for index, current in chosen.items():
        chosen[index] = replacements.get(current.id, current)


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


def _touch_params(state: _ConvState) -> dict[str, Any]:
    """Fold a batch's inbound messages into an existing conversation's counters."""
    return {
        "b_id": state.id,
        "b_count": state.count,
        "b_last": state.last_at,
        "b_first": state.first_at,
    }


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
