"""Charts drawn as SVG on the server for the report screen: lines over time (a few series),
stacked bars over time, and an hour-of-week heatmap.

Built with ElementTree, so every label is escaped and the markup is always well-formed.
No colour is written here: each mark carries a class (`chart__line--median`,
`chart__bar--3`, `heat--2`) that static/css/admin_reports.css colours from the design
tokens, so the dark theme applies without a second drawing. The SVG's own direction is
left to right and the geometry is mirrored for right-to-left pages (time runs from the
right, the value axis stands on the right), so text anchors mean the same in both.

Every mark has a <title> (its tooltip) and `data-value` (the figure it draws: the browser
tests compare these with the API). A chart is role="img" with an aria-label; the page
puts the same figures in a table beside it.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

SVG_NS = "http://www.w3.org/2000/svg"
# Sizes in the viewBox's units, near the size each is shown at (a small multiple beside
# two others, or a panel's width), so that 12-unit text reads as about 12 pixels.
SMALL = (360.0, 200.0)
WIDE = (880.0, 240.0)
MAX_X_LABELS = 8
# Tick steps of a duration axis, in seconds: whole seconds, minutes, hours, days.
DURATION_STEPS = (
    1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200,
    86400, 172800, 432000, 864000, 1728000, 4320000,
)  # fmt: skip
HEAT_LEVELS = 5

Format = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    """One series: `key` names its colour class, `name` is shown (legend, tooltips);
    `values` has one entry per label, None where there is no figure."""

    key: str
    name: str
    values: Sequence[float | None]


@dataclass(frozen=True, slots=True)
class _Frame:
    """The plot area inside the margins, mirrored for right-to-left pages."""

    width: float
    height: float
    start: float  # margin on the value axis' side
    end: float
    top: float
    bottom: float
    rtl: bool

    @property
    def plot_width(self) -> float:
        return self.width - self.start - self.end

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom

    def x(self, along: float) -> float:
        """The x of a point `along` the time axis from where time begins."""
        return self.width - self.start - along if self.rtl else self.start + along

    def y(self, value: float, highest: float) -> float:
        return self.top + self.plot_height * (1 - value / highest)

    @property
    def axis_anchor(self) -> str:
        """How the value axis' labels hang off the plot's edge."""
        return "start" if self.rtl else "end"


def _n(value: float) -> str:
    # One decimal is finer than a pixel here, and keeps the markup short.
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def ticks(highest: float, *, durations: bool = False, count: int = 4) -> list[float]:
    """Round steps from 0 to at least `highest`: about `count` of them, each step a
    1-2-5 multiple (counts) or a whole unit of time (durations)."""
    if not math.isfinite(highest) or highest <= 0:
        highest = 1
    raw = highest / count
    if durations:
        step: float = next((s for s in DURATION_STEPS if s >= raw), 0)
        if not step:
            days = 86400
            step = days * _nice(raw / days)
    else:
        step = max(1, _nice(raw))
    values = [0.0]
    while values[-1] < highest:
        values.append(values[-1] + step)
    return values


def _nice(raw: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `raw`."""
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _svg(title: str, width: float, height: float, kind: str) -> ET.Element:
    return ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "class": f"chart chart--{kind}",
            "viewBox": f"0 0 {_n(width)} {_n(height)}",
            "role": "img",
            "aria-label": title,
            "focusable": "false",
            "direction": "ltr",
        },
    )


def _text(parent: ET.Element, x: float, y: float, text: str, anchor: str, cls: str) -> None:
    node = ET.SubElement(
        parent,
        "text",
        {"x": _n(x), "y": _n(y), "text-anchor": anchor, "class": cls},
    )
    node.text = text


def _tooltip(parent: ET.Element, text: str) -> None:
    ET.SubElement(parent, "title").text = text


def _markup(svg: ET.Element) -> Markup:
    # ElementTree escaped every text and attribute: the result is safe to embed as is.
    return Markup(ET.tostring(svg, encoding="unicode"))


def _value_axis(
    svg: ET.Element, frame: _Frame, steps: Sequence[float], format_value: Format
) -> None:
    grid = ET.SubElement(svg, "g", {"class": "chart__axis"})
    highest = steps[-1]
    for value in steps:
        y = frame.y(value, highest)
        ET.SubElement(
            grid,
            "line",
            {
                "x1": _n(frame.x(0)),
                "x2": _n(frame.x(frame.plot_width)),
                "y1": _n(y),
                "y2": _n(y),
                "class": "chart__grid" if value else "chart__baseline",
            },
        )
        _text(grid, frame.x(-8), y + 4, format_value(value), frame.axis_anchor, "chart__tick")


def _time_axis(svg: ET.Element, frame: _Frame, labels: Sequence[str]) -> None:
    group = ET.SubElement(svg, "g", {"class": "chart__axis"})
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    band = frame.plot_width / max(1, len(labels))
    for index, label in enumerate(labels):
        if index % every:
            continue
        x = frame.x((index + 0.5) * band)
        _text(group, x, frame.height - frame.bottom + 18, label, "middle", "chart__tick")


def _empty(svg: ET.Element, frame: _Frame, text: str) -> None:
    _text(
        svg,
        frame.width / 2,
        frame.top + frame.plot_height / 2,
        text,
        "middle",
        "chart__empty",
    )


def _frame(size: tuple[float, float], rtl: bool) -> _Frame:
    width, height = size
    return _Frame(width, height, start=56, end=12, top=12, bottom=28, rtl=rtl)


def line_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    format_value: Format,
    empty: str,
    durations: bool = True,
    rtl: bool = False,
    size: tuple[float, float] = SMALL,
) -> Markup:
    """Lines over time: one point per label and series (none where a value is None; a
    line breaks there), the value axis from 0 in round steps."""
    frame = _frame(size, rtl)
    svg = _svg(title, frame.width, frame.height, "line")
    present = [v for s in series for v in s.values if v is not None]
    steps = ticks(max(present, default=0), durations=durations)
    _value_axis(svg, frame, steps, format_value)
    _time_axis(svg, frame, labels)
    if not present:
        _empty(svg, frame, empty)
        return _markup(svg)
    band = frame.plot_width / max(1, len(labels))
    highest = steps[-1]
    # Drawn last to first, so the first series (the median) lies on top where they meet.
    for one in reversed(series):
        group = ET.SubElement(svg, "g", {"class": f"chart__series chart__series--{one.key}"})
        path: list[str] = []
        pen_down = False
        points: list[tuple[int, float, float, float]] = []
        for index, value in enumerate(one.values):
            if value is None:
                pen_down = False
                continue
            x, y = frame.x((index + 0.5) * band), frame.y(value, highest)
            path.append(f"{'L' if pen_down else 'M'}{_n(x)} {_n(y)}")
            pen_down = True
            points.append((index, value, x, y))
        ET.SubElement(
            group, "path", {"d": " ".join(path), "class": f"chart__line chart__line--{one.key}"}
        )
        for index, value, x, y in points:
            dot = ET.SubElement(
                group,
                "circle",
                {
                    "cx": _n(x),
                    "cy": _n(y),
                    "r": "3.5",
                    "class": f"chart__point chart__point--{one.key}",
                    "data-series": one.key,
                    "data-index": str(index),
                    "data-value": repr(float(value)),
                },
            )
            _tooltip(dot, f"{labels[index]} · {one.name}: {format_value(value)}")
    return _markup(svg)


def stacked_bars(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    format_value: Format,
    empty: str,
    rtl: bool = False,
    size: tuple[float, float] = WIDE,
) -> Markup:
    """Bars over time, one per label, each stacked from the series' values (None and 0
    draw nothing); the value axis counts from 0 in 1-2-5 steps."""
    frame = _frame(size, rtl)
    svg = _svg(title, frame.width, frame.height, "bars")
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    steps = ticks(max(totals, default=0))
    _value_axis(svg, frame, steps, format_value)
    _time_axis(svg, frame, labels)
    if not any(totals):
        _empty(svg, frame, empty)
        return _markup(svg)
    band = frame.plot_width / max(1, len(labels))
    bar = min(band * 0.64, 48)
    highest = steps[-1]
    for index, label in enumerate(labels):
        centre = frame.x((index + 0.5) * band)
        stack = ET.SubElement(
            svg,
            "g",
            {"class": "chart__stack", "data-index": str(index), "data-total": str(totals[index])},
        )
        below = 0.0
        for one in series:
            value = one.values[index] or 0
            if value <= 0:
                continue
            top, bottom = frame.y(below + value, highest), frame.y(below, highest)
            rect = ET.SubElement(
                stack,
                "rect",
                {
                    "x": _n(centre - bar / 2),
                    "y": _n(top),
                    "width": _n(bar),
                    "height": _n(bottom - top),
                    "class": f"chart__bar chart__bar--{one.key}",
                    "data-series": one.key,
                    "data-index": str(index),
                    "data-value": repr(float(value)),
                },
            )
            _tooltip(rect, f"{label} · {one.name}: {format_value(value)}")
            below += value
    return _markup(svg)


def heat_level(value: float, highest: float) -> int:
    """0 for nothing, else 1..HEAT_LEVELS by the share of the busiest cell."""
    if value <= 0 or highest <= 0:
        return 0
    return max(1, min(HEAT_LEVELS, math.ceil(HEAT_LEVELS * value / highest)))


def heatmap(
    *,
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[int]],
    describe: Callable[[int, int, int], str],
    rtl: bool = False,
    column_every: int = 3,
) -> Markup:
    """A grid of cells (rows x columns), shaded by value; `describe(row, column, value)`
    is a cell's tooltip. Columns run from the start side, row labels stand at the start."""
    # Room for the longest row label (about 6.5 units a character at the tick size).
    label_width = max(40.0, 6.5 * max((len(r) for r in rows), default=0) + 14)
    width, cell_height, header = WIDE[0], 26.0, 22.0
    cell_width = (width - label_width - 4) / max(1, len(columns))
    height = header + cell_height * len(rows) + 4
    frame = _Frame(width, height, start=label_width, end=4, top=header, bottom=4, rtl=rtl)
    svg = _svg(title, width, height, "heatmap")
    highest = max((v for row in values for v in row), default=0)
    labels = ET.SubElement(svg, "g", {"class": "chart__axis"})
    for c, column in enumerate(columns):
        if c % column_every == 0:
            x = frame.x((c + 0.5) * cell_width)
            _text(labels, x, header - 6, column, "middle", "chart__tick")
    for r, row in enumerate(rows):
        y = header + r * cell_height
        _text(labels, frame.x(-8), y + cell_height / 2 + 4, row, frame.axis_anchor, "chart__tick")
        for c, value in enumerate(values[r]):
            x = frame.x(c * cell_width) - (cell_width if rtl else 0)
            cell = ET.SubElement(
                svg,
                "rect",
                {
                    "x": _n(x + 1),
                    "y": _n(y + 1),
                    "width": _n(cell_width - 2),
                    "height": _n(cell_height - 2),
                    "rx": "3",
                    "class": f"heat heat--{heat_level(value, highest)}",
                    "data-row": str(r),
                    "data-column": str(c),
                    "data-value": str(value),
                },
            )
            _tooltip(cell, describe(r, c, value))
    return _markup(svg)
