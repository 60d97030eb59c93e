"""Edited messages (Telegram edits): a new version of a message already stored.

An edit is recorded on its original, never as a message of its own: the original's text
becomes the edit's, `edited_at` the edit's date, and the timeline keeps the earlier text
in a `message.edited` event. Edits apply in the order the customer made them, whatever
order they arrive in: one older than the version stored changes nothing. The edit's raw
payload is stored under its own external id like any input, so a redelivered edit is a
duplicate. An edit of a message that was never stored is left to the caller, which
stores it as a message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from timeline.events import Event
from timeline.ids import new_id
from timeline.models import Direction, Message, TimelineEvent
from timeline.storable import cut

if TYPE_CHECKING:
    from timeline.ingest_batch import Prepared

_msg = cast(Table, Message.__table__)
_event = cast(Table, TimelineEvent.__table__)
# The earlier version kept in the timeline event, cut to this many characters.
PREVIOUS_TEXT_LENGTH = 4000


@dataclass(frozen=True, slots=True)
class Edited:
    """The message an edit was applied to (or would have been, for an outdated one)."""

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    contact_id: uuid.UUID


async def apply_edits(
    conn: AsyncConnection,
    items: Sequence[Prepared],
    indexes: Sequence[int],
    events: list[Event],
) -> tuple[dict[int, Edited], set[int]]:
    """Apply the edits at `indexes`; answers the edited message per index, and the indexes
    whose original is not stored."""
    keys = sorted({(items[i].channel_uuid, items[i].edit_of) for i in indexes}, key=str)
    statement = (
        select(
            _msg.c.id,
            _msg.c.channel_id,
            _msg.c.external_id,
            _msg.c.conversation_id,
            _msg.c.contact_id,
            _msg.c.text,
            _msg.c.edited_at,
        )
        .where(
            tuple_(_msg.c.channel_id, _msg.c.external_id).in_(keys),
            _msg.c.direction == Direction.IN.value,
        )
        .order_by(_msg.c.id)
    )
    if conn.dialect.name == "postgresql":
        statement = statement.with_for_update()
    originals = {(row.channel_id, row.external_id): row for row in await conn.execute(statement)}
    applied: dict[int, Edited] = {}
    unmatched: set[int] = set()
    current: dict[uuid.UUID, tuple[str, datetime | None]] = {}
    changes: dict[uuid.UUID, dict[str, Any]] = {}
    event_rows: list[dict[str, Any]] = []
    # In the customer's order, so the last edit made is the one that stays.
    for i in sorted(indexes, key=lambda i: items[i].inbound.sent_at):
        item = items[i]
        original = originals.get((item.channel_uuid, item.edit_of))
        if original is None:
            unmatched.add(i)
            continue
        applied[i] = Edited(original.id, original.conversation_id, original.contact_id)
        text, edited_at = current.get(original.id, (original.text, original.edited_at))
        at = item.inbound.sent_at
        if edited_at is not None and at <= edited_at:
            continue  # an older version arriving late
        current[original.id] = (item.inbound.text, at)
        changes[original.id] = {
            "b_id": original.id,
            "b_text": item.inbound.text,
            "b_html": item.inbound.html,
            "b_reply_text": item.inbound.reply_text,
            "b_edited_at": at,
        }
        data = {
            "channel_id": str(item.channel_uuid),
            "previous_text": cut(text, PREVIOUS_TEXT_LENGTH),
        }
        event_rows.append(
            {
                "id": new_id(),
                "contact_id": original.contact_id,
                "conversation_id": original.conversation_id,
                "message_id": original.id,
                "kind": "message.edited",
                "data": data,
                "occurred_at": at,
            }
        )
        events.append(
            Event(
                "message.edited",
                {
                    "message_id": str(original.id),
                    "conversation_id": str(original.conversation_id),
                    "contact_id": str(original.contact_id),
                    "channel_id": str(item.channel_uuid),
                },
            )
        )
    if changes:
        await conn.execute(_EDIT, [changes[key] for key in sorted(changes, key=str)])
        await conn.execute(_event.insert(), event_rows)
    return applied, unmatched


def _bind(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


_EDIT = (
    update(_msg)
    .where(_msg.c.id == _bind("b_id", _msg.c.id))
    .values(
        text=_bind("b_text", _msg.c.text),
        html=_bind("b_html", _msg.c.html),
        reply_text=_bind("b_reply_text", _msg.c.reply_text),
        edited_at=_bind("b_edited_at", _msg.c.edited_at),
    )
)
