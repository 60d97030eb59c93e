"""Reports (/reports, managers and admins): the live overview, response times over time,
conversations by channel over time, the hour-of-week heatmap, and tables by agent, team
and channel, with CSV exports.

The filters are a GET form, so a report's URL can be shared: `range` (a preset, or
`custom` with `from` and `to`), `timezone`, `clock` (wall or business time) and
`interval` (auto, day, week). The figures are the reports API's own (inbox/reports.py
through web/api/report_series.py), put in the API's answer models before they are
shown (web/ui/admin/reports_view.py); charts are SVG drawn here (charts.py). The
overview is refreshed by static/js/admin/reports.js when live events arrive.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from inbox.report_period import MAX_DAYS, Period, PeriodError, period
from inbox.reports import Grouping, Scope, summary, volume
from web.api.report_schemas import SummaryOut, VolumeOut
from web.api.report_series import MAX_DAY_BUCKETS, buckets, overview, series
from web.api.report_series_schemas import BucketOut, Interval, OverviewOut, SeriesOut, period_out
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
    typed_from: str = ""
    typed_to: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def query(self, **more: str) -> str:
        """The query string of an API call for the same period."""
        return urlencode(
            {"from": str(self.first), "to": str(self.last), "timezone": self.timezone, **more}
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
    request: web.Request, span: Period, chosen: Filters, fmt: Formats, rtl: bool
) -> dict[str, Any]:
    t = fmt.t
    sessions = request.app[READ_SESSIONS_KEY]
    # Managers and admins see every channel (the page's roles): no visibility filter.
    scope = Scope()
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
    async with request.app[READ_SESSIONS_KEY]() as session:
        now = await overview(session, Scope())
    report = await _report(request, span, chosen, fmt, rtl) if span is not None else None
    return render_admin(
        request,
        "admin/reports/index.html",
        "reports",
        {
            "filters": chosen,
            "presets": [(key, t(label)) for key, label in PRESETS],
            "zones": time_zones(),
            "clocks": [("wall", t("Wall-clock time")), ("business", t("Business hours"))],
            "intervals": [("auto", t("Automatic")), ("day", t("By day")), ("week", t("By week"))],
            "overview": overview_context(now, fmt),
            "report": report,
        },
    )
