"""Response-time metrics, derived from what happened and recorded as rows.

The definitions (issue 9):
- first response, per cycle: from the cycle's first customer message (a new
  conversation, or a reopen) to the first public reply by a person. Automatic replies
  (acknowledgements: `auto_submitted`), messages without an author and private notes
  do not count.
- reply, for each later customer turn: from the first customer message after a reply
  to the next public reply by a person.
- resolution, per cycle: from the cycle's opening (its first customer message, the
  reopen, or the conversation's creation when an agent wrote first) to its resolution.
A cycle ends when the conversation is resolved; it is reopened (cycle + 1) when it leaves
"resolved" again, by a customer message or by a person.

Nothing hooks into ingestion or the outbox: `derive` reads a conversation's messages and
status events, so history recorded while no worker ran is measured too. `MetricRecorder`
finds the conversations with timeline activity since its cursor and records their
completed spans with INSERT ... ON CONFLICT DO NOTHING on the span's unique key, so a
round run twice, late, or by two workers at once records each span once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from inbox import business_hours
from inbox.business_hours import Calendar
from inbox.metric_models import (
    BusinessHours,
    ChannelBusinessHours,
    ConversationMetric,
    MetricCursor,
    MetricKind,
    TeamBusinessHours,
)
from timeline.clock import database_now
from timeline.ids import new_id
from timeline.models import (
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
    TimelineEvent,
)

logger = logging.getLogger(__name__)

RESOLVED = ConversationStatus.RESOLVED.value
STATUS_EVENTS = (
    "conversation.status_changed",
    "conversation.resolved",
    "conversation.reopened",
)
RECEIVED = "message.received"
CURSOR_NAME = "response_metrics"
# Events are found by their id's time (UUIDv7, the writer's clock); a transaction may
# commit up to this long after it made its ids, and hosts' clocks may differ: each round
# reads again from this far back (recording is idempotent, so re-reading costs only time).
REREAD = timedelta(minutes=5)


# --- derivation (pure) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing that happened in a conversation, in the order it happened."""

    at: datetime
    seq: int  # message sequence number; 0 for status changes
    what: str  # "in" (customer), "reply" (public reply by a person), "status"
    to: str | None = None  # status changes: the new status
    actor_id: uuid.UUID | None = None  # who replied or changed the status

    def key(self) -> tuple[datetime, int, int]:
        # At one instant a reopen precedes the message that caused it, and a resolve
        # follows the reply it came with.
        rank = 1 if self.what != "status" else (2 if self.to == RESOLVED else 0)
        return (self.at, rank, self.seq)


@dataclass(frozen=True, slots=True)
class Span:
    """A completed measurement."""

    kind: MetricKind
    cycle: int
    started_at: datetime
    ended_at: datetime
    agent_id: uuid.UUID | None


@dataclass(slots=True)
class Cycle:
    """What is known of one cycle (for SLA clocks)."""

    number: int
    opened_at: datetime
    first_customer_at: datetime | None = None
    first_response_at: datetime | None = None
    turn_started_at: datetime | None = None  # the latest later customer turn
    turn_answered_at: datetime | None = None
    resolved_at: datetime | None = None
    waiting_since: datetime | None = None  # an unanswered customer turn started then


@dataclass(slots=True)
class Derivation:
    """The spans and cycles of one conversation."""

    spans: list[Span] = field(default_factory=list)
    cycles: list[Cycle] = field(default_factory=list)

    @property
    def current(self) -> Cycle | None:
        """The latest cycle, if the conversation has begun."""
        return self.cycles[-1] if self.cycles else None


def derive(entries: Iterable[Entry], created_at: datetime) -> Derivation:
    """The spans and cycles the entries make (see the module docstring)."""
    result = Derivation()
    cycle: Cycle | None = None
    resolved = False

    def begin(at: datetime) -> Cycle:
        started = Cycle(number=len(result.cycles) + 1, opened_at=at)
        result.cycles.append(started)
        return started

    for entry in sorted(entries, key=Entry.key):
        if entry.what == "status":
            if entry.to == RESOLVED and not resolved:
                cycle = cycle or begin(created_at)
                cycle.resolved_at = entry.at
                cycle.waiting_since = None
                result.spans.append(
                    Span(
                        MetricKind.RESOLUTION,
                        cycle.number,
                        cycle.opened_at,
                        entry.at,
                        entry.actor_id,
                    )
                )
                resolved = True
            elif entry.to is not None and entry.to != RESOLVED and resolved:
                cycle = begin(entry.at)
                resolved = False
        elif entry.what == "in":
            if cycle is None or resolved:  # a reopen whose event is missing counts too
                cycle = begin(entry.at)
                resolved = False
            if cycle.first_customer_at is None:
                cycle.first_customer_at = entry.at
            if cycle.waiting_since is None:
                cycle.waiting_since = entry.at
                if cycle.first_response_at is not None:
                    cycle.turn_started_at, cycle.turn_answered_at = entry.at, None
        elif entry.what == "reply":
            # A reply on a resolved conversation does not reopen it.
            if cycle is None or resolved or cycle.waiting_since is None:
                continue
            first = cycle.first_response_at is None
            kind = MetricKind.FIRST_RESPONSE if first else MetricKind.REPLY
            result.spans.append(
                Span(kind, cycle.number, cycle.waiting_since, entry.at, entry.actor_id)
            )
            if first:
                cycle.first_response_at = entry.at
            else:
                cycle.turn_answered_at = entry.at
            cycle.waiting_since = None
    return result


# --- reading a conversation ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded:
    """A conversation with its calendar and derivation."""

    conversation: Conversation
    calendar: Calendar | None
    business_hours_id: uuid.UUID | None
    derivation: Derivation


async def load(session: AsyncSession, conversation: Conversation) -> Loaded:
    """Read a conversation's messages, status events and calendar, and derive its spans."""
    events = (
        await session.execute(
            select(
                TimelineEvent.kind,
                TimelineEvent.data,
                TimelineEvent.occurred_at,
                TimelineEvent.message_id,
            ).where(
                # The contact's index finds them; the conversation narrows them down.
                TimelineEvent.contact_id == conversation.contact_id,
                TimelineEvent.conversation_id == conversation.id,
                TimelineEvent.kind.in_((*STATUS_EVENTS, RECEIVED)),
            )
        )
    ).all()
    # An inbound message counts from when it reached us (or its own date, for imported
    # history): what its "message.received" event says, not the sender's clock.
    received = {e.message_id: e.occurred_at for e in events if e.kind == RECEIVED}
    entries: list[Entry | None] = [
        _status_entry(e.kind, e.data, e.occurred_at) for e in events if e.kind != RECEIVED
    ]
    messages = (
        await session.execute(
            select(
                Message.id,
                Message.seq,
                Message.direction,
                Message.private,
                Message.auto_submitted,
                Message.author_id,
                Message.created_at,
            ).where(
                Message.conversation_id == conversation.id,
                Message.kind == MessageKind.MESSAGE.value,
                Message.private.is_(False),
            )
        )
    ).all()
    for m in messages:
        if m.direction == Direction.IN.value:
            entries.append(Entry(received.get(m.id, m.created_at), m.seq, "in"))
        elif not m.auto_submitted and m.author_id is not None:
            entries.append(Entry(m.created_at, m.seq, "reply", actor_id=m.author_id))
    calendar, calendar_id = await calendar_for(session, conversation)
    return Loaded(
        conversation,
        calendar,
        calendar_id,
        derive((e for e in entries if e is not None), conversation.created_at),
    )


def _status_entry(kind: str, data: dict[str, Any], at: datetime) -> Entry | None:
    if kind == "conversation.resolved":
        to: object = RESOLVED
    elif kind == "conversation.reopened":
        to = ConversationStatus.OPEN.value
    else:
        to = data.get("to", data.get("status"))
    if not isinstance(to, str):
        return None
    actor = data.get("actor_id", data.get("by"))
    return Entry(at, 0, "status", to=to, actor_id=_uuid(actor))


def _uuid(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


async def calendar_for(
    session: AsyncSession, conversation: Conversation
) -> tuple[Calendar | None, uuid.UUID | None]:
    """The conversation's calendar: its team's if the team has one, else its channel's,
    else none (wall-clock time only)."""
    row: BusinessHours | None = None
    if conversation.team_id is not None:
        row = await session.scalar(
            select(BusinessHours)
            .join(TeamBusinessHours, TeamBusinessHours.business_hours_id == BusinessHours.id)
            .where(TeamBusinessHours.team_id == conversation.team_id)
        )
    if row is None:
        row = await session.scalar(
            select(BusinessHours)
            .join(ChannelBusinessHours, ChannelBusinessHours.business_hours_id == BusinessHours.id)
            .where(ChannelBusinessHours.channel_id == conversation.channel_id)
        )
    if row is None:
        return None, None
    try:
        return business_hours.calendar(row.timezone, row.week, row.holidays), row.id
    except business_hours.CalendarError:  # stored through the API, so checked; be safe
        logger.exception("business hours %s are invalid; measuring wall time", row.id)
        return None, None


# --- recording ----------------------------------------------------------------------------------


def dialect_insert(session: AsyncSession) -> Any:
    """The INSERT construct of the session's dialect (for ON CONFLICT)."""
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def record_spans(session: AsyncSession, loaded: Loaded, now: datetime) -> int:
    """Record the completed spans of a loaded conversation; returns how many were new."""
    conversation = loaded.conversation
    rows = [
        {
            "id": new_id(),
            "conversation_id": conversation.id,
            "channel_id": conversation.channel_id,
            "team_id": conversation.team_id,
            "agent_id": span.agent_id,
            "cycle": span.cycle,
            "kind": span.kind.value,
            "started_at": span.started_at,
            "ended_at": span.ended_at,
            "wall_seconds": (span.ended_at - span.started_at).total_seconds(),
            "business_seconds": None
            if loaded.calendar is None
            else business_hours.business_seconds(loaded.calendar, span.started_at, span.ended_at),
            "business_hours_id": loaded.business_hours_id,
            "created_at": now,
        }
        for span in loaded.derivation.spans
    ]
    if not rows:
        return 0
    # Parameters apart from the statement: one cached statement whatever the row count.
    statement = (
        dialect_insert(session)(ConversationMetric)
        .on_conflict_do_nothing(index_elements=["conversation_id", "cycle", "kind", "started_at"])
        .returning(ConversationMetric.id)
    )
    return len((await session.execute(statement, rows)).all())


def id_floor(at: datetime) -> uuid.UUID:
    """The smallest UUIDv7 made at or after `at` (timeline/ids.py's layout)."""
    ms = max(int(at.timestamp() * 1000), 0)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0b10 << 62))


def id_time(value: uuid.UUID) -> datetime:
    """When a UUIDv7 was made (to the millisecond)."""
    return datetime.fromtimestamp((value.int >> 80) / 1000, UTC)


OnConversation = Callable[[AsyncSession, Loaded, datetime], Any]


class MetricRecorder:
    """Records the spans of conversations with timeline activity since its cursor."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        batch_size: int = 2000,
        clock: Callable[[], datetime] | None = None,
        also: Sequence[OnConversation] = (),
    ) -> None:
        self._sessions = sessions
        self.batch_size = batch_size
        self._clock = clock  # None: the database's clock
        self._also = tuple(also)  # more work per loaded conversation (SLA clocks)
        # Events this recorder has handled that a round may read again (REREAD): their
        # conversations are not loaded again for them. Per process, so a restart or
        # another worker records them once more, which is harmless.
        self._handled: dict[uuid.UUID, datetime] = {}

    async def run_once(self) -> int:
        """One round: returns how many new spans were recorded."""
        async with self._sessions() as session:
            now = self._clock() if self._clock is not None else await database_now(session)
            cursor = await session.get(MetricCursor, CURSOR_NAME)
            start = cursor.position if cursor is not None else datetime(1970, 1, 1, tzinfo=UTC)
            found = (
                await session.execute(
                    select(TimelineEvent.id, TimelineEvent.conversation_id)
                    .where(
                        TimelineEvent.id >= id_floor(start),
                        TimelineEvent.conversation_id.is_not(None),
                    )
                    .order_by(TimelineEvent.id)
                    .limit(self.batch_size)
                )
            ).all()
        fresh = [row for row in found if row.id not in self._handled]
        conversation_ids = list(dict.fromkeys(row.conversation_id for row in fresh))
        recorded = 0
        for conversation_id in conversation_ids:
            recorded += await self.record(conversation_id, now)
        # A full batch: more to read, from its last event on; else caught up.
        full = len(found) >= self.batch_size
        position = id_time(found[-1].id) if full else now - REREAD
        await self._advance(position, now)
        self._handled.update((row.id, id_time(row.id)) for row in fresh)
        self._handled = {key: at for key, at in self._handled.items() if at >= position}
        return recorded

    async def record(self, conversation_id: uuid.UUID, now: datetime) -> int:
        """Record one conversation's spans (and run the extra work) in one transaction."""
        async with self._sessions() as session, session.begin():
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                return 0
            loaded = await load(session, conversation)
            recorded = await record_spans(session, loaded, now)
            for work in self._also:
                await work(session, loaded, now)
            return recorded

    async def _advance(self, position: datetime, now: datetime) -> None:
        async with self._sessions() as session, session.begin():
            statement = (
                dialect_insert(session)(MetricCursor)
                .values(name=CURSOR_NAME, position=position, updated_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            await session.execute(statement)
            # Only forward: a slower worker's round never moves it back.
            await session.execute(
                update(MetricCursor)
                .where(MetricCursor.name == CURSOR_NAME, MetricCursor.position < position)
                .values(position=position, updated_at=now)
            )
