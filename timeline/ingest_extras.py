"""What a batch stores beside its messages: files to fetch again, identities a message
offers, and where the customer came from.

Runs inside the batch's transaction, after the messages are inserted, so all of it commits
(or not) with the message it came with.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.types import InboundAttachment
from timeline.attachment_fetch import fetch_row
from timeline.bulk import insert_rows
from timeline.events import Event
from timeline.ids import new_id
from timeline.models import AttachmentFetch, Contact, Identity, MergeSuggestion, TimelineEvent
from timeline.storable import cut

_fetch = cast(Table, AttachmentFetch.__table__)
_contact = cast(Table, Contact.__table__)
_ident = cast(Table, Identity.__table__)
_event = cast(Table, TimelineEvent.__table__)
_suggestion = cast(Table, MergeSuggestion.__table__)

# The first re-fetch waits a minute: what failed a moment ago rarely works at once.
FIRST_FETCH_DELAY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Extras:
    """What one stored message brought besides itself."""

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    contact_id: uuid.UUID  # whose identities and attribution these are (the author in a group)
    channel_id: uuid.UUID
    at: datetime
    deferred: tuple[InboundAttachment, ...]
    offered: tuple[tuple[str, str, str | None], ...]  # (kind, normalized value, display name)
    attribution: tuple[tuple[str, str], ...]
    attribution_event: str = "contact.attributed"
    language: str | None = None  # given to the contact when it has none yet


async def store_extras(
    conn: AsyncConnection, extras: Sequence[Extras], events: list[Event], now: datetime
) -> None:
    """Record the fetches, identities and attribution of a batch's messages."""
    await insert_rows(
        conn,
        _fetch,
        [
            fetch_row(attachment, item.message_id, item.channel_id, now, FIRST_FETCH_DELAY)
            for item in extras
            for attachment in item.deferred
        ],
    )
    rows: list[dict[str, Any]] = []
    await _attach_identities(conn, [item for item in extras if item.offered], rows, events, now)
    for item in extras:
        if item.attribution:
            data: dict[str, Any] = dict(item.attribution)
            data["channel_id"] = str(item.channel_id)
            rows.append(_row(item, item.attribution_event, data))
    await insert_rows(conn, _event, rows)
    for contact_id, language in {i.contact_id: i.language for i in extras if i.language}.items():
        await conn.execute(
            update(_contact)
            .where(_contact.c.id == contact_id, _contact.c.language.is_(None))
            .values(language=language)
        )


async def _attach_identities(
    conn: AsyncConnection,
    extras: Sequence[Extras],
    rows: list[dict[str, Any]],
    events: list[Event],
    now: datetime,
) -> None:
    """Give each offering contact the identities nobody holds yet; where another contact
    holds one, record a merge suggestion instead: two records of one person are merged
    by someone who can tell, never silently by whoever typed a number."""
    offers = [(item, (kind, value), name) for item in extras for kind, value, name in item.offered]
    if not offers:
        return
    first: dict[tuple[str, str], tuple[Extras, str | None]] = {}
    for item, key, name in offers:
        first.setdefault(key, (item, name))
    holders = await _holders(conn, list(first))
    missing = sorted(key for key in first if key not in holders)
    planned = {key: new_id() for key in missing}
    inserted = await insert_rows(
        conn,
        _ident,
        [
            {
                "id": planned[key],
                "contact_id": first[key][0].contact_id,
                "kind": key[0],
                "value": key[1],
                "display_name": first[key][1],
                "created_at": now,
            }
            for key in missing
        ],
        conflict=("kind", "value"),
        returning=("kind", "value"),
    )
    added = {(row[0], row[1]) for row in inserted}
    holders.update({key: first[key][0].contact_id for key in added})
    if len(added) < len(missing):
        # A concurrent transaction attached some of them first: see whose they are now.
        holders.update(await _holders(conn, [key for key in missing if key not in added]))
    seen: set[tuple[uuid.UUID, tuple[str, str]]] = set()
    suggestions: dict[tuple[uuid.UUID, uuid.UUID], str] = {}
    for item, key, _ in offers:
        if (item.contact_id, key) in seen:
            continue
        seen.add((item.contact_id, key))
        identity = {"kind": key[0], "value": key[1]}
        holder = holders.get(key)
        if key in added and first[key][0] is item:
            rows.append(_row(item, "identity.added", identity))
            events.append(Event("contact.updated", {"contact_id": str(item.contact_id)}))
        elif holder is not None and holder != item.contact_id:
            rows.append(
                _row(item, "contact.merge_suggested", {**identity, "other_contact_id": str(holder)})
            )
            pair = sorted((item.contact_id, holder), key=str)
            suggestions[(pair[0], pair[1])] = f"{key[0]}:{key[1]}"
    # One suggestion per pair of contacts, whichever identity raised it first.
    await insert_rows(
        conn,
        _suggestion,
        [
            {
                "id": new_id(),
                "contact_id": a,
                "other_contact_id": b,
                "reason": cut(reason, 500),
                "status": "open",
                "created_at": now,
                "resolved_at": None,
                "resolved_by": None,
            }
            for (a, b), reason in sorted(suggestions.items(), key=str)
        ],
        conflict=("contact_id", "other_contact_id"),
    )


async def _holders(
    conn: AsyncConnection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    result = await conn.execute(
        select(_ident.c.kind, _ident.c.value, _ident.c.contact_id).where(
            tuple_(_ident.c.kind, _ident.c.value).in_(keys)
        )
    )
    return {(row[0], row[1]): row[2] for row in result}


def _row(item: Extras, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id(),
        "contact_id": item.contact_id,
        "conversation_id": item.conversation_id,
        "message_id": item.message_id,
        "kind": kind,
        "data": data,
        "occurred_at": item.at,
    }
