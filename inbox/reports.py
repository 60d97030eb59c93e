"""Report figures over a period: volumes, response times and SLA attainment, grouped by
agent, team, channel or label, and the hour-of-week volume of customer messages.

Where each figure comes from, and which agent, team or channel it belongs to:

- conversations opened: conversations created in the period; their current assignee,
  team, channel and labels.
- conversations resolved: resolutions recorded in the period (one per resolved cycle, so
  a conversation resolved, reopened and resolved again counts twice); who resolved it,
  the team it had then.
- messages in / out: public messages created in the period, automatic ones (auto-replies,
  acknowledgements) left out; outbound ones belong to their author, inbound ones to the
  conversation's current assignee.
- first response, reply and resolution times: the spans recorded by the metrics worker
  (`conversation_metrics`) that ended in the period, by who answered or resolved and the
  team at the time; wall-clock and business seconds (business only where a calendar
  applied). Median and p90 are exact (inbox/report_stats.py).
- SLA attainment per target: a target counts as met in the period when it was met on
  time then, and as breached when its due time fell in the period (and has passed)
  without it being met by then; attainment is met / (met + breached).

Everything is read from the raw tables with range conditions on indexed times (see
inbox/report_models.py for the indexes and for why nothing is pre-aggregated).

`summaries` gives the summary report of each of consecutive parts of a period (the
local days or weeks of a report series) from the same statements as one summary, with
the part as one more grouping column: one pass over the period, not one per part, and
by construction the very figures `summary` gives for each part alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    Select,
    SQLColumnExpression,
    Table,
    and_,
    case,
    cast,
    extract,
    false,
    func,
    literal,
    null,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.metric_models import ConversationMetric, MetricKind, SlaClock, SlaTarget
from inbox.models import User
from inbox.report_period import Period
from inbox.report_stats import MICROS, PERCENTILES, Ranked, Stats
from timeline.db import SessionFactory
from timeline.models import Base, Channel, Conversation, Direction, Message, MessageKind

Grouping = Literal["agent", "team", "channel", "label", "none"]
GROUPINGS: tuple[Grouping, ...] = ("agent", "team", "channel", "label", "none")
# Groupings in which every row belongs to exactly one group.
ADDITIVE: tuple[Grouping, ...] = ("agent", "team", "channel")
LABELS_TABLE = "conversation_labels"
TEAMS_TABLE = "teams"
CLOCKS = ("wall", "business")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# At most this many of a report's statements (connections) at once; an agent report has
# six (three kinds of span, opened, messages, SLA).
CONCURRENCY = 6
QUARTER_HOUR = 900  # seconds; every timezone in use today is offset by a multiple of it


S = TypeVar("S", bound=Select[Any])


class GroupingUnavailable(ValueError):
    """The grouping needs a table this installation does not have."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What a report is narrowed to. `visible` None: every channel."""

    channel_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    visible: frozenset[uuid.UUID] | None = None


@dataclass(frozen=True, slots=True)
class Attainment:
    """How an SLA target fared: met on time, or breached."""

    met: int = 0
    breached: int = 0

    @property
    def rate(self) -> float | None:
        """met / (met + breached); None when nothing was decided."""
        decided = self.met + self.breached
        return self.met / decided if decided else None


# Every group of every part starts from these (a 90-day series by day has about 800
# groups): the names computed once, and one shared empty value, as both are frozen.
_KINDS = tuple(kind.value for kind in MetricKind)
_TARGETS = tuple(target.value for target in SlaTarget)
_NO_STATS = Stats()
_NO_ATTAINMENT = Attainment()


def _no_times() -> dict[str, dict[str, Stats]]:
    return {kind: dict.fromkeys(CLOCKS, _NO_STATS) for kind in _KINDS}


def _no_sla() -> dict[str, Attainment]:
    return dict.fromkeys(_TARGETS, _NO_ATTAINMENT)


@dataclass(slots=True)
class Figures:
    """The figures of one group, or of everything (the totals)."""

    conversations_opened: int = 0
    conversations_resolved: int = 0
    messages_in: int = 0
    messages_out: int = 0
    # kind (first_response, reply, resolution) -> clock (wall, business) -> stats
    times: dict[str, dict[str, Stats]] = field(default_factory=_no_times)
    # target (first_response, next_response, resolution) -> attainment
    sla: dict[str, Attainment] = field(default_factory=_no_sla)


@dataclass(frozen=True, slots=True)
class Group:
    """One row of a grouped report. `key` None: no agent, no team or no label."""

    key: str | None
    name: str | None
    figures: Figures


@dataclass(frozen=True, slots=True)
class Summary:
    """A summary report: its groups (none for grouping "none") and the totals."""

    period: Period
    group_by: Grouping
    groups: list[Group]
    totals: Figures


@dataclass(frozen=True, slots=True)
class Volume:
    """Customer messages per local weekday (Monday first) and hour."""

    period: Period
    hours: list[list[int]]

    @property
    def total(self) -> int:
        """All the messages counted."""
        return sum(sum(day) for day in self.hours)


# --- shared query parts -----------------------------------------------------------------------


def labels_table() -> Table | None:
    """The conversation labels' table, once the workflow part has defined it."""
    return Base.metadata.tables.get(LABELS_TABLE)


def check_grouping(grouping: Grouping) -> None:
    """GroupingUnavailable when `grouping` cannot be answered here."""
    if grouping == "label" and labels_table() is None:
        raise GroupingUnavailable("grouping by label is not available")


@dataclass(frozen=True, slots=True)
class _Keys:
    """The columns that say which agent, team and channel a row belongs to."""

    conversation_id: SQLColumnExpression[Any]
    agent: SQLColumnExpression[Any]
    team: SQLColumnExpression[Any]
    channel: SQLColumnExpression[Any]


def _key(grouping: Grouping, keys: _Keys) -> SQLColumnExpression[Any] | None:
    if grouping == "agent":
        return keys.agent
    if grouping == "team":
        return keys.team
    if grouping == "channel":
        return keys.channel
    if grouping == "label":
        table = labels_table()
        if table is None:
            raise GroupingUnavailable("grouping by label is not available")
        return table.c.label
    return None


def _join_labels(statement: S, grouping: Grouping, keys: _Keys) -> S:
    # An outer join: conversations without a label form the "no label" group.
    table = labels_table()
    if grouping != "label" or table is None:
        return statement
    return statement.outerjoin(table, table.c.conversation_id == keys.conversation_id)


def _scoped(
    scope: Scope, channel: SQLColumnExpression[Any], team: SQLColumnExpression[Any]
) -> list[Any]:
    conditions: list[Any] = []
    if scope.channel_id is not None:
        conditions.append(channel == scope.channel_id)
    if scope.team_id is not None:
        conditions.append(team == scope.team_id)
    if scope.visible is not None:
        conditions.append(channel.in_(scope.visible) if scope.visible else false())
    return conditions


def _within(column: SQLColumnExpression[Any], period: Period) -> ColumnElement[bool]:
    return and_(column >= period.start, column < period.end)


def _group_key(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class _Buckets:
    """The consecutive parts a report's period is cut into; one part: a plain summary.

    Every statement reads the whole span once and groups by the part its row's time
    falls in (`of`), in addition to its own grouping."""

    parts: tuple[Period, ...]
    postgres: bool

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a report needs at least one period")
        for before, after in zip(self.parts, self.parts[1:], strict=False):
            # The parts' figures must be the summaries of those parts alone: no instant
            # may fall in two of them, or in a gap.
            if before.end != after.start or before.zone != after.zone:
                raise ValueError("the periods of a report must follow one another")

    @property
    def span(self) -> Period:
        """The period from the first part's start to the last part's end."""
        first, last = self.parts[0], self.parts[-1]
        return Period(first.first, last.last, first.zone, first.start, last.end)

    @property
    def single(self) -> bool:
        """Only one part: nothing to group by (the plain summary's statements)."""
        return len(self.parts) == 1

    def of(self, column: SQLColumnExpression[Any]) -> ColumnElement[Any]:
        """The index of the part an instant falls in: 0 .. len(parts) - 1 inside the
        span, another number or NULL outside it (`index`). The parts' UTC bounds are
        computed in Python (DST included) and compared as `_within` compares them.
        With one part the constant 0, which the statements do not group by.

        PostgreSQL: width_bucket over the bounds, one array parameter (a binary search
        in C; the statement's text is the same for any number of parts). SQLite has no
        such function: the same binary search as nested CASEs, about log2(parts)
        comparisons a row (measured on PostgreSQL: the SLA statement 185 ms with the
        CASEs, 90 ms with width_bucket)."""
        if self.single:
            return literal(0, Integer)
        starts = [part.start for part in self.parts]
        if self.postgres:
            # Bucket i + 1 holds [bounds[i], bounds[i + 1]); 0 is before the span and
            # len(parts) + 1 after it.
            bounds = literal([*starts, self.parts[-1].end], ARRAY(DateTime(timezone=True)))
            return func.width_bucket(column, bounds, type_=Integer) - 1

        def search(low: int, high: int) -> ColumnElement[Any]:
            # `column` is known to fall in one of parts low .. high - 1.
            if high - low == 1:
                return literal(low, Integer)
            middle = (low + high) // 2
            return case((column < starts[middle], search(low, middle)), else_=search(middle, high))

        span = self.span
        outside = or_(column.is_(None), column < span.start, column >= span.end)
        return case((outside, null()), else_=search(0, len(starts)))

    def index(self, value: int | None) -> int | None:
        """A value of `of` as a part's index; None outside the span."""
        return value if value is not None and 0 <= value < len(self.parts) else None

    def grouped(self, bucket: ColumnElement[Any]) -> tuple[ColumnElement[Any], ...]:
        """`bucket` as a grouping column, or none for a single part."""
        return () if self.single else (bucket,)


# (part index, group key): whose figures a row of results are
Cell = tuple[int, str | None]


# --- the figures ------------------------------------------------------------------------------


_CONVERSATION_KEYS = _Keys(
    Conversation.id, Conversation.assignee_id, Conversation.team_id, Conversation.channel_id
)
_METRIC_KEYS = _Keys(
    ConversationMetric.conversation_id,
    ConversationMetric.agent_id,
    ConversationMetric.team_id,
    ConversationMetric.channel_id,
)


async def _opened(
    session: AsyncSession, buckets: _Buckets, grouping: Grouping, scope: Scope
) -> dict[Cell, int]:
    keys = _CONVERSATION_KEYS
    key = _key(grouping, keys)
    bucket = buckets.of(Conversation.created_at)
    statement = select(bucket, key if key is not None else null(), func.count()).select_from(
        Conversation
    )
    statement = _join_labels(statement, grouping, keys).where(
        _within(Conversation.created_at, buckets.span), *_scoped(scope, keys.channel, keys.team)
    )
    grouped = (*buckets.grouped(bucket), *((key,) if key is not None else ()))
    if grouped:
        statement = statement.group_by(*grouped)
    return {(b, _group_key(g)): n for b, g, n in (await session.execute(statement))}


async def _messages(
    session: AsyncSession, buckets: _Buckets, grouping: Grouping, scope: Scope
) -> dict[tuple[int, str | None, str], int]:
    # Outbound messages are their author's; inbound ones the conversation's assignee's.
    agent = case(
        (Message.direction == Direction.OUT.value, Message.author_id),
        else_=Conversation.assignee_id,
    )
    keys = _Keys(Message.conversation_id, agent, Conversation.team_id, Message.channel_id)
    key = _key(grouping, keys)
    bucket = buckets.of(Message.created_at)
    statement = select(
        bucket, key if key is not None else null(), Message.direction, func.count()
    ).select_from(Message)
    if grouping in ("agent", "team") or scope.team_id is not None:
        statement = statement.join(Conversation, Conversation.id == Message.conversation_id)
    statement = _join_labels(statement, grouping, keys).where(
        _within(Message.created_at, buckets.span),
        Message.kind == MessageKind.MESSAGE.value,
        Message.private.is_(False),
        Message.auto_submitted.is_(False),
        *_scoped(scope, keys.channel, keys.team),
    )
    statement = statement.group_by(
        *buckets.grouped(bucket), *((key,) if key is not None else ()), Message.direction
    )
    return {
        (b, _group_key(g), direction): n
        for b, g, direction, n in (await session.execute(statement))
    }


def _metric_value(clock: str) -> SQLColumnExpression[Any]:
    if clock == "wall":
        return ConversationMetric.wall_seconds
    return ConversationMetric.business_seconds


def _metric_rows(
    statement: Select[Any], buckets: _Buckets, grouping: Grouping, scope: Scope
) -> Select[Any]:
    keys = _METRIC_KEYS
    return _join_labels(statement, grouping, keys).where(
        _within(ConversationMetric.ended_at, buckets.span),
        *_scoped(scope, keys.channel, keys.team),
    )


def _micros(value: SQLColumnExpression[Any]) -> ColumnElement[int]:
    # Whole microseconds, so that sums are exact integers on both databases.
    return cast(func.round(value * MICROS), BigInteger)


# (part index, group key, kind, clock) -> the ranks a group's percentiles need
Ranks = dict[tuple[int, str | None, str, str], Ranked]


async def _ranked_windows(
    session: AsyncSession, buckets: _Buckets, grouping: Grouping, scope: Scope
) -> Ranks:
    """SQLite: ranks by window functions, one query per clock; only the rows at the
    percentile ranks come back."""
    key = _key(grouping, _METRIC_KEYS)
    bucket = buckets.of(ConversationMetric.ended_at)
    partition = (
        ConversationMetric.kind,
        *buckets.grouped(bucket),
        *((key,) if key is not None else ()),
    )
    result: Ranks = {}
    for clock in CLOCKS:
        value = _metric_value(clock)
        inner = select(
            ConversationMetric.kind.label("kind"),
            bucket.label("b"),
            (key if key is not None else null()).label("g"),
            value.label("v"),
            func.row_number().over(partition_by=partition, order_by=value).label("rn"),
            func.count().over(partition_by=partition).label("n"),
            func.sum(_micros(value)).over(partition_by=partition).label("us"),
        ).select_from(ConversationMetric)
        ranks = _metric_rows(inner, buckets, grouping, scope).where(value.is_not(None)).subquery()
        wanted = []
        for p in PERCENTILES:
            low = (ranks.c.n - 1) * p.numerator // p.denominator + 1
            wanted += [ranks.c.rn == low, ranks.c.rn == low + 1]
        statement = select(
            ranks.c.kind, ranks.c.b, ranks.c.g, ranks.c.rn, ranks.c.n, ranks.c.us, ranks.c.v
        ).where(or_(*wanted))
        for kind, b, g, rank, n, us, v in await session.execute(statement):
            ranked = result.setdefault(
                (b, _group_key(g), kind, clock), Ranked(count=n, micros=int(us))
            )
            ranked.values[rank] = float(v)
    return result


async def _ranked_arrays(
    session: AsyncSession,
    buckets: _Buckets,
    grouping: Grouping,
    scope: Scope,
    *,
    kind: str,
    totals: bool,
) -> tuple[Ranks, Ranks]:
    """PostgreSQL: one grouped pass; each group's values are sorted into an array (an
    aggregate, cheaper than ranking every row with a window) and only the elements at
    the percentile ranks are returned. The same ranks as the SQLite path, so the same
    figures.

    With `totals` (an additive grouping) the same pass also yields the totals, as a
    second grouping set told apart by GROUPING(): one scan and sort of the period's
    spans instead of two. Returns (groups, totals)."""
    key = _key(grouping, _METRIC_KEYS)
    bucket = buckets.of(ConversationMetric.ended_at)
    columns: list[Any] = [ConversationMetric.kind, bucket, key if key is not None else null()]
    columns.append(func.grouping(key) if totals and key is not None else literal(0))
    for clock in CLOCKS:
        value = _metric_value(clock)
        present = value.is_not(None)
        n = func.count(value)
        ordered = func.array_agg(aggregate_order_by(value, value), type_=ARRAY(Float)).filter(
            present
        )
        columns += [n, func.sum(_micros(value))]
        for p in PERCENTILES:
            low = (n - 1) * p.numerator // p.denominator + 1
            columns += [ordered[low], ordered[low + 1]]
    statement = _metric_rows(
        select(*columns).select_from(ConversationMetric), buckets, grouping, scope
    ).where(ConversationMetric.kind == kind)
    # The part before the group: the totals' set is then a prefix of the groups', so one
    # sort serves both.
    outer = (ConversationMetric.kind, *buckets.grouped(bucket))
    if key is None:
        statement = statement.group_by(*outer)
    elif totals:
        statement = statement.group_by(func.grouping_sets(tuple_(*outer, key), tuple_(*outer)))
    else:
        statement = statement.group_by(*outer, key)
    groups: Ranks = {}
    overall: Ranks = {}
    width = 2 + 2 * len(PERCENTILES)
    for row in await session.execute(statement):
        kind, b, g, is_total = row[0], row[1], _group_key(row[2]), bool(row[3])
        for i, clock in enumerate(CLOCKS):
            n, us, *values = row[4 + i * width : 4 + (i + 1) * width]
            if not n:
                continue
            ranked = Ranked(count=n, micros=int(us))
            for p, (low, high) in zip(
                PERCENTILES, zip(values[::2], values[1::2], strict=True), strict=True
            ):
                rank = (n - 1) * p.numerator // p.denominator + 1
                ranked.values[rank] = float(low)
                if high is not None:
                    ranked.values[rank + 1] = float(high)
            (overall if is_total else groups)[(b, g, kind, clock)] = ranked
    return groups, overall


async def _sla(
    session: AsyncSession, buckets: _Buckets, grouping: Grouping, scope: Scope, now: datetime
) -> dict[tuple[int, str | None, str], Attainment]:
    keys = _CONVERSATION_KEYS
    key = _key(grouping, keys)
    period = buckets.span
    on_time = and_(SlaClock.met_at.is_not(None), SlaClock.met_at <= SlaClock.due_at)
    met = and_(on_time, _within(SlaClock.met_at, period))
    # Not `~on_time`: that is NULL, not true, for a clock never met.
    breached = and_(
        _within(SlaClock.due_at, period),
        SlaClock.due_at <= now,
        or_(SlaClock.met_at.is_(None), SlaClock.met_at > SlaClock.due_at),
    )
    # A clock counts in the part its met_at falls in and in the one its due_at falls in
    # (as in those parts' own summaries, whose condition is either time in the part):
    # met by its met_at, breached by its due_at.
    met_part, due_part = buckets.of(SlaClock.met_at), buckets.of(SlaClock.due_at)
    statement = (
        select(
            key if key is not None else null(),
            SlaClock.target,
            met_part,
            due_part,
            func.sum(case((met, 1), else_=0)),
            func.sum(case((breached, 1), else_=0)),
        )
        .select_from(SlaClock)
        .join(Conversation, Conversation.id == SlaClock.conversation_id)
    )
    statement = _join_labels(statement, grouping, keys).where(
        or_(_within(SlaClock.met_at, period), _within(SlaClock.due_at, period)),
        *_scoped(scope, keys.channel, keys.team),
    )
    statement = statement.group_by(
        *((key,) if key is not None else ()),
        SlaClock.target,
        *buckets.grouped(met_part),
        *buckets.grouped(due_part),
    )
    counts: dict[tuple[int, str | None, str], list[int]] = {}
    for g, target, met_value, due_value, m, b in await session.execute(statement):
        met_in, due_in = buckets.index(met_value), buckets.index(due_value)
        for part in (met_in, due_in):
            if part is not None:
                counts.setdefault((part, _group_key(g), target), [0, 0])
        # Met needs met_at in the span, breached due_at: their part is never None then.
        if m and met_in is not None:
            counts[(met_in, _group_key(g), target)][0] += int(m)
        if b and due_in is not None:
            counts[(due_in, _group_key(g), target)][1] += int(b)
    return {cell: Attainment(met=m, breached=b) for cell, (m, b) in counts.items()}


# A unit of work: one statement on the session it is given, its results written into
# the report's figures. Units do not depend on each other, so on PostgreSQL each runs on
# its own connection at the same time (`_run`).
Job = Callable[[AsyncSession], Awaitable[None]]


# Figures by (part index, group key); the totals under group key None.
Into = defaultdict[Cell, Figures]


def _put_times(figures: Into, ranks: Ranks) -> None:
    for (b, g, kind, clock), ranked in ranks.items():
        figures[(b, g)].times[kind][clock] = ranked.stats()
        if clock == "wall" and kind == MetricKind.RESOLUTION.value:
            figures[(b, g)].conversations_resolved = ranked.count


def _times_jobs(
    into: Into,
    totals: Into | None,
    buckets: _Buckets,
    grouping: Grouping,
    scope: Scope,
    postgres: bool,
) -> list[Job]:
    """The span statements: the groups' times into `into` and, with `totals`, the
    totals' (under key None) as well. PostgreSQL: one statement per kind of span, which
    read disjoint ranges of the (kind, ended_at) index and so run side by side."""
    if not postgres:

        async def windows(session: AsyncSession) -> None:
            _put_times(into, await _ranked_windows(session, buckets, grouping, scope))

        if totals is None:
            return [windows]
        return [windows, *_times_jobs(totals, None, buckets, "none", scope, postgres)]

    with_totals = totals is not None and grouping in ADDITIVE

    def of_kind(kind: str) -> Job:
        async def arrays(session: AsyncSession) -> None:
            groups, overall = await _ranked_arrays(
                session, buckets, grouping, scope, kind=kind, totals=with_totals
            )
            _put_times(into, groups)
            if totals is not None:
                _put_times(totals, overall)

        return arrays

    jobs = [of_kind(kind.value) for kind in MetricKind]
    if totals is not None and not with_totals:
        jobs += _times_jobs(totals, None, buckets, "none", scope, postgres)
    return jobs


def _count_jobs(
    into: Into,
    buckets: _Buckets,
    grouping: Grouping,
    scope: Scope,
    now: datetime,
) -> list[Job]:
    """Conversations opened, messages in and out, SLA attainment, per group."""

    async def opened(session: AsyncSession) -> None:
        for cell, n in (await _opened(session, buckets, grouping, scope)).items():
            into[cell].conversations_opened = n

    async def messages(session: AsyncSession) -> None:
        for (b, g, direction), n in (await _messages(session, buckets, grouping, scope)).items():
            if direction == Direction.IN.value:
                into[(b, g)].messages_in = n
            else:
                into[(b, g)].messages_out = n

    async def sla(session: AsyncSession) -> None:
        attained = await _sla(session, buckets, grouping, scope, now)
        for (b, g, target), attainment in attained.items():
            into[(b, g)].sla[target] = attainment

    return [opened, messages, sla]


async def _run(session: AsyncSession, sessions: SessionFactory | None, jobs: list[Job]) -> None:
    """Every job: at the same time, each on its own session from `sessions`, or one after
    another on `session` (SQLite, a file read inside this process: nothing to gain; or
    without a factory). Reads are READ COMMITTED either way, so each statement always saw its own
    snapshot: running them apart changes no guarantee."""
    if sessions is None:
        for job in jobs:
            await job(session)
        return

    limit = asyncio.Semaphore(CONCURRENCY)

    async def alone(job: Job) -> None:
        async with limit, sessions() as own:
            # The statements already share the cores between them; a statement's own
            # parallel workers on top only competed with its siblings (measured: slower).
            await own.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            await job(own)

    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(alone(job))
    except ExceptionGroup as failed:
        # The siblings are cancelled by now; the caller sees the (first) error itself, as
        # it would one after another, not a group.
        raise failed.exceptions[0] from None


# --- group names ------------------------------------------------------------------------------


async def _known_groups(
    session: AsyncSession, grouping: Grouping, scope: Scope
) -> dict[str | None, str | None]:
    """Every agent, team or channel the report covers, with its name: a group without
    figures is shown with zeros rather than left out."""
    if grouping == "agent":
        users = await session.execute(
            select(User.id, User.name, User.email).where(User.is_active.is_(True))
        )
        return {str(i): name or email for i, name, email in users}
    if grouping == "team":
        teams = Base.metadata.tables.get(TEAMS_TABLE)
        if teams is None:
            return {}
        statement = select(teams.c.id, teams.c.name)
        if scope.team_id is not None:
            statement = statement.where(teams.c.id == scope.team_id)
        return {str(i): name for i, name in (await session.execute(statement))}
    if grouping == "channel":
        statement = select(Channel.id, Channel.name)
        if scope.channel_id is not None:
            statement = statement.where(Channel.id == scope.channel_id)
        if scope.visible is not None:
            statement = statement.where(Channel.id.in_(scope.visible))
        return {str(i): name for i, name in (await session.execute(statement))}
    return {}


async def _names(
    session: AsyncSession, grouping: Grouping, keys: Iterable[str | None]
) -> dict[str | None, str | None]:
    """Names of groups that have figures but are not among the known ones (a deactivated
    agent, a deleted team): looked up where possible, else left None."""
    ids = []
    for key in keys:
        if key is None:
            continue
        try:
            ids.append(uuid.UUID(key))
        except ValueError:
            continue
    if not ids:
        return {}
    if grouping == "agent":
        rows = await session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids)))
        return {str(i): name or email for i, name, email in rows}
    if grouping == "channel":
        channels = await session.execute(
            select(Channel.id, Channel.name).where(Channel.id.in_(ids))
        )
        return {str(i): name for i, name in channels}
    return {}


def _add_counts(totals: Figures, groups: Iterable[Figures]) -> None:
    for figures in groups:
        totals.conversations_opened += figures.conversations_opened
        totals.messages_in += figures.messages_in
        totals.messages_out += figures.messages_out
        for target, attainment in figures.sla.items():
            before = totals.sla[target]
            totals.sla[target] = Attainment(
                met=before.met + attainment.met, breached=before.breached + attainment.breached
            )


def _order(group: Group) -> tuple[bool, str, str]:
    # Named groups alphabetically, the "none" group (unassigned, no label) last.
    return (group.key is None, (group.name or group.key or "").casefold(), group.key or "")


# --- the reports ------------------------------------------------------------------------------


async def summary(
    session: AsyncSession,
    period: Period,
    grouping: Grouping,
    scope: Scope,
    *,
    now: datetime | None = None,
    sessions: SessionFactory | None = None,
) -> Summary:
    """The summary report; GroupingUnavailable when `grouping` cannot be answered.

    With `sessions` (read sessions of the same database) the statements run at the same
    time on PostgreSQL, each on its own connection; `session` still reads the names."""
    [report] = await summaries(session, [period], grouping, scope, now=now, sessions=sessions)
    return report


async def summaries(
    session: AsyncSession,
    periods: Sequence[Period],
    grouping: Grouping,
    scope: Scope,
    *,
    now: datetime | None = None,
    sessions: SessionFactory | None = None,
) -> list[Summary]:
    """The summary report of each period, from one pass over all of them: the periods
    must follow one another (each ends where the next starts, same timezone; ValueError
    otherwise). Each report is the one `summary` gives for that period alone: the same
    statements over the whole span, grouped by the period as well. Otherwise as
    `summary`."""
    check_grouping(grouping)
    # From the bind, not a connection: `session` holds none while the jobs wait for theirs.
    postgres = session.get_bind().dialect.name == "postgresql"
    buckets = _Buckets(tuple(periods), postgres)
    now = now or datetime.now(UTC)
    # Every row counts in exactly one agent, team or channel group, so their counts add
    # up to the totals; label groups overlap (two labels, two groups), and no percentile
    # adds up: those are computed over everything again (on PostgreSQL in the groups'
    # own statement, as a second grouping set).
    additive = grouping in ADDITIVE
    grouped: Into = defaultdict(Figures)
    overall: Into = defaultdict(Figures)
    if grouping == "none":
        jobs = [
            *_times_jobs(overall, None, buckets, "none", scope, postgres),
            *_count_jobs(overall, buckets, "none", scope, now),
        ]
    else:
        jobs = [
            *_times_jobs(grouped, overall, buckets, grouping, scope, postgres),
            *_count_jobs(grouped, buckets, grouping, scope, now),
        ]
        if not additive:
            jobs += _count_jobs(overall, buckets, "none", scope, now)
    await _run(session, sessions if postgres else None, jobs)
    if grouping == "none":
        return [
            Summary(part, grouping, [], overall.get((b, None), Figures()))
            for b, part in enumerate(buckets.parts)
        ]
    known = await _known_groups(session, grouping, scope)
    # Names of groups with figures that are not among the known ones, looked up once for
    # every part; each part still lists only its own (as its summary alone would).
    looked_up = (
        {}
        if grouping == "label"
        else await _names(session, grouping, {g for _, g in grouped if g not in known})
    )
    reports = []
    for b, part in enumerate(buckets.parts):
        totals = overall.get((b, None), Figures())
        figures = {g: f for (of, g), f in grouped.items() if of == b}
        if additive:
            _add_counts(totals, figures.values())
        names = {key: key for key in figures} if grouping == "label" else dict(known)
        names.update({key: looked_up[key] for key in figures if key in looked_up})
        groups = [
            Group(key=key, name=names.get(key), figures=figures.get(key) or Figures())
            for key in {*names, *figures}
        ]
        reports.append(Summary(part, grouping, sorted(groups, key=_order), totals))
    return reports


def _quarter_hour(dialect: str, column: SQLColumnExpression[Any]) -> ColumnElement[int]:
    """The UTC quarter hour (since the epoch) an instant falls in."""
    if dialect == "postgresql":
        return cast(func.floor(extract("epoch", column) / QUARTER_HOUR), BigInteger)
    # SQLite keeps UTC times as text, which strftime reads.
    return cast(func.strftime("%s", column), Integer) // QUARTER_HOUR


async def volume(session: AsyncSession, period: Period, scope: Scope) -> Volume:
    """Customer messages per local weekday and hour of the period.

    Counted per UTC quarter hour in the database (a few thousand rows for a year), then
    placed on the local clock here, where the timezone rules (DST) are exact.
    """
    dialect = (await session.connection()).dialect.name
    bucket = _quarter_hour(dialect, Message.created_at)
    statement = select(bucket, func.count()).select_from(Message)
    if scope.team_id is not None:
        statement = statement.join(Conversation, Conversation.id == Message.conversation_id)
    statement = statement.where(
        _within(Message.created_at, period),
        Message.direction == Direction.IN.value,
        Message.kind == MessageKind.MESSAGE.value,
        Message.private.is_(False),
        Message.auto_submitted.is_(False),
        *_scoped(scope, Message.channel_id, Conversation.team_id),
    ).group_by(bucket)
    hours = [[0] * 24 for _ in WEEKDAYS]
    for quarter, count in await session.execute(statement):
        local = datetime.fromtimestamp(int(quarter) * QUARTER_HOUR, UTC).astimezone(period.zone)
        hours[local.weekday()][local.hour] += count
    return Volume(period, hours)
