"""The report screen's SVG charts (web/ui/admin/charts.py): well-formed XML, labels
escaped, values placed where the axis says, right-to-left mirrored, nothing to draw
said so, and the tick steps and heat levels they rest on."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from web.ui.admin import charts

NS = {"svg": charts.SVG_NS}
HOSTILE = '</text><script>alert("x")</script> & <b>'


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # raises on anything not well-formed


def seconds(value: float) -> str:
    return f"{value:g} s"


def test_line_chart_places_values_on_the_axis_and_escapes_labels() -> None:
    labels = ["Mon", HOSTILE, "Wed", "Thu"]
    series = [
        charts.Series("median", "Median", [60.0, None, 120.0, 30.0]),
        charts.Series("p90", HOSTILE, [90.0, None, 240.0, 45.0]),
    ]
    markup = charts.line_chart(
        title=HOSTILE, labels=labels, series=series, format_value=seconds, empty="None"
    )
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    svg = parse(markup)
    assert svg.get("role") == "img" and svg.get("aria-label") == HOSTILE
    assert svg.get("viewBox") == "0 0 360 200"
    # 240 s is the top value: the axis runs 0 .. 240 in steps of 60 (whole minutes).
    ticks = [t.text for t in svg.iterfind(".//svg:text[@class='chart__tick']", NS)]
    assert ticks[:5] == ["0 s", "60 s", "120 s", "180 s", "240 s"]
    assert HOSTILE in ticks  # the hostile label is there, as text
    points = svg.findall(".//svg:circle", NS)
    assert len(points) == 6  # no point where a value is None
    frame = (56, 12, 12, 28)  # start, end, top, bottom margins
    plot_width, plot_height = 360 - frame[0] - frame[1], 200 - frame[2] - frame[3]
    for point in points:
        index, value = int(point.get("data-index", "")), float(point.get("data-value", ""))
        expected_x = frame[0] + (index + 0.5) * plot_width / 4
        expected_y = frame[2] + plot_height * (1 - value / 240)
        assert float(point.get("cx", "")) == pytest.approx(expected_x, abs=0.05)
        assert float(point.get("cy", "")) == pytest.approx(expected_y, abs=0.05)
        title = point.find("svg:title", NS)
        assert title is not None and title.text is not None
        assert title.text.startswith(labels[index])
    # The gap breaks the line: two pieces, started with M each.
    path = svg.find(".//svg:path[@class='chart__line chart__line--median']", NS)
    assert path is not None and path.get("d", "").count("M") == 2
    # The median is drawn last (on top).
    groups = [g.get("class") for g in svg.findall("svg:g", NS)]
    assert groups[-2:] == [
        "chart__series chart__series--p90",
        "chart__series chart__series--median",
    ]


def test_right_to_left_mirrors_time_and_the_value_axis() -> None:
    series = [charts.Series("median", "Median", [10.0, 20.0, 30.0])]
    kwargs = {"title": "t", "labels": ["a", "b", "c"], "series": series}
    ltr = parse(charts.line_chart(**kwargs, format_value=seconds, empty="-"))  # type: ignore[arg-type]
    rtl = parse(charts.line_chart(**kwargs, format_value=seconds, empty="-", rtl=True))  # type: ignore[arg-type]
    xs = [float(p.get("cx", "")) for p in ltr.findall(".//svg:circle", NS)]
    mirrored = [float(p.get("cx", "")) for p in rtl.findall(".//svg:circle", NS)]
    assert xs == sorted(xs) and mirrored == sorted(mirrored, reverse=True)
    assert mirrored == [pytest.approx(360 - x) for x in xs]
    axis = rtl.find(".//svg:text[@class='chart__tick']", NS)
    assert axis is not None and axis.get("text-anchor") == "start"
    assert float(axis.get("x", "")) > 300  # on the right


def test_stacked_bars_stack_their_values() -> None:
    series = [
        charts.Series("c0", "Email", [2, 0, 1]),
        charts.Series("c1", "Sales <form> & co", [1, 3, None]),
    ]
    svg = parse(
        charts.stacked_bars(
            title="Volume", labels=["1", "2", "3"], series=series, format_value=str, empty="-"
        )
    )
    stacks = svg.findall(".//svg:g[@class='chart__stack']", NS)
    assert [s.get("data-total") for s in stacks] == ["3", "3", "1"]
    bars = svg.findall(".//svg:rect", NS)
    assert len(bars) == 4  # zeros and Nones draw nothing
    # Axis 0..3 (steps of 1): a bar of 1 is a third of the plot's height; stacked bars
    # touch.
    plot_height = 240 - 12 - 28
    first, second = stacks[0].findall("svg:rect", NS)
    assert float(first.get("height", "")) == pytest.approx(plot_height * 2 / 3, abs=0.1)
    assert float(second.get("height", "")) == pytest.approx(plot_height / 3, abs=0.1)
    assert float(second.get("y", "")) + float(second.get("height", "")) == pytest.approx(
        float(first.get("y", "")), abs=0.1
    )
    titles = [t.text for t in svg.iterfind(".//svg:rect/svg:title", NS)]
    assert "2 · Sales <form> & co: 3" in titles


def test_heatmap_cells_and_levels() -> None:
    values = [[0] * 24 for _ in range(7)]
    values[0][9], values[6][23] = 8, 2
    svg = parse(
        charts.heatmap(
            title="Hours",
            rows=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            columns=[f"{h:02d}" for h in range(24)],
            values=values,
            describe=lambda r, c, v: f"{r}/{c}: {v} <messages>",
        )
    )
    cells = svg.findall("svg:rect", NS)
    assert len(cells) == 7 * 24
    by_place = {(c.get("data-row"), c.get("data-column")): c for c in cells}
    busiest, quiet, empty = by_place[("0", "9")], by_place[("6", "23")], by_place[("3", "3")]
    assert busiest.get("class") == "heat heat--5" and busiest.get("data-value") == "8"
    assert quiet.get("class") == "heat heat--2"  # 2 of 8: a quarter, rounded up to 2 of 5
    assert empty.get("class") == "heat heat--0"
    assert float(quiet.get("x", "")) > float(busiest.get("x", ""))
    assert float(quiet.get("y", "")) > float(busiest.get("y", ""))
    tooltip = busiest.find("svg:title", NS)
    assert tooltip is not None and tooltip.text == "0/9: 8 <messages>"
    rtl = parse(
        charts.heatmap(
            title="Hours",
            rows=["Mon"],
            columns=["00", "01"],
            values=[[1, 0]],
            describe=lambda r, c, v: "",
            rtl=True,
        )
    )
    first, second = rtl.findall("svg:rect", NS)
    assert float(first.get("x", "")) > float(second.get("x", ""))


def test_nothing_to_draw_says_so() -> None:
    series = [charts.Series("median", "Median", [None, None])]
    svg = parse(
        charts.line_chart(
            title="t", labels=["a", "b"], series=series, format_value=seconds, empty="No figures"
        )
    )
    assert svg.findall(".//svg:circle", NS) == []
    empty = svg.find(".//svg:text[@class='chart__empty']", NS)
    assert empty is not None and empty.text == "No figures"
    bars = parse(
        charts.stacked_bars(title="t", labels=[], series=[], format_value=str, empty="Nothing")
    )
    assert bars.find(".//svg:text[@class='chart__empty']", NS) is not None


def test_ticks_and_levels() -> None:
    assert charts.ticks(7) == [0, 2, 4, 6, 8]
    assert charts.ticks(0) == [0, 1]
    assert charts.ticks(950) == [0, 500, 1000]
    assert charts.ticks(4200, durations=True) == [0, 1800, 3600, 5400]
    assert charts.ticks(50, durations=True) == [0, 15, 30, 45, 60]
    assert charts.ticks(90 * 86400, durations=True)[1] == 50 * 86400
    assert [charts.heat_level(v, 10) for v in (0, 1, 2, 5, 10)] == [0, 1, 1, 3, 5]
