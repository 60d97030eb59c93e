"""A person's data on request (GDPR articles 15, 17 and 20): export everything held about
a contact as a zip, or erase it.

Export writes the zip to a file the caller names, row by row (messages and raw payloads
are streamed from the database, files copied from the blob store), so memory stays
bounded however long the history. `contact.json` holds every column of every row about
the contact; `attachments/<message id>/<file name>` and `raw/<id>.<ext>` the files.

Erase keeps the contact row as a tombstone (`erased_at`) with its conversations and
messages, so report counts and lifecycle figures stay valid, and removes what identifies
the person: texts, identities, raw payloads, files, notes, tags, attributes, the
personal parts of timeline events and form submissions. What it deliberately keeps:

- the raw rows' (channel, external id) with their payload emptied. Ingestion claims a
  message by inserting that pair (timeline/ingest_batch.py), so a redelivered webhook or
  a re-fetched email stays a duplicate instead of bringing the person back;
- provider ids (external ids, Message-IDs, Twilio SIDs) for the same reason. A Telegram
  message id contains its chat id, a pseudonymous number;
- lifecycle stage and lifetime value, which reports sum.

Blob files are shared by content (timeline/files.py): a file is removed, after commit,
only when no attachment row references its digest any more.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
import unicodedata
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import (
    CursorResult,
    Delete,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import ContactNote, IdempotencyKey, Task
from inbox.webhook_delivery import scrub_contact_deliveries
from timeline.events import Event
from timeline.files import blob_path
from timeline.merge import ContactNotFound, lock_contacts
from timeline.models import (
    Attachment,
    AttachmentFetch,
    Contact,
    ContactAttribute,
    ContactReachability,
    ContactTag,
    Conversation,
    DeliveryAttempt,
    FormSubmission,
    Identity,
    MergeSuggestion,
    Message,
    OutboundJob,
    RawInbound,
    TimelineEvent,
)

ERASED = "contact.erased"
ERASED_TEXT = "[erased]"
ERASED_CONTENT_TYPE = "application/x-switchboard-erased"

# Timeline event data kept on erase: ids, states and counts, never anything a person
# typed or is known by. A key is kept only when it is one of these and its value looks
# like an id, a number, or a lowercase code ("lead", "resolved", "phone"); every other
# key (previous_text, attribution, identity values, titles, reasons, details) goes.
_SAFE_EVENT_KEYS = frozenset(
    {
        "by",
        "actor_id",
        "assignee_id",
        "channel_id",
        "conversation_id",
        "message_id",
        "note_id",
        "task_id",
        "merged_id",
        "survivor_id",
        "other_contact_id",
        "suggestion_id",
        "status",
        "direction",
        "moved",
        "from",
        "to",
        "kind",
        "due_at",
    }
)
_CODE = re.compile(r"[a-z_.]{1,40}")
# Telegram edits are stored under "<original external id>:edit:<seconds>"
# (connectors/telegram/updates.py): their raw payloads are the person's too.
_EDIT_MARK = ":edit:"
_STREAM_BATCH = 200
_NAME_LENGTH = 120


class ContactMerged(Exception):
    """The contact was merged into another, which now holds its data."""

    def __init__(self, survivor_id: uuid.UUID) -> None:
        super().__init__(f"this contact was merged into {survivor_id}; use that one")
        self.survivor_id = survivor_id


# --- export ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What went into an export."""

    messages: int
    files: int
    missing_files: int  # attachment rows whose blob is gone from the store
    raw_payloads: int


async def export_contact(
    session: AsyncSession, contact_id: uuid.UUID, data_dir: Path, target: Path
) -> ExportSummary:
    """Write everything held about the contact to a zip at `target` (ContactNotFound if
    there is no such contact)."""
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise ContactNotFound("no such contact")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("contact.json", "w", force_zip64=True) as entry:
            messages = await _write_json(session, entry, contact_id)
        files, missing = await _write_files(session, archive, contact_id, data_dir)
        raw = await _write_raw(session, archive, contact_id)
    return ExportSummary(messages=messages, files=files, missing_files=missing, raw_payloads=raw)


def _columns(table: Any) -> Select[Any]:
    return select(*cast(Table, table.__table__).c)


def _jsonable(value: object) -> object:
    if isinstance(value, uuid.UUID | datetime):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    if isinstance(value, bytes):
        return None  # only raw payloads are bytes; they are files of their own
    raise TypeError(f"cannot export {type(value).__name__}")


def _dump(row: RowMapping) -> bytes:
    return json.dumps(dict(row), default=_jsonable, ensure_ascii=False).encode()


async def _rows(
    session: AsyncSession, statement: Select[*tuple[Any, ...]]
) -> AsyncIterator[RowMapping]:
    # Core rows, not ORM objects: nothing accumulates in the session's identity map.
    result = await session.stream(statement.execution_options(yield_per=_STREAM_BATCH))
    async for row in result.mappings():
        yield row


async def _write_json(session: AsyncSession, entry: IO[bytes], contact_id: uuid.UUID) -> int:
    """contact.json, one section after another; returns how many messages it holds."""
    mine = _messages_of(contact_id)
    sections: list[tuple[str, Select[Any]]] = [
        ("contact", _columns(Contact).where(Contact.id == contact_id)),
        ("merged_contacts", _columns(Contact).where(Contact.merged_into_id == contact_id)),
        ("identities", _columns(Identity).where(Identity.contact_id == contact_id)),
        ("tags", _columns(ContactTag).where(ContactTag.contact_id == contact_id)),
        ("attributes", _columns(ContactAttribute).where(ContactAttribute.contact_id == contact_id)),
        (
            "reachability",
            _columns(ContactReachability).where(ContactReachability.contact_id == contact_id),
        ),
        (
            "conversations",
            _columns(Conversation)
            .where(Conversation.contact_id == contact_id)
            .order_by(Conversation.created_at, Conversation.id),
        ),
        (
            "messages",
            _columns(Message)
            .where(Message.contact_id == contact_id)
            .order_by(Message.conversation_id, Message.seq, Message.id),
        ),
        (
            "attachments",
            _columns(Attachment)
            .where(Attachment.message_id.in_(mine))
            .order_by(Attachment.message_id, Attachment.created_at, Attachment.id),
        ),
        (
            "timeline_events",
            _columns(TimelineEvent)
            .where(TimelineEvent.contact_id == contact_id)
            .order_by(TimelineEvent.occurred_at, TimelineEvent.id),
        ),
        (
            "notes",
            _columns(ContactNote)
            .where(ContactNote.contact_id == contact_id)
            .order_by(ContactNote.created_at, ContactNote.id),
        ),
        (
            "tasks",
            _columns(Task).where(Task.contact_id == contact_id).order_by(Task.due_at, Task.id),
        ),
        (
            "form_submissions",
            _columns(FormSubmission)
            .where(FormSubmission.contact_id == contact_id)
            .order_by(FormSubmission.created_at, FormSubmission.id),
        ),
    ]
    messages = 0
    entry.write(b"{")
    for index, (name, statement) in enumerate(sections):
        entry.write((", " if index else "").encode() + json.dumps(name).encode() + b": ")
        if name == "contact":
            async for row in _rows(session, statement):
                entry.write(_dump(row))
            continue
        entry.write(b"[")
        count = 0
        async for row in _rows(session, statement):
            entry.write((b",\n" if count else b"\n") + _dump(row))
            count += 1
        entry.write(b"]")
        if name == "messages":
            messages = count
    entry.write(b"}\n")
    return messages


def safe_entry_name(name: str | None, fallback: str) -> str:
    """A file name fit for a zip entry: no directories, no "..", no control characters,
    no leading dots, bounded; `fallback` when nothing usable is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(
        c for c in base if unicodedata.category(c)[0] != "C" and c not in '<>:"|?*'
    ).strip()
    base = base.lstrip(".").strip()
    if len(base) > _NAME_LENGTH:
        _, dot, suffix = base.rpartition(".")
        keep = suffix if dot and 0 < len(suffix) <= 10 else ""
        base = base[: _NAME_LENGTH - len(keep) - 1] + ("." + keep if keep else "")
    return base or fallback


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        taken.add(name)
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix = name, ""
    n = 2
    while (candidate := f"{stem}-{n}{'.' + suffix if suffix else ''}") in taken:
        n += 1
    taken.add(candidate)
    return candidate


async def _write_files(
    session: AsyncSession, archive: zipfile.ZipFile, contact_id: uuid.UUID, data_dir: Path
) -> tuple[int, int]:
    statement = (
        select(Attachment.id, Attachment.message_id, Attachment.sha256, Attachment.filename)
        .where(Attachment.message_id.in_(_messages_of(contact_id)))
        .order_by(Attachment.message_id, Attachment.created_at, Attachment.id)
    )
    taken: dict[uuid.UUID, set[str]] = {}
    written = missing = 0
    async for row in _rows(session, statement):
        try:
            path = blob_path(data_dir, row["sha256"])
        except ValueError:
            missing += 1
            continue
        if not await asyncio.to_thread(path.is_file):
            missing += 1
            continue
        name = safe_entry_name(row["filename"], f"attachment-{row['id']}")
        name = _unique(name, taken.setdefault(row["message_id"], set()))
        arcname = f"attachments/{row['message_id']}/{name}"
        # Files may be large: copied off the event loop (the archive has one writer).
        await asyncio.to_thread(archive.write, path, arcname, zipfile.ZIP_STORED)
        written += 1
    return written, missing


def _extension(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    if base == "message/rfc822":
        return "eml"
    guessed = mimetypes.guess_extension(base) if base else None
    return guessed.lstrip(".") if guessed else "bin"


async def _write_raw(session: AsyncSession, archive: zipfile.ZipFile, contact_id: uuid.UUID) -> int:
    statement = (
        select(RawInbound.id, RawInbound.content_type, RawInbound.body, RawInbound.inbound)
        .where(RawInbound.id.in_(_raw_ids_of(contact_id)))
        .order_by(RawInbound.received_at, RawInbound.id)
    )
    count = 0
    async for row in _rows(session, statement):
        body: bytes | None = row["body"]
        if body is None and row["inbound"] is not None:
            body = json.dumps(row["inbound"], ensure_ascii=False).encode()
            name = f"raw/{row['id']}.json"
        elif body is None:
            continue
        else:
            name = f"raw/{row['id']}.{_extension(row['content_type'])}"
        await asyncio.to_thread(archive.writestr, name, body)
        count += 1
    return count


def _messages_of(contact_id: uuid.UUID) -> Select[uuid.UUID]:
    return select(Message.id).where(Message.contact_id == contact_id)


def _raw_ids_of(contact_id: uuid.UUID) -> Select[uuid.UUID]:
    """The raw payloads of the contact's messages, their later edits included."""
    linked = select(Message.raw_id).where(
        Message.contact_id == contact_id, Message.raw_id.is_not(None)
    )
    mark = Message.external_id + _EDIT_MARK
    edits = (
        select(RawInbound.id)
        .join(Message, Message.channel_id == RawInbound.channel_id)
        .where(
            Message.contact_id == contact_id,
            Message.external_id.is_not(None),
            # A prefix test without LIKE: an external id's own % or _ must not match others.
            func.substr(RawInbound.external_id, 1, func.length(mark)) == mark,
        )
    )
    return select(RawInbound.id).where(or_(RawInbound.id.in_(linked), RawInbound.id.in_(edits)))


# --- erase -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erase did; remove `blobs` (after commit) with `remove_unreferenced_blobs`,
    and publish `events`."""

    contact_id: uuid.UUID
    first: bool  # False when the contact had been erased before (this pass found leftovers)
    counts: dict[str, int]
    blobs: tuple[str, ...]
    events: tuple[Event, ...]


async def _count(session: AsyncSession, statement: Update | Delete) -> int:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], result).rowcount or 0)


async def erase_contact(
    session: AsyncSession, contact_id: uuid.UUID, actor_id: uuid.UUID | None, now: datetime
) -> Erasure:
    """Erase the contact's personal data in the caller's transaction (see the module
    docstring). Idempotent: a second erase finds nothing left, or whatever arrived since.
    ContactNotFound for an unknown id, ContactMerged for a merged one."""
    locked = await lock_contacts(session, contact_id, aliases_of=contact_id)
    contact = locked.get(contact_id)
    if contact is None:
        raise ContactNotFound("no such contact")
    if contact.merged_into_id is not None:
        raise ContactMerged(contact.merged_into_id)
    ids = list(locked)  # the contact and those merged into it, whose rows hold names too
    first = contact.erased_at is None
    mine = select(Message.id).where(Message.contact_id.in_(ids))
    counts: dict[str, int] = {}

    raw_ids = list(await session.scalars(_raw_ids_of(contact_id)))
    counts["raw_payloads"] = await _count(
        session,
        update(RawInbound)
        .where(RawInbound.id.in_(raw_ids), RawInbound.content_type != ERASED_CONTENT_TYPE)
        .values(body=None, inbound=None, error=None, content_type=ERASED_CONTENT_TYPE),
    )
    blobs = tuple(
        sorted(
            set(
                await session.scalars(
                    select(Attachment.sha256).where(Attachment.message_id.in_(mine))
                )
            )
        )
    )
    counts["attachments"] = await _count(
        session, delete(Attachment).where(Attachment.message_id.in_(mine))
    )
    await _count(session, delete(AttachmentFetch).where(AttachmentFetch.message_id.in_(mine)))
    counts["messages"] = await _count(
        session,
        update(Message)
        .where(Message.contact_id.in_(ids))
        .values(text=ERASED_TEXT, reply_text=None, html=None, subject=None, delivery_error=None),
    )
    # Provider errors quote addresses ("550 no such user ann@..."); answers kept for
    # idempotent retries hold the reply's text.
    await _count(
        session,
        update(DeliveryAttempt).where(DeliveryAttempt.message_id.in_(mine)).values(error=None),
    )
    await _count(
        session, update(OutboundJob).where(OutboundJob.message_id.in_(mine)).values(last_error=None)
    )
    await _count(session, delete(IdempotencyKey).where(IdempotencyKey.message_id.in_(mine)))
    await _count(
        session,
        update(Conversation).where(Conversation.contact_id.in_(ids)).values(subject=None),
    )
    counts["identities"] = await _count(
        session, delete(Identity).where(Identity.contact_id.in_(ids))
    )
    counts["notes"] = await _count(
        session, delete(ContactNote).where(ContactNote.contact_id.in_(ids))
    )
    # Tasks stay for workload figures; their titles often name the person.
    counts["tasks"] = await _count(
        session,
        update(Task)
        .where(Task.contact_id.in_(ids), Task.title != ERASED_TEXT)
        .values(title=ERASED_TEXT),
    )
    counts["tags"] = await _count(session, delete(ContactTag).where(ContactTag.contact_id.in_(ids)))
    counts["attributes"] = await _count(
        session, delete(ContactAttribute).where(ContactAttribute.contact_id.in_(ids))
    )
    await _count(
        session,
        update(ContactReachability)
        .where(ContactReachability.contact_id.in_(ids))
        .values(detail=None),
    )
    await _count(
        session,
        update(FormSubmission)
        .where(FormSubmission.contact_id.in_(ids))
        .values(ip=None, attribution={}),
    )
    counts["timeline_events"] = await _scrub_events(session, ids)
    counts["webhook_deliveries"] = await scrub_contact_deliveries(session, ids)
    await _scrub_suggestions(session, ids, actor_id, now)
    await _count(
        session,
        update(Contact)
        .where(Contact.id.in_(ids))
        .values(
            name=None,
            lost_reason=None,
            owner_id=None,
            preferred_channel_id=None,
            language=None,
            timezone=None,
            reachable_hours=None,
            currency=None,
            erased_at=func.coalesce(Contact.erased_at, now),
            updated_at=now,
        ),
    )
    await session.refresh(contact)
    if first:
        session.add(
            TimelineEvent(
                contact_id=contact_id,
                kind=ERASED,
                data={"by": None if actor_id is None else str(actor_id)},
                occurred_at=now,
            )
        )
    await session.flush()
    events = (
        Event(ERASED, {"contact_id": str(contact_id)}),
        Event("contact.updated", {"contact_id": str(contact_id)}),
    )
    return Erasure(contact_id, first, counts, blobs, events)


def scrub_event_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """Event data without anything personal: only known keys holding ids, codes, numbers."""
    return {
        key: value for key, value in data.items() if key in _SAFE_EVENT_KEYS and _impersonal(value)
    }


def _impersonal(value: object) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, dict):  # counts, e.g. a merge's "moved"
        return all(isinstance(v, int) and _CODE.fullmatch(str(k)) for k, v in value.items())
    if not isinstance(value, str):
        return False
    if _CODE.fullmatch(value):
        return True
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        pass
    try:
        datetime.fromisoformat(value)
        return len(value) >= 19  # a full timestamp, not a number that parses as a year
    except ValueError:
        return False


async def _scrub_events(session: AsyncSession, ids: Sequence[uuid.UUID]) -> int:
    """Strip the data of the contact's timeline events, and the identity values other
    contacts' merge-suggestion events quote from them."""
    about = [str(i) for i in ids]
    statement = select(TimelineEvent.id, TimelineEvent.data).where(
        or_(
            TimelineEvent.contact_id.in_(ids),
            TimelineEvent.data["other_contact_id"].as_string().in_(about),
        )
    )
    changed: list[dict[str, Any]] = []
    for row in await session.execute(statement):
        data = row.data if isinstance(row.data, dict) else {}
        scrubbed = scrub_event_data(data)
        if scrubbed != data:
            changed.append({"event_id": row.id, "scrubbed": scrubbed})
    if changed:
        table = cast(Table, TimelineEvent.__table__)
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("event_id"))
            .values(data=bindparam("scrubbed")),
            changed,
        )
    return len(changed)


async def _scrub_suggestions(
    session: AsyncSession, ids: Iterable[uuid.UUID], actor_id: uuid.UUID | None, now: datetime
) -> None:
    """Suggestions quote the identity that raised them; open ones are moot now."""
    ids = list(ids)
    involving = or_(MergeSuggestion.contact_id.in_(ids), MergeSuggestion.other_contact_id.in_(ids))
    await _count(
        session,
        update(MergeSuggestion)
        .where(involving, MergeSuggestion.status == "open")
        .values(status="dismissed", resolved_at=now, resolved_by=actor_id),
    )
    await _count(session, update(MergeSuggestion).where(involving).values(reason=ERASED_TEXT))


async def remove_unreferenced_blobs(
    session: AsyncSession, data_dir: Path, digests: Sequence[str]
) -> int:
    """Delete the blob files of `digests` that no attachment row references any more
    (run after the erase has committed); returns how many files were removed."""
    if not digests:
        return 0
    still = set(
        await session.scalars(
            select(Attachment.sha256).where(Attachment.sha256.in_(digests)).distinct()
        )
    )
    removed = 0
    for digest in digests:
        if digest in still:
            continue
        try:
            path = blob_path(data_dir, digest)
        except ValueError:
            continue
        if await asyncio.to_thread(_unlink, path):
            removed += 1
    return removed


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
