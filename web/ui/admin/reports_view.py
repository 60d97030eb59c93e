"""What the report screen shows, built from the reports API's own answer models
(SummaryOut, SeriesOut, VolumeOut, OverviewOut), so the page and the API cannot disagree:
tables with the raw figure of each cell (`value`, rendered as `data-value`) beside its
text, and the charts (web/ui/admin/charts.py) drawn from the same figures.

Numbers, durations and dates are written with Babel in the page's language (CLDR units:
"2.5 min", "2.5 دقیقه"), the same units static/js/admin/reports.js uses through Intl.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from babel.dates import format_date, get_day_names
from babel.numbers import format_decimal, format_percent
from babel.units import format_unit
from markupsafe import Markup

from web.api.report_schemas import (
    FiguresOut,
    GroupOut,
    StatsOut,
    SummaryOut,
    TimesOut,
    VolumeOut,
)
from web.api.report_series_schemas import BucketOut, SeriesOut
from web.ui.admin import charts

Clock = Literal["wall", "business"]
Translate = Callable[..., str]
KINDS = ("first_response", "reply", "resolution")
COUNTS = ("conversations_opened", "conversations_resolved", "messages_in", "messages_out")
# Duration units and the number of seconds under which each is used.
_UNITS = (
    (60, 1, "duration-second"),
    (3600, 60, "duration-minute"),
    (172800, 3600, "duration-hour"),
    (float("inf"), 86400, "duration-day"),
)
CHANNEL_COLOURS = 8  # chart__bar--c0 .. --c7 in admin_reports.css; more channels repeat


class Formats:
    """Figures written in the page's language."""

    def __init__(self, language: str, t: Translate) -> None:
        self.language = language
        self.t = t

    def duration(self, seconds: float | None) -> str:
        """A duration in one unit: "45 sec", "2.5 min", "3 hr", "2 days"; "—" for none."""
        if seconds is None:
            return "—"
        for below, size, unit in _UNITS:
            if seconds < below:
                amount = seconds / size
                digits = "#,##0" if amount >= 10 or size == 1 else "#,##0.#"
                return str(
                    format_unit(amount, unit, length="short", format=digits, locale=self.language)
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def count(self, value: float) -> str:
        return str(format_decimal(value, locale=self.language))

    def percent(self, rate: float | None) -> str:
        return "—" if rate is None else str(format_percent(rate, locale=self.language))

    def day(self, value: date) -> str:
        return str(format_date(value, "d MMM", locale=self.language))

    def days(self, first: date, last: date) -> str:
        if first == last:
            return str(format_date(first, "d MMM y", locale=self.language))
        return f"{self.day(first)} \u2013 {format_date(last, 'd MMM y', locale=self.language)}"

    def weekdays(self) -> list[str]:
        """Monday first, as the volume report's rows."""
        names = get_day_names("abbreviated", locale=self.language)
        return [str(names[i]) for i in range(7)]


@dataclass(frozen=True, slots=True)
class Cell:
    """One figure: `field` names it as the API does (`first_response.median`), `value` is
    the API's number (None: no figure), `text` what is shown."""

    field: str
    value: float | None
    text: str


@dataclass(frozen=True, slots=True)
class Row:
    key: str | None
    name: str
    cells: list[Cell]


@dataclass(frozen=True, slots=True)
class GroupTable:
    """A summary report as a table: one row per agent, team or channel, then totals."""

    grouping: str
    title: str
    key_title: str
    rows: list[Row]
    totals: Row
    export_url: str


def times_of(figures: FiguresOut, kind: str, clock: Clock) -> StatsOut | None:
    """The stats of one kind of span in one clock (None: no business figures)."""
    times: TimesOut = getattr(figures, kind)
    return times.wall if clock == "wall" else times.business


def _figure_cells(figures: FiguresOut, clock: Clock, fmt: Formats) -> list[Cell]:
    cells = [
        Cell(name, getattr(figures, name), fmt.count(getattr(figures, name))) for name in COUNTS
    ]
    for kind in KINDS:
        stats = times_of(figures, kind, clock)
        for stat in ("median", "p90"):
            value = None if stats is None else getattr(stats, stat)
            cells.append(Cell(f"{kind}.{stat}", value, fmt.duration(value)))
    rate = figures.sla["first_response"].attainment
    cells.append(Cell("sla.first_response.attainment", rate, fmt.percent(rate)))
    return cells


def group_table(
    report: SummaryOut,
    clock: Clock,
    fmt: Formats,
    *,
    title: str,
    key_title: str,
    no_group: str,
    export_url: str,
) -> GroupTable:
    """The table of a grouped summary; `no_group` names the group without a key."""
    rows = [
        Row(
            group.key,
            group.name or (no_group if group.key is None else group.key),
            _figure_cells(group, clock, fmt),
        )
        for group in report.groups
    ]
    totals = Row(None, fmt.t("Total"), _figure_cells(report.totals, clock, fmt))
    return GroupTable(report.group_by, title, key_title, rows, totals, export_url)


@dataclass(frozen=True, slots=True)
class TimesChart:
    kind: str
    title: str
    svg: Markup


@dataclass(frozen=True, slots=True)
class SeriesView:
    """Response times and conversations by channel, per bucket (oldest first)."""

    spans: list[str]  # a bucket's days in full
    starts: list[date]  # its first day (the rows' `data-from`)
    legend: list[tuple[str, str]]  # the line charts' series: (key, name)
    times_charts: list[TimesChart]
    times_rows: list[list[Cell]]
    channels: list[tuple[str, str, str]]  # (key, name, colour class)
    channel_rows: list[list[Cell]]
    volume_svg: Markup


def _channels(buckets: Sequence[BucketOut]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for bucket in buckets:
        for group in bucket.channels:
            if group.key is not None and group.key not in seen:
                seen[group.key] = group.name or group.key
    return list(seen.items())


def _opened(bucket: BucketOut, key: str) -> int:
    found: GroupOut | None = next((g for g in bucket.channels if g.key == key), None)
    return 0 if found is None else found.conversations_opened


def series_view(
    series: SeriesOut, clock: Clock, fmt: Formats, *, titles: dict[str, str], rtl: bool
) -> SeriesView:
    """The charts and tables over time."""
    t = fmt.t
    buckets = series.buckets
    labels = [fmt.day(b.from_) for b in buckets]
    spans = [fmt.days(b.from_, b.to) for b in buckets]
    legend = [("median", t("Median")), ("p90", t("90th percentile"))]
    charts_: list[TimesChart] = []
    rows: list[list[Cell]] = [[] for _ in buckets]
    for kind in KINDS:
        lines = []
        for stat, name in legend:
            values: list[float | None] = []
            for i, bucket in enumerate(buckets):
                stats = times_of(bucket.totals, kind, clock)
                value = None if stats is None else getattr(stats, stat)
                values.append(value)
                rows[i].append(Cell(f"{kind}.{stat}", value, fmt.duration(value)))
            lines.append(charts.Series(stat, name, values))
        svg = charts.line_chart(
            title=titles[kind],
            labels=labels,
            series=lines,
            format_value=fmt.duration,
            empty=t("No figures in this period."),
            rtl=rtl,
        )
        charts_.append(TimesChart(kind, titles[kind], svg))
    channels = _channels(buckets)
    coloured = [(key, name, f"c{i % CHANNEL_COLOURS}") for i, (key, name) in enumerate(channels)]
    channel_rows = []
    for bucket in buckets:
        cells = [
            Cell(key, _opened(bucket, key), fmt.count(_opened(bucket, key))) for key, _ in channels
        ]
        total = bucket.totals.conversations_opened
        channel_rows.append([*cells, Cell("total", total, fmt.count(total))])
    bars = [
        charts.Series(colour, name, [_opened(b, key) for b in buckets])
        for key, name, colour in coloured
    ]
    volume_svg = charts.stacked_bars(
        title=t("Conversations by channel"),
        labels=labels,
        series=bars,
        format_value=fmt.count,
        empty=t("No figures in this period."),
        rtl=rtl,
    )
    return SeriesView(
        spans=spans,
        starts=[b.from_ for b in buckets],
        legend=legend,
        times_charts=charts_,
        times_rows=rows,
        channels=coloured,
        channel_rows=channel_rows,
        volume_svg=volume_svg,
    )


@dataclass(frozen=True, slots=True)
class HeatmapView:
    svg: Markup
    weekdays: list[str]
    hours: list[list[int]]
    total: int


def heatmap_view(volume: VolumeOut, fmt: Formats, *, rtl: bool) -> HeatmapView:
    """Customer messages per weekday and hour of the period's timezone."""
    t = fmt.t
    weekdays = fmt.weekdays()
    hours = [f"{h:02d}" for h in range(24)]

    def describe(row: int, column: int, value: int) -> str:
        return t(
            "Customer messages on {day}, {start} to {end}: {n}",
            day=weekdays[row],
            start=f"{column:02d}:00",
            end=f"{(column + 1) % 24:02d}:00",
            n=fmt.count(value),
        )

    svg = charts.heatmap(
        title=t("Customer messages by hour of the week"),
        rows=weekdays,
        columns=hours,
        values=volume.hours,
        describe=describe,
        rtl=rtl,
    )
    return HeatmapView(svg, weekdays, volume.hours, volume.total)
