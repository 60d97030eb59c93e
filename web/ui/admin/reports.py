"""Reports (/reports, managers and admins): the live overview, response times over time,
conversations by channel over time, the hour-of-week heatmap, and tables by agent, team
and channel, with CSV exports.

The filters are a GET form, so a report's URL can be shared: `range` (a preset, or
`custom` with `from` and `to`), `timezone`, `clock` (wall or business time),
`interval` (auto, day, week), and `channel_id` and `team_id` (one channel the user sees,
one team; empty for all). The figures are the reports API's own (inbox/reports.py
through web/api/report_series.py), narrowed by the API's own scope (`channel_id`,
`team_id`, the channels the user sees), put in the API's answer models before they are
shown (web/ui/admin/reports_view.py); charts are SVG drawn here (charts.py). Every
export link carries the same query. A channel or team id in the URL that is not in the
pickers (unknown, malformed, not visible) falls back to all, with a note by its picker.

The overview (`GET /reports/overview` takes `channel_id` and `team_id` too) is narrowed
the same way, and refreshed by static/js/admin/reports.js with that narrowing when live
events arrive.
"""

from __future__ import annotations

import functools
import uuid
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import Team
from inbox.report_period import MAX_DAYS, Period, PeriodError, period
from inbox.reports import Grouping, Scope, summary, volume
from timeline.models import Channel
from web.api.report_schemas import SummaryOut, VolumeOut
from web.api.report_series import MAX_DAY_BUCKETS, buckets, overview, series
from web.api.report_series_schemas import BucketOut, Interval, OverviewOut, SeriesOut, period_out
from web.auth import VISIBLE_CHANNELS_KEY
from web.keys import READ_SESSIONS_KEY
from web.ui.admin.reports_view import (
    Clock,
    Formats,
    Translate,
    group_table,
    heatmap_view,
    series_view,
)
from web.ui.admin.shell import admin_page, render_admin
from web.ui.render import language_of, translator_of

PRESETS: tuple[tuple[str, str], ...] = (
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("custom", "Custom range"),
)
DEFAULT_PRESET = "30d"
CLOCKS: tuple[Clock, ...] = ("wall", "business")
INTERVALS: tuple[Interval, ...] = ("auto", "day", "week")
GROUPINGS: tuple[Grouping, ...] = ("agent", "team", "channel")
API = "/api/v1/reports"


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/reports", reports_page)


@functools.cache
def time_zones() -> list[str]:
    """Every IANA zone this system knows, sorted (the picker's options)."""
    return sorted(zoneinfo.available_timezones())


@dataclass
class Filters:
    """What the form asked for, and what was wrong with it (by field)."""

    range: str = DEFAULT_PRESET
    first: date | None = None
    last: date | None = None
    timezone: str = "UTC"
    clock: Clock = "wall"
    interval: Interval = "auto"
    channel_id: str = ""  # as the pickers' values: a channel's id, "" for all
    team_id: str = ""
    typed_from: str = ""
    typed_to: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    # Why a picker shows "All" although the URL named something (by field).
    notes: dict[str, str] = field(default_factory=dict)

    def query(self, **more: str) -> str:
        """The query string of an API call for the same period, channel and team."""
        params = {"from": str(self.first), "to": str(self.last), "timezone": self.timezone}
        if self.channel_id:
            params["channel_id"] = self.channel_id
        if self.team_id:
            params["team_id"] = self.team_id
        return urlencode({**params, **more})


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of the channel or team picker."""

    key: str  # the id, as the API writes it
    name: str
    icon: str


async def choices(
    session: AsyncSession, visible: frozenset[uuid.UUID] | None
) -> tuple[list[Choice], list[Choice]]:
    """The pickers' channels (those the user sees; None: all) and teams, by name."""
    channels = select(Channel.id, Channel.name, Channel.kind).order_by(Channel.name, Channel.id)
    if visible is not None:
        channels = channels.where(Channel.id.in_(visible))
    teams = select(Team.id, Team.name).order_by(Team.name, Team.id)
    return (
        [
            Choice(str(key), name, f"channel-{kind}")
            for key, name, kind in await session.execute(channels)
        ],
        [Choice(str(key), name, "users") for key, name in await session.execute(teams)],
    )


def _canonical(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def narrow(
    chosen: Filters,
    channels: list[Choice],
    teams: list[Choice],
    visible: frozenset[uuid.UUID] | None,
    t: Translate,
) -> Scope:
    """The scope of the report and the overview, as the API makes it of the same query
    (web/api/reports.py `_scope`). A channel or team that is not among the choices
    (unknown, malformed, not visible to this user) falls back to all, with a note."""
    notes = {
        "channel_id": t("The channel in the link is not in the list: all channels are shown."),
        "team_id": t("The team in the link is not in the list: all teams are shown."),
    }
    for name, options in (("channel_id", channels), ("team_id", teams)):
        wanted = getattr(chosen, name)
        if not wanted:
            continue
        key = _canonical(wanted)
        if key is None or not any(option.key == key for option in options):
            chosen.notes[name] = notes[name]
            key = ""
        setattr(chosen, name, key)
    return Scope(
        channel_id=uuid.UUID(chosen.channel_id) if chosen.channel_id else None,
        team_id=uuid.UUID(chosen.team_id) if chosen.team_id else None,
        visible=visible,
    )


def preset_days(preset: str, today: date) -> tuple[date, date]:
    """The local days a preset covers, today included."""
    if preset == "7d":
        return today - timedelta(days=6), today
    if preset == "90d":
        return today - timedelta(days=89), today
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    return today - timedelta(days=29), today


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None


def read_filters(
    query: Mapping[str, str], t: Translate, now: datetime
) -> tuple[Filters, Period | None]:
    """The filters of a request and the period they make (None when something is wrong)."""
    chosen = Filters(
        typed_from=query.get("from", "")[:32],
        typed_to=query.get("to", "")[:32],
        timezone=query.get("timezone", "UTC")[:64] or "UTC",
        channel_id=query.get("channel_id", "").strip()[:64],
        team_id=query.get("team_id", "").strip()[:64],
    )
    clock = query.get("clock", "wall")
    chosen.clock = "business" if clock == "business" else "wall"
    interval = query.get("interval", "auto")
    chosen.interval = "day" if interval == "day" else "week" if interval == "week" else "auto"
    presets = {key for key, _ in PRESETS}
    wanted = query.get("range")
    if wanted not in presets:
        wanted = "custom" if "from" in query or "to" in query else DEFAULT_PRESET
    chosen.range = wanted
    try:
        zone = zoneinfo.ZoneInfo(chosen.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        chosen.errors["timezone"] = t("Choose a time zone from the list.")
        zone = zoneinfo.ZoneInfo("UTC")
    if wanted == "custom":
        chosen.first, chosen.last = _day(chosen.typed_from), _day(chosen.typed_to)
        if chosen.first is None:
            chosen.errors["from"] = t("Enter a date as YYYY-MM-DD.")
        if chosen.last is None:
            chosen.errors["to"] = t("Enter a date as YYYY-MM-DD.")
    else:
        chosen.first, chosen.last = preset_days(wanted, now.astimezone(zone).date())
    if chosen.first is not None and chosen.last is not None:
        if chosen.first > chosen.last:
            chosen.errors["to"] = t("The last day must not be before the first.")
        elif (chosen.last - chosen.first).days >= MAX_DAYS:
            chosen.errors["to"] = t("A report covers at most {n} days.", n=MAX_DAYS)
    if chosen.errors or chosen.first is None or chosen.last is None:
        return chosen, None
    try:
        span = period(chosen.first, chosen.last, chosen.timezone)
        buckets(span, chosen.interval)
    except PeriodError as err:
        if err.field == "interval":
            message = t("By day covers at most {n} days: choose By week.", n=MAX_DAY_BUCKETS)
        else:
            message = t("Enter a date as YYYY-MM-DD.")
        chosen.errors[err.field] = message
        return chosen, None
    return chosen, span


async def _report(
    request: web.Request, span: Period, chosen: Filters, scope: Scope, fmt: Formats, rtl: bool
) -> dict[str, Any]:
    t = fmt.t
    sessions = request.app[READ_SESSIONS_KEY]
    async with sessions() as session:
        grouped = {
            g: SummaryOut.of(await summary(session, span, g, scope, sessions=sessions))
            for g in GROUPINGS
        }
        interval, reports = await series(session, span, chosen.interval, scope, sessions=sessions)
        hours = VolumeOut.of(await volume(session, span, scope))
    over_time = SeriesOut(
        period=period_out(span), interval=interval, buckets=[BucketOut.of(r) for r in reports]
    )
    names = {
        "agent": (t("By agent"), t("Agent"), t("Unassigned")),
        "team": (t("By team"), t("Team"), t("No team")),
        "channel": (t("By channel"), t("Channel"), "—"),
    }
    tables = [
        group_table(
            grouped[g],
            chosen.clock,
            fmt,
            title=names[g][0],
            key_title=names[g][1],
            no_group=names[g][2],
            export_url=f"{API}/summary/export.csv?{chosen.query(group_by=g)}",
        )
        for g in GROUPINGS
    ]
    titles = {
        "first_response": t("First response time"),
        "reply": t("Reply time"),
        "resolution": t("Resolution time"),
    }
    return {
        "span_text": fmt.days(span.first, span.last),
        "tables": tables,
        "series": series_view(over_time, chosen.clock, fmt, titles=titles, rtl=rtl),
        "heatmap": heatmap_view(hours, fmt, rtl=rtl),
        "exports": {
            "times": f"{API}/series/export.csv?{chosen.query(interval=interval, table='times')}",
            "channels": f"{API}/series/export.csv?"
            + chosen.query(interval=interval, table="channels"),
            "volume": f"{API}/volume/export.csv?{chosen.query()}",
        },
        "time_titles": titles,
    }


def overview_context(figures: OverviewOut, fmt: Formats) -> dict[str, Any]:
    """The overview's figures, and the longest wait written out."""
    wait = None
    if figures.waiting_since is not None:
        wait = max(0.0, (figures.at - figures.waiting_since).total_seconds())
    return {
        "figures": figures,
        "wait": wait,
        "wait_text": fmt.duration(wait) if wait is not None else "—",
    }


@admin_page("reports")
async def reports_page(request: web.Request) -> web.StreamResponse:
    """The report screen for the period the query asks for (the last 30 days by default)."""
    translator = translator_of(request)
    t = translator.gettext
    rtl = translator.direction == "rtl"
    fmt = Formats(language_of(request), t)
    chosen, span = read_filters(request.query, t, datetime.now(UTC))
    # None for managers and admins (every channel), as the API's visibility.
    visible = request.get(VISIBLE_CHANNELS_KEY)
    async with request.app[READ_SESSIONS_KEY]() as session:
        channels, teams = await choices(session, visible)
        scope = narrow(chosen, channels, teams, visible, t)
        now = await overview(session, scope)
    report = await _report(request, span, chosen, scope, fmt, rtl) if span is not None else None
    narrowed = [c for c in channels if c.key == chosen.channel_id] + [
        c for c in teams if c.key == chosen.team_id
    ]
    return render_admin(
        request,
        "admin/reports/index.html",
        "reports",
        {
            "filters": chosen,
            "presets": [(key, t(label)) for key, label in PRESETS],
            "zones": time_zones(),
            "channels": channels,
            "teams": teams,
            "narrowed": narrowed,
            "clocks": [("wall", t("Wall-clock time")), ("business", t("Business hours"))],
            "intervals": [("auto", t("Automatic")), ("day", t("By day")), ("week", t("By week"))],
            "overview": overview_context(now, fmt),
            "report": report,
        },
    )
