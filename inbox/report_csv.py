"""Reports as CSV files, the way inbox/contact_csv.py writes them: UTF-8 with a byte order
mark, RFC 4180 quoting, CRLF line ends, and every cell passed through its `neutralize`
(a label or a user's name is typed by people, and must never run as a formula).

A summary is one row per group and a last row of totals (`row` = "group" / "total");
durations are seconds, an empty cell where there is no figure. A volume report is one
row per local weekday with a column per hour.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

from inbox.contact_csv import BOM, neutralize
from inbox.metric_models import MetricKind, SlaTarget
from inbox.report_stats import Stats
from inbox.reports import CLOCKS, WEEKDAYS, Figures, Summary, Volume

ROWS_PER_CHUNK = 200
_STATS = ("count", "median", "p90", "mean")


def summary_header() -> list[str]:
    """The columns of a summary export."""
    columns = [
        "row",
        "key",
        "name",
        "conversations_opened",
        "conversations_resolved",
        "messages_in",
        "messages_out",
    ]
    for kind in MetricKind:
        for clock in CLOCKS:
            columns += [f"{kind.value}_{clock}_{stat}" for stat in _STATS]
    for target in SlaTarget:
        columns += [f"sla_{target.value}_{part}" for part in ("met", "breached", "attainment")]
    return columns


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _stats(stats: Stats) -> list[str]:
    return [str(stats.count), _number(stats.median), _number(stats.p90), _number(stats.mean)]


def _figures(figures: Figures) -> list[str]:
    cells = [
        str(figures.conversations_opened),
        str(figures.conversations_resolved),
        str(figures.messages_in),
        str(figures.messages_out),
    ]
    for kind in MetricKind:
        for clock in CLOCKS:
            cells += _stats(figures.times[kind.value][clock])
    for target in SlaTarget:
        attainment = figures.sla[target.value]
        cells += [str(attainment.met), str(attainment.breached), _number(attainment.rate)]
    return cells


def summary_rows(summary: Summary) -> Iterator[list[str]]:
    """The header, one row per group, then the totals."""
    yield summary_header()
    for group in summary.groups:
        yield ["group", group.key or "", group.name or "", *_figures(group.figures)]
    yield ["total", "", "", *_figures(summary.totals)]


def volume_rows(volume: Volume) -> Iterator[list[str]]:
    """The header, then one row per local weekday (Monday first)."""
    yield ["weekday", *(f"{hour:02d}" for hour in range(24)), "total"]
    for day, counts in zip(WEEKDAYS, volume.hours, strict=True):
        yield [day, *(str(n) for n in counts), str(sum(counts))]


def _lines(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows([neutralize(cell) for cell in row] for row in rows)
    return buffer.getvalue().encode("utf-8")


def chunks(rows: Iterable[Sequence[str]]) -> Iterator[bytes]:
    """The file in pieces to stream: the byte order mark first, then rows in batches."""
    batch: list[Sequence[str]] = []
    first = True
    for row in rows:
        batch.append(row)
        if len(batch) == ROWS_PER_CHUNK:
            yield (BOM.encode("utf-8") if first else b"") + _lines(batch)
            first, batch = False, []
    if batch or first:
        yield (BOM.encode("utf-8") if first else b"") + _lines(batch)
