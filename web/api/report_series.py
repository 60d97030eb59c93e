"""Reports over time and the live overview (issue 11, the report screen).

Admins and managers only, like the other reports (web/api/reports.py).

- `GET /reports/series`: a period cut into local days or weeks; each bucket is the
  summary report of those days grouped by channel (inbox/reports.py `summaries`: the
  summary's own statements, grouped by bucket as well, so the very figures `GET
  /reports/summary` gives for that range), so response times over time and volume by
  channel over time are the same numbers as everywhere else, DST included.
- `GET /reports/series/export.csv`: the totals per bucket, or each channel per bucket,
  in the summary export's columns (inbox/report_csv.py).
- `GET /reports/overview`: how things stand now: open, unassigned, pending and waiting
  conversations, and the SLA targets at risk or overdue (inbox/sla.py's own judgement).

The hour-of-week heatmap is `GET /reports/volume` (web/api/reports.py).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from sqlalchemy import and_, case, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.business_hours import Calendar
from inbox.metric_models import SlaClock, SlaPolicy, SlaTarget
from inbox.models import Role
from inbox.report_csv import chunks, summary_header, summary_rows
from inbox.report_period import Period, PeriodError, period
from inbox.reports import Scope, Summary, summaries
from inbox.response_metrics import calendar_for
from inbox.sla import Clock, target_status
from timeline.clock import database_now
from timeline.db import SessionFactory
from timeline.models import Conversation, ConversationStatus
from web import auth
from web.api.report_series_schemas import (
    BucketOut,
    Interval,
    OverviewOut,
    OverviewQuery,
    SeriesExportQuery,
    SeriesOut,
    SeriesQuery,
    period_out,
)
from web.errors import validation_failed
from web.keys import READ_SESSIONS_KEY
from web.openapi import ApiRoutes, parse_query, respond

routes = ApiRoutes(tag="reports")

READERS = (Role.ADMIN, Role.MANAGER)
# Day buckets up to this many days (a quarter); longer periods go by week.
MAX_DAY_BUCKETS = 92
OPEN = ConversationStatus.OPEN.value
PENDING = ConversationStatus.PENDING.value
RESOLVED = ConversationStatus.RESOLVED.value


# --- the series -------------------------------------------------------------------------------


def buckets(span: Period, interval: Interval) -> tuple[Literal["day", "week"], list[Period]]:
    """The local days (or Monday-to-Sunday weeks, cut at the edges) of a period, each a
    period of its own; PeriodError("interval") for more day buckets than allowed."""
    days = (span.last - span.first).days + 1
    automatic: Literal["day", "week"] = "day" if days <= MAX_DAY_BUCKETS else "week"
    chosen = automatic if interval == "auto" else interval
    if chosen == "day" and days > MAX_DAY_BUCKETS:
        raise PeriodError(
            "interval", f"by day covers at most {MAX_DAY_BUCKETS} days (this is {days}): use week"
        )
    parts = []
    first = span.first
    while first <= span.last:
        last = first if chosen == "day" else first + timedelta(days=6 - first.weekday())
        last = min(last, span.last)
        parts.append(period(first, last, span.timezone))
        first = last + timedelta(days=1)
    return chosen, parts


async def series(
    session: AsyncSession,
    span: Period,
    interval: Interval,
    scope: Scope,
    *,
    sessions: SessionFactory | None = None,
) -> tuple[Literal["day", "week"], list[Summary]]:
    """The summary report of each bucket, grouped by channel; the totals carry the
    response times. All buckets come from one pass over the period (a summary per
    bucket was one pass per bucket: 90 of them for a quarter by day)."""
    chosen, parts = buckets(span, interval)
    return chosen, await summaries(session, parts, "channel", scope, sessions=sessions)


def series_rows(
    reports: Sequence[Summary], table: Literal["times", "channels"]
) -> Iterator[list[str]]:
    """A series as CSV rows: the summary export's figure columns after the bucket's days
    (and, per channel, its id and name)."""
    figures = summary_header()[3:]
    if table == "times":
        yield ["from", "to", *figures]
    else:
        yield ["from", "to", "channel_id", "channel_name", *figures]
    for report in reports:
        days = [str(report.period.first), str(report.period.last)]
        for row in summary_rows(report):
            kind, key, name, *cells = row
            if table == "times" and kind == "total":
                yield [*days, *cells]
            elif table == "channels" and kind == "group":
                yield [*days, key, name, *cells]


# --- the overview -----------------------------------------------------------------------------


def _scoped(scope: Scope) -> list[Any]:
    conditions: list[Any] = []
    if scope.channel_id is not None:
        conditions.append(Conversation.channel_id == scope.channel_id)
    if scope.team_id is not None:
        conditions.append(Conversation.team_id == scope.team_id)
    if scope.visible is not None:
        conditions.append(Conversation.channel_id.in_(scope.visible) if scope.visible else false())
    return conditions


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def overview(session: AsyncSession, scope: Scope, now: datetime | None = None) -> OverviewOut:
    """How things stand at `now` (the database's clock by default)."""
    now = now or await database_now(session)
    live = Conversation.status != RESOLVED
    waiting = and_(live, Conversation.waiting_since.is_not(None))
    opened, unassigned, pending, waiters, since = (
        await session.execute(
            select(
                _count(Conversation.status == OPEN),
                _count(and_(Conversation.status == OPEN, Conversation.assignee_id.is_(None))),
                _count(Conversation.status == PENDING),
                _count(waiting),
                func.min(case((waiting, Conversation.waiting_since))),
            ).where(live, *_scoped(scope))
        )
    ).one()
    at_risk, breached = await _sla_states(session, scope, now)
    return OverviewOut(
        at=now,
        open=int(opened),
        unassigned=int(unassigned),
        pending=int(pending),
        waiting=int(waiters),
        waiting_since=since,
        sla_at_risk=len(at_risk - breached),
        sla_breached=len(breached),
    )


async def _sla_states(
    session: AsyncSession, scope: Scope, now: datetime
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Unresolved conversations with a target of their current cycle at risk, and with
    one overdue and unmet. The clocks the SLA worker keeps (`sla_clocks`) say when each
    target started and is due; whether one is at risk is inbox/sla.py's judgement, in
    the conversation's business hours."""
    rows = (
        await session.execute(
            select(
                SlaClock.conversation_id,
                SlaClock.cycle,
                SlaClock.target,
                SlaClock.started_at,
                SlaClock.due_at,
                SlaClock.met_at,
                SlaPolicy.first_response_seconds,
                SlaPolicy.next_response_seconds,
                SlaPolicy.resolution_seconds,
            )
            .join(Conversation, Conversation.id == SlaClock.conversation_id)
            .join(SlaPolicy, SlaPolicy.id == SlaClock.policy_id)
            .where(Conversation.status != RESOLVED, *_scoped(scope))
        )
    ).all()
    # A breached clock of an earlier cycle stays recorded; only the current cycle counts.
    current: dict[uuid.UUID, int] = defaultdict(int)
    for row in rows:
        current[row.conversation_id] = max(current[row.conversation_id], row.cycle)
    breached: set[uuid.UUID] = set()
    running: list[tuple[uuid.UUID, Clock]] = []
    for row in rows:
        if row.cycle != current[row.conversation_id] or row.met_at is not None:
            continue
        if row.due_at <= now:
            breached.add(row.conversation_id)
            continue
        seconds = {
            SlaTarget.FIRST_RESPONSE.value: row.first_response_seconds,
            SlaTarget.NEXT_RESPONSE.value: row.next_response_seconds,
            SlaTarget.RESOLUTION.value: row.resolution_seconds,
        }.get(row.target)
        if seconds is None:
            continue
        clock = Clock(SlaTarget(row.target), row.cycle, seconds, row.started_at, row.due_at, None)
        running.append((row.conversation_id, clock))
    at_risk: set[uuid.UUID] = set()
    if not running:
        return at_risk, breached
    conversations = {
        c.id: c
        for c in await session.scalars(
            select(Conversation).where(Conversation.id.in_({cid for cid, _ in running}))
        )
    }
    # Calendars follow the team, else the channel: one lookup per pair, not per clock.
    calendars: dict[tuple[uuid.UUID | None, uuid.UUID], Calendar | None] = {}
    for conversation_id, clock in running:
        conversation = conversations[conversation_id]
        key = (conversation.team_id, conversation.channel_id)
        if key not in calendars:
            calendars[key] = (await calendar_for(session, conversation))[0]
        if target_status(clock, calendars[key], now).state == "at_risk":
            at_risk.add(conversation_id)
    return at_risk, breached


# --- the routes -------------------------------------------------------------------------------


def _span(query: SeriesQuery) -> Period:
    try:
        return period(query.from_, query.to, query.timezone)
    except PeriodError as err:
        raise validation_failed({err.field: err.message}, "invalid report period") from err


def _scope(request: web.Request, query: SeriesQuery | OverviewQuery) -> Scope:
    return Scope(
        channel_id=query.channel_id,
        team_id=query.team_id,
        visible=auth.visible_channel_ids(request),
    )


async def _series(
    request: web.Request, query: SeriesQuery
) -> tuple[Period, Literal["day", "week"], list[Summary]]:
    span = _span(query)
    sessions = request.app[READ_SESSIONS_KEY]
    try:
        async with sessions() as session:
            chosen, reports = await series(
                session, span, query.interval, _scope(request, query), sessions=sessions
            )
    except PeriodError as err:
        raise validation_failed({err.field: err.message}, "invalid report period") from err
    return span, chosen, reports


@routes.route(
    "GET",
    "/reports/series",
    summary="Response times and volume by channel per local day or week",
    query=SeriesQuery,
    response=SeriesOut,
    errors=[403],
)
async def report_series(request: web.Request) -> web.Response:
    """Each bucket's summary figures, totals and per channel (admins and managers)."""
    auth.require_role(request, *READERS)
    query = parse_query(request, SeriesQuery)
    span, chosen, reports = await _series(request, query)
    return respond(
        request,
        SeriesOut(
            period=period_out(span),
            interval=chosen,
            buckets=[BucketOut.of(report) for report in reports],
        ),
    )


@routes.route(
    "GET",
    "/reports/series/export.csv",
    summary="A report series as CSV: totals per bucket, or each channel per bucket",
    produces="text/csv",
    query=SeriesExportQuery,
    errors=[403],
)
async def export_report_series(request: web.Request) -> web.Response:
    """`text/csv` (UTF-8 with BOM), durations in seconds, an empty cell for no figure."""
    auth.require_role(request, *READERS)
    query = parse_query(request, SeriesExportQuery)
    span, _, reports = await _series(request, query)
    name = f"{query.table}-{span.first}-{span.last}.csv"
    return web.Response(
        body=b"".join(chunks(series_rows(reports, query.table))),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            # Names of agents and channels: no shared cache keeps a copy.
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@routes.route(
    "GET",
    "/reports/overview",
    summary="Open, unassigned, pending and waiting conversations, SLA targets at risk",
    query=OverviewQuery,
    response=OverviewOut,
    errors=[403],
)
async def report_overview(request: web.Request) -> web.Response:
    """How things stand now (admins and managers)."""
    auth.require_role(request, *READERS)
    query = parse_query(request, OverviewQuery)
    async with request.app[READ_SESSIONS_KEY]() as session:
        result = await overview(session, _scope(request, query))
    return respond(request, result)
