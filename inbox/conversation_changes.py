"""Changes people make to a conversation: status, snooze, assignment, team, priority,
labels and participants; and each user's read mark.

`check_changes` validates what does not depend on the conversation (a future snooze
time, an active assignee, an existing team) once, so a bulk change checks it once too.
`apply_changes` then locks the conversation's row (FOR UPDATE, as timeline/outbox.py
does: two agents changing one conversation take turns, and each applies its change to
what the other committed, so no update is lost), changes what differs, and records one
timeline event per kind of change in the caller's transaction. A change that changes
nothing records nothing. Bus events are published by the caller after the commit
(`Outcome.bus_events`).

Status and reopen cycles: leaving "resolved" (for any status, by a person) counts as a
reopen (`reopen_count + 1`), as a customer message reopening it does
(timeline/ingest_batch.py); inbox/response_metrics.py starts a new cycle on the same
"conversation.status_changed" event ({from, to, by}). Resolving clears the customer's
waiting state; any status but "snoozed" clears `snoozed_until`.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.canned_models import Notification
from inbox.labels import MAX_LABELS
from inbox.membership import visible_channels
from inbox.models import Role, User
from inbox.notifications import created_events, notify_assigned
from inbox.workflow_models import (
    ConversationLabel,
    ConversationParticipant,
    ConversationRead,
    Priority,
)
from timeline.conversation_status import ConversationMoved
from timeline.events import Event
from timeline.models import Base, Conversation, ConversationStatus, TimelineEvent, utcnow
from timeline.outbox import UnknownConversation

__all__ = [
    "UNSET",
    "ChangeConflict",
    "Changes",
    "ConversationMoved",
    "InvalidChange",
    "Outcome",
    "UnknownConversation",
    "UnknownUser",
    "add_participant",
    "apply_changes",
    "check_changes",
    "mark_read",
    "mark_unread",
    "remove_participant",
]

# Timeline event kinds recorded here (also the kinds outgoing webhooks may subscribe to).
STATUS_CHANGED = "conversation.status_changed"
ASSIGNED = "conversation.assigned"
TEAM_CHANGED = "conversation.team_changed"
PRIORITY_CHANGED = "conversation.priority_changed"
LABELS_CHANGED = "conversation.labels_changed"
PARTICIPANT_ADDED = "conversation.participant_added"
PARTICIPANT_REMOVED = "conversation.participant_removed"
# The bus event after any of them commits.
UPDATED = "conversation.updated"

SNOOZED = ConversationStatus.SNOOZED
RESOLVED = ConversationStatus.RESOLVED


class Unset(enum.Enum):
    """A field not given (unlike None, which for an assignee or a team means "nobody")."""

    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True, slots=True)
class Changes:
    """What to change; fields left at their default are left alone."""

    status: ConversationStatus | None = None
    snoozed_until: datetime | None = None  # with status "snoozed" only
    assignee_id: uuid.UUID | Unset | None = UNSET
    team_id: uuid.UUID | Unset | None = UNSET
    priority: Priority | None = None
    labels: frozenset[str] | None = None  # replaces the labels (normalized: inbox/labels.py)
    add_labels: frozenset[str] = frozenset()
    remove_labels: frozenset[str] = frozenset()
    # The last message seq the person saw: the change applies only if nothing came after.
    seen_seq: int | None = None


class InvalidChange(Exception):
    """The change cannot be made; `fields` says which field and why (an API 422)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class ChangeConflict(Exception):
    """The change contradicts the state of other rows (an API 409)."""


class UnknownUser(Exception):
    """No such user."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The conversation after a change, and the timeline event kinds it recorded."""

    conversation: Conversation
    kinds: tuple[str, ...] = ()
    by: uuid.UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Events of rows written beside the change (the assignee's notification).
    extra_events: tuple[Event, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.kinds)

    def bus_events(self) -> list[Event]:
        """`conversation.updated` when something changed, and the events of what came with
        it (publish after commit)."""
        if not self.kinds:
            return []
        return [updated_event(self.conversation, self.kinds, self.by), *self.extra_events]


def updated_event(conversation: Conversation, kinds: Sequence[str], by: uuid.UUID | None) -> Event:
    """The bus event of a changed conversation: enough for a live list to update."""
    return Event(
        UPDATED,
        {
            "conversation_id": str(conversation.id),
            "contact_id": str(conversation.contact_id),
            "channel_id": str(conversation.channel_id),
            "status": conversation.status,
            "assignee_id": _text(conversation.assignee_id),
            "team_id": _text(conversation.team_id),
            "priority": conversation.priority,
            "changes": list(kinds),
            "by": _text(by),
        },
    )


# --- checks that do not depend on the conversation ----------------------------------------------


async def check_changes(session: AsyncSession, changes: Changes, now: datetime) -> None:
    """Raise InvalidChange naming every field that cannot be applied to any conversation."""
    fields: dict[str, str] = {}
    if changes.status is SNOOZED:
        if changes.snoozed_until is None:
            fields["snoozed_until"] = "required to snooze"
        elif changes.snoozed_until <= now:
            fields["snoozed_until"] = "must be in the future"
    elif changes.snoozed_until is not None:
        fields["snoozed_until"] = 'only with status "snoozed"'
    if changes.labels is not None and (changes.add_labels or changes.remove_labels):
        fields["labels"] = "send labels (replaces them) or add_labels/remove_labels, not both"
    elif changes.labels is not None and len(changes.labels) > MAX_LABELS:
        fields["labels"] = f"at most {MAX_LABELS} labels per conversation"
    if changes.add_labels & changes.remove_labels:
        fields["remove_labels"] = "a label cannot be added and removed at once"
    assignee, team = changes.assignee_id, changes.team_id
    if isinstance(assignee, uuid.UUID) and not await _is_active_user(session, assignee):
        fields["assignee_id"] = "not an active user"
    if isinstance(team, uuid.UUID) and not await team_exists(session, team):
        fields["team_id"] = "no such team"
    if fields:
        raise InvalidChange(fields)


async def _check_assignee_sees(
    session: AsyncSession, user_id: uuid.UUID, channel_id: uuid.UUID
) -> None:
    # An agent acts only on the channels they work (inbox/membership.py): a conversation
    # handed to one who cannot see it would be lost. Admins and managers see every channel.
    role = await session.scalar(select(User.role).where(User.id == user_id))
    if role == Role.AGENT.value and channel_id not in await visible_channels(session, user_id):
        raise InvalidChange({"assignee_id": "is not a member of this conversation's channel"})


async def _is_active_user(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(User.is_active).where(User.id == user_id)))


async def team_exists(session: AsyncSession, team_id: uuid.UUID) -> bool:
    """Whether the team exists; any id is taken while teams are not stored.

    Teams are another part of the inbox (inbox/account_models.py): the table is looked
    up in the metadata rather than imported, so this works before and after it lands.
    """
    teams = Base.metadata.tables.get("teams")
    if teams is None or "id" not in teams.c:
        return True
    return await session.scalar(select(teams.c.id).where(teams.c.id == team_id)) is not None


# --- changing one conversation ------------------------------------------------------------------


async def apply_changes(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    changes: Changes,
    *,
    actor_id: uuid.UUID | None,
    visible: frozenset[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Apply `changes` (already checked by `check_changes`) in the caller's transaction.

    Raises UnknownConversation (also when its channel is not in `visible`),
    ConversationMoved (a message after `seen_seq`), InvalidChange (too many labels) and
    ChangeConflict (reopening it while another conversation of its thread is open).
    """
    now = now or utcnow()
    conversation = await locked(session, conversation_id, visible)
    if changes.seen_seq is not None and conversation.last_seq > changes.seen_seq:
        raise ConversationMoved(conversation.last_seq)
    by = _text(actor_id)
    events: list[tuple[str, dict[str, Any]]] = []
    notified: list[Notification] = []

    if changes.status is not None and (status_data := _change_status(conversation, changes, now)):
        events.append((STATUS_CHANGED, {**status_data, "by": by}))
    if changes.assignee_id is not UNSET and changes.assignee_id != conversation.assignee_id:
        events.append(
            (ASSIGNED, {"from": _text(conversation.assignee_id), "to": _text(changes.assignee_id)})
        )
        conversation.assignee_id = changes.assignee_id
        if changes.assignee_id is not None:
            await _check_assignee_sees(session, changes.assignee_id, conversation.channel_id)
            # The assignee follows what they were given.
            added = await _follow(session, conversation, changes.assignee_id, actor_id, now)
            if added:
                events.append((PARTICIPANT_ADDED, {"user_id": str(changes.assignee_id)}))
            notified = notify_assigned(session, conversation.id, changes.assignee_id, actor_id, now)
    if changes.team_id is not UNSET and changes.team_id != conversation.team_id:
        events.append(
            (TEAM_CHANGED, {"from": _text(conversation.team_id), "to": _text(changes.team_id)})
        )
        conversation.team_id = changes.team_id
    if changes.priority is not None and changes.priority.value != conversation.priority:
        events.append(
            (PRIORITY_CHANGED, {"from": conversation.priority, "to": changes.priority.value})
        )
        conversation.priority = changes.priority.value
    if changes.labels is not None or changes.add_labels or changes.remove_labels:
        added_labels, removed_labels = await _change_labels(session, conversation.id, changes)
        if added_labels or removed_labels:
            events.append((LABELS_CHANGED, {"added": added_labels, "removed": removed_labels}))

    for kind, data in events:
        session.add(
            TimelineEvent(
                contact_id=conversation.contact_id,
                conversation_id=conversation.id,
                kind=kind,
                data={**data, "by": by},
                occurred_at=now,
            )
        )
    try:
        await session.flush()
    except IntegrityError as err:
        # The only unique index a change can hit: one unresolved conversation per thread.
        raise ChangeConflict(
            "another conversation of this thread is open: it cannot be reopened"
        ) from err
    return Outcome(
        conversation,
        tuple(dict.fromkeys(kind for kind, _ in events)),
        actor_id,
        extra_events=tuple(created_events(notified)),
    )


async def locked(
    session: AsyncSession, conversation_id: uuid.UUID, visible: frozenset[uuid.UUID] | None
) -> Conversation:
    """The conversation with its row locked for this transaction (PostgreSQL; SQLite
    writers hold the database's write lock), read fresh; UnknownConversation when it does
    not exist or its channel is not visible."""
    conversation = await session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if conversation is None or (visible is not None and conversation.channel_id not in visible):
        raise UnknownConversation(f"conversation {conversation_id} not found")
    return conversation


def _change_status(
    conversation: Conversation, changes: Changes, now: datetime
) -> dict[str, Any] | None:
    """Move to the new status; the event's data, or None when nothing changed."""
    to = changes.status
    assert to is not None
    until = changes.snoozed_until if to is SNOOZED else None
    was = conversation.status
    if to.value == was and until == conversation.snoozed_until:
        return None
    conversation.status = to.value
    conversation.snoozed_until = until
    if to is RESOLVED:
        if was != RESOLVED.value:
            conversation.resolved_at = now
        # Nobody waits on a resolved conversation (the metrics end its cycle here too).
        conversation.waiting_since = None
    else:
        conversation.resolved_at = None
        if was == RESOLVED.value:
            conversation.reopen_count += 1
    data: dict[str, Any] = {"from": was, "to": to.value}
    if until is not None:
        data["snoozed_until"] = until.isoformat()
    return data


async def _change_labels(
    session: AsyncSession, conversation_id: uuid.UUID, changes: Changes
) -> tuple[list[str], list[str]]:
    current = set(
        await session.scalars(
            select(ConversationLabel.label).where(
                ConversationLabel.conversation_id == conversation_id
            )
        )
    )
    if changes.labels is not None:
        target = set(changes.labels)
    else:
        target = (current | changes.add_labels) - changes.remove_labels
    if len(target) > MAX_LABELS:
        name = "labels" if changes.labels is not None else "add_labels"
        raise InvalidChange({name: f"at most {MAX_LABELS} labels per conversation"})
    added, removed = sorted(target - current), sorted(current - target)
    if removed:
        await session.execute(
            delete(ConversationLabel).where(
                ConversationLabel.conversation_id == conversation_id,
                ConversationLabel.label.in_(removed),
            )
        )
    session.add_all(ConversationLabel(conversation_id=conversation_id, label=x) for x in added)
    return added, removed


# --- participants -------------------------------------------------------------------------------


async def _follow(
    session: AsyncSession,
    conversation: Conversation,
    user_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    now: datetime,
) -> bool:
    """Make the user a participant (under the conversation's lock); False if they were."""
    if await session.get(ConversationParticipant, (conversation.id, user_id)) is not None:
        return False
    session.add(
        ConversationParticipant(
            conversation_id=conversation.id, user_id=user_id, added_by=actor_id, added_at=now
        )
    )
    return True


async def add_participant(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    actor_id: uuid.UUID | None,
    visible: frozenset[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Make a user follow the conversation (the caller commits). UnknownUser when there
    is no such user, InvalidChange when they are deactivated."""
    now = now or utcnow()
    conversation = await locked(session, conversation_id, visible)
    active = await session.scalar(select(User.is_active).where(User.id == user_id))
    if active is None:
        raise UnknownUser(f"user {user_id} not found")
    if not active:
        raise InvalidChange({"user_id": "not an active user"})
    if not await _follow(session, conversation, user_id, actor_id, now):
        return Outcome(conversation)
    _record(session, conversation, PARTICIPANT_ADDED, {"user_id": str(user_id)}, actor_id, now)
    await session.flush()
    return Outcome(conversation, (PARTICIPANT_ADDED,), actor_id)


async def remove_participant(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    actor_id: uuid.UUID | None,
    visible: frozenset[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Stop a user following the conversation (the caller commits); nothing recorded if
    they did not follow it."""
    now = now or utcnow()
    conversation = await locked(session, conversation_id, visible)
    removed = await session.scalar(
        delete(ConversationParticipant)
        .where(
            ConversationParticipant.conversation_id == conversation.id,
            ConversationParticipant.user_id == user_id,
        )
        .returning(ConversationParticipant.user_id)
    )
    if removed is None:
        if await session.get(User, user_id) is None:
            raise UnknownUser(f"user {user_id} not found")
        return Outcome(conversation)
    _record(session, conversation, PARTICIPANT_REMOVED, {"user_id": str(user_id)}, actor_id, now)
    await session.flush()
    return Outcome(conversation, (PARTICIPANT_REMOVED,), actor_id)


def _record(
    session: AsyncSession,
    conversation: Conversation,
    kind: str,
    data: dict[str, Any],
    actor_id: uuid.UUID | None,
    now: datetime,
) -> None:
    session.add(
        TimelineEvent(
            contact_id=conversation.contact_id,
            conversation_id=conversation.id,
            kind=kind,
            data={**data, "by": _text(actor_id)},
            occurred_at=now,
        )
    )


# --- read marks ---------------------------------------------------------------------------------


async def mark_read(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    visible: frozenset[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> Conversation:
    """The user has read every message so far. A mark never moves back here: a slow
    request that read an older `last_seq` does not undo a newer mark."""
    conversation = await _visible(session, conversation_id, visible)
    await _set_mark(session, conversation.id, user_id, conversation.last_seq, now, forward=True)
    return conversation


async def mark_unread(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    visible: frozenset[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> Conversation:
    """Show the conversation as unread to the user again: its latest message is unread."""
    conversation = await _visible(session, conversation_id, visible)
    mark = max(conversation.last_seq - 1, 0)
    await _set_mark(session, conversation.id, user_id, mark, now, forward=False)
    return conversation


async def _visible(
    session: AsyncSession, conversation_id: uuid.UUID, visible: frozenset[uuid.UUID] | None
) -> Conversation:
    conversation = await session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .execution_options(populate_existing=True)
    )
    if conversation is None or (visible is not None and conversation.channel_id not in visible):
        raise UnknownConversation(f"conversation {conversation_id} not found")
    return conversation


async def _set_mark(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    read_seq: int,
    now: datetime | None,
    *,
    forward: bool,
) -> None:
    # An upsert: two tabs of one user marking at once must not collide on the key.
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ConversationRead).values(
        conversation_id=conversation_id,
        user_id=user_id,
        read_seq=read_seq,
        updated_at=now or utcnow(),
    )
    excluded = statement.excluded
    value: Any = excluded.read_seq
    if forward:
        value = case(
            (ConversationRead.read_seq > excluded.read_seq, ConversationRead.read_seq),
            else_=excluded.read_seq,
        )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ConversationRead.conversation_id, ConversationRead.user_id],
            set_={"read_seq": value, "updated_at": excluded.updated_at},
        )
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
