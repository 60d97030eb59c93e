"""The report screen in Chromium, on a seeded dataset (tests/web/test_api_report_series.py
`seed_reports`): every figure the screen shows (tables, chart points, bars, heatmap
cells, the overview, read from their `data-value`) equals the reports API's for the same
range, timezone and clock; again after changing the clock, the timezone and the range;
a CSV download; the overview following a new conversation live. Then the looks: light,
dark, Persian right to left, phone width, and a refused period."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from inbox.models import Role
from tests.ui.harness import SCREENSHOTS, LiveServer, shot
from tests.ui.test_inbox import sms_channel, text_in
from tests.web.test_api_report_series import Seeded, seed_reports
from web.keys import SECRET_BOX_KEY
from web.ui.i18n import translator

COUNTS = ("conversations_opened", "conversations_resolved", "messages_in", "messages_out")
KINDS = ("first_response", "reply", "resolution")
NEW_YORK = "America/New_York"

# Every figure cell of every report table: {table: {row: {field: value}}}.
READ_TABLES = """() => Object.fromEntries(
  [...document.querySelectorAll("[data-report-table]")].map((table) => [
    table.dataset.reportTable,
    Object.fromEntries(
      [...table.querySelectorAll("tbody tr, tfoot tr")]
        .filter((row) => row.querySelector("[data-value]"))
        .map((row) => [
          row.dataset.key ?? row.dataset.from ?? row.dataset.row,
          Object.fromEntries(
            [...row.querySelectorAll("[data-value]")].map((cell) => [
              cell.dataset.field ?? cell.dataset.column,
              cell.dataset.value,
            ]),
          ),
        ]),
    ),
  ]),
)"""
READ_MARKS = """(marks) => marks.map((m) => [
  m.dataset.series ?? m.dataset.row, Number(m.dataset.index ?? m.dataset.column), m.dataset.value
])"""


def number(text: str) -> float | None:
    return None if text == "" else float(text)


def seed(server: LiveServer) -> Seeded:
    box = server.app[SECRET_BOX_KEY]
    return server.db(lambda sessions: seed_reports(sessions, box))


def api(page: Page, path: str, **params: str) -> Any:
    answer = page.request.get(f"/api/v1/reports/{path}?{urlencode(params)}")
    assert answer.ok, answer.text()
    return answer.json()


def group_figures(figures: dict[str, Any], clock: str) -> dict[str, float | None]:
    """What a table row shows of an API group: counts, median and p90 of each kind of
    span in the clock, first-response SLA attainment."""
    shown: dict[str, float | None] = {name: figures[name] for name in COUNTS}
    for kind in KINDS:
        stats = figures[kind][clock]
        for stat in ("median", "p90"):
            shown[f"{kind}.{stat}"] = None if stats is None else stats[stat]
    shown["sla.first_response.attainment"] = figures["sla"]["first_response"]["attainment"]
    return shown


def check_screen_against_api(
    page: Page,
    first: str,
    last: str,
    zone: str,
    clock: str,
    interval: str = "auto",
    **scope: str,
) -> tuple[int, dict[str, Any]]:
    """Every table cell, chart mark and heatmap cell of the screen equals the API's for
    the period, narrowed to `scope` (channel_id, team_id; none: everything); returns how
    many figures were compared, and the screen's tables."""
    period = {"from": first, "to": last, "timezone": zone}
    params = {**period, **{k: v for k, v in scope.items() if v}}
    shown = page.locator("[data-report-period]")
    for name, given in period.items():
        expect(shown).to_have_attribute(f"data-{name}", given)
    for name in SCOPE:
        expect(shown).to_have_attribute(f"data-{name.replace('_', '-')}", scope.get(name, ""))
    tables = page.evaluate(READ_TABLES)
    compared = 0
    for grouping in ("agent", "team", "channel"):
        report = api(page, "summary", **params, group_by=grouping)
        rows = tables[grouping]
        assert set(rows) == {g["key"] or "" for g in report["groups"]} | {"total"}, grouping
        for group in [*report["groups"], {**report["totals"], "key": "total"}]:
            row = rows[group["key"] or ""]
            for name, value in group_figures(group, clock).items():
                assert number(row[name]) == value, (grouping, group.get("name"), name)
                compared += 1

    buckets = api(page, "series", **params, interval=interval)["buckets"]
    assert list(tables["times"]) == [b["from"] for b in buckets]
    points = page.locator("[data-chart] circle.chart__point")
    drawn = {}
    for chart in KINDS:
        marks = page.locator(f"[data-chart={chart}] circle").evaluate_all(READ_MARKS)
        drawn[chart] = {(s, i): float(v) for s, i, v in marks}
    for i, bucket in enumerate(buckets):
        row = tables["times"][bucket["from"]]
        for kind in KINDS:
            stats = bucket["totals"][kind][clock]
            for stat in ("median", "p90"):
                value = None if stats is None else stats[stat]
                assert number(row[f"{kind}.{stat}"]) == value, (bucket["from"], kind, stat)
                assert drawn[kind].get((stat, i)) == value, (bucket["from"], kind, stat)
                compared += 2
        channels = tables["channels-over-time"][bucket["from"]]
        assert set(channels) == {g["key"] for g in bucket["channels"]} | {"total"}
        for group in bucket["channels"]:
            assert number(channels[group["key"]]) == group["conversations_opened"]
        assert number(channels["total"]) == bucket["totals"]["conversations_opened"]
        compared += len(bucket["channels"]) + 1
    assert points.count() == sum(len(d) for d in drawn.values())
    bars = page.locator("[data-chart=channels] .chart__stack").evaluate_all(
        "(stacks) => stacks.map((s) => [Number(s.dataset.total),"
        " [...s.querySelectorAll('rect')].reduce((sum, r) => sum + Number(r.dataset.value), 0)])"
    )
    opened = [b["totals"]["conversations_opened"] for b in buckets]
    # No bars at all when nothing opened.
    assert [total for total, _ in bars] == (opened if any(opened) else [])
    assert all(total == stacked for total, stacked in bars)

    hours = api(page, "volume", **params)["hours"]
    cells = page.locator("[data-chart=heatmap] rect.heat").evaluate_all(READ_MARKS)
    assert len(cells) == 7 * 24
    for row_, column, value in cells:
        assert int(value) == hours[int(row_)][column]
        assert number(tables["heatmap"][str(row_)][str(column)]) == hours[int(row_)][column]
    compared += 2 * len(cells)
    return compared, tables


def full_shot(page: Page, name: str) -> None:
    """A screenshot of the whole report: the page scrolls inside .admin-main, so the
    window is made as tall as its content for the shot."""
    size = page.viewport_size
    assert size is not None
    page.evaluate("() => document.querySelector('.admin-main').scrollTo(0, 0)")
    height = page.evaluate(
        "() => document.querySelector('.admin-main').scrollHeight"
        " + document.querySelector('.topbar').offsetHeight"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    shot(page, name)
    page.set_viewport_size(size)


def overview_value(page: Page, field: str) -> str:
    value = page.locator(f"[data-overview-field={field}] .stat__value").get_attribute("data-value")
    assert value is not None
    return value


@pytest.mark.parametrize("ui_database_url", ["postgresql"], indirect=True)
def test_the_report_screen_shows_the_apis_figures_and_follows_live(
    page: Page, context: BrowserContext, live_server: LiveServer
) -> None:
    seeded = seed(live_server)
    manager = live_server.user(Role.MANAGER, name="Maya Manager")
    live_server.sign_in(context, manager)
    query = {"range": "custom", "from": "2024-06-10", "to": "2024-06-18", "timezone": NEW_YORK}
    page.goto(f"/reports?{urlencode(query)}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    expect(page.locator(".admin-nav a[aria-current=page]")).to_have_attribute("href", "/reports")
    compared, _ = check_screen_against_api(page, "2024-06-10", "2024-06-18", NEW_YORK, "wall")
    assert compared > 500
    # The names people typed are text, in the tables and in the charts' legends.
    expect(page.locator("[data-report-table=channel] tbody th")).to_contain_text(
        ["Sales <form> & co", "Support desk"]
    )
    expect(page.locator("[data-report-table=agent] tr[data-key='']")).to_contain_text("Unassigned")
    # The boundary: k2's 4200 s first answer is New York's Monday (a 3-span median of 300).
    monday = page.locator("[data-report-table=times] tr[data-from='2024-06-10']")
    expect(monday.locator("[data-field='first_response.median']")).to_have_attribute(
        "data-value", "300.0"
    )
    full_shot(page, "reports")
    times_panel = page.locator("section").filter(has=page.locator("[data-chart=reply]"))
    times_panel.screenshot(path=SCREENSHOTS / "reports-times.png", animations="disabled")

    # Business hours: the select submits itself.
    page.get_by_label("Measure in", exact=True).select_option("business")
    page.wait_for_url("**clock=business**")
    check_screen_against_api(page, "2024-06-10", "2024-06-18", NEW_YORK, "business")

    # Another timezone: k2's answer moves to UTC's Tuesday.
    page.get_by_label("Time zone", exact=True).select_option("UTC")
    page.wait_for_url("**timezone=UTC**")
    check_screen_against_api(page, "2024-06-10", "2024-06-18", "UTC", "business")
    page.get_by_label("Measure in", exact=True).select_option("wall")
    page.wait_for_url("**clock=wall**")
    tuesday = page.locator("[data-report-table=times] tr[data-from='2024-06-11']")
    expect(tuesday.locator("[data-field='first_response.median']")).to_have_attribute(
        "data-value", "4200.0"
    )

    # Another range, by week: typing a date makes the range custom.
    page.get_by_label("From", exact=True).fill("2024-06-11")
    expect(page.get_by_label("Date range", exact=True)).to_have_value("custom")
    page.get_by_label("To", exact=True).fill("2024-06-17")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**from=2024-06-11**")
    check_screen_against_api(page, "2024-06-11", "2024-06-17", "UTC", "wall")
    page.get_by_label("Interval", exact=True).select_option("week")
    page.wait_for_url("**interval=week**")
    expect(page.locator("[data-report-table=times] tbody tr")).to_have_count(2)
    check_screen_against_api(page, "2024-06-11", "2024-06-17", "UTC", "wall", "week")

    # The agents' table as CSV: the API's export, with the people's names.
    panel = page.locator("section").filter(has=page.locator("[data-report-table=agent]"))
    with page.expect_download() as download:
        panel.get_by_role("link", name="Export CSV").click()
    path = download.value.path()
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    ann = next(r for r in rows if r["key"] == str(seeded.ann))
    expected = api(page, "summary", **{"from": "2024-06-11", "to": "2024-06-17"},
                   timezone="UTC", group_by="agent")  # fmt: skip
    ann_api = next(g for g in expected["groups"] if g["key"] == str(seeded.ann))
    assert ann["name"] == "Ann Agent"
    assert int(ann["conversations_opened"]) == ann_api["conversations_opened"]
    assert rows[-1]["row"] == "total"
    for link in page.get_by_role("link", name="Export CSV").all():
        href = link.get_attribute("href")
        assert href is not None and "timezone=UTC" in href and "from=2024-06-11" in href

    # The overview now, then live: a text from a new customer opens a conversation.
    overview = api(page, "overview")
    for field in ("open", "unassigned", "waiting", "pending", "sla_at_risk", "sla_breached"):
        assert overview_value(page, field) == str(overview[field]), field
    assert (overview["open"], overview["sla_at_risk"], overview["sla_breached"]) == (3, 1, 1)
    expect(page.locator("[data-live-badge]")).to_have_attribute("data-state", "open")
    texts = sms_channel(live_server, "Texts")
    text_in(live_server, texts, "+14155550100", "Is anyone there?")
    stat = page.locator("[data-overview-field=open] .stat__value")
    expect(stat).to_have_attribute("data-value", "4")
    expect(stat).to_have_text("4")
    expect(page.locator("[data-overview-field=unassigned] .stat__value")).to_have_text("2")
    expect(page.locator("[data-overview-field=waiting] .stat__value")).to_have_text(
        str(overview["waiting"] + 1)
    )
    full_shot(page, "reports-live")


def test_reports_dark_persian_phone_and_a_refused_period(
    context: BrowserContext, live_server: LiveServer
) -> None:
    seed(live_server)
    manager = live_server.user(Role.MANAGER, name="Leila", language="fa")
    live_server.sign_in(context, manager)
    page = context.new_page()
    query = {"range": "custom", "from": "2024-06-10", "to": "2024-06-18", "timezone": NEW_YORK}
    page.goto(f"/reports?{urlencode(query)}")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text(translator("fa").gettext("Reports"))
    # Right to left, time runs from the right: the first day's point stands right of the last.
    points = page.locator("[data-chart=first_response] circle[data-series=median]")
    first_x = float(points.first.get_attribute("cx") or 0)
    last_x = float(points.last.get_attribute("cx") or 0)
    assert first_x > last_x
    monday = page.locator("[data-chart=heatmap] rect[data-row='0'][data-column='0']")
    sunday_late = page.locator("[data-chart=heatmap] rect[data-row='0'][data-column='23']")
    assert float(monday.get_attribute("x") or 0) > float(sunday_late.get_attribute("x") or 0)
    full_shot(page, "reports-fa")

    page.emulate_media(color_scheme="dark")
    page.reload()
    # --color-text-muted of the dark set (retried: the charts redraw when their data lands)
    expect(page.locator(".chart__tick").first).to_have_css("fill", "rgb(154, 163, 175)")
    full_shot(page, "reports-fa-dark")
    times_panel = page.locator("section").filter(has=page.locator("[data-chart=reply]"))
    times_panel.screenshot(path=SCREENSHOTS / "reports-times-fa-dark.png", animations="disabled")

    manager_en = live_server.user(Role.MANAGER, name="Mo")
    context.clear_cookies()
    live_server.sign_in(context, manager_en)
    page.goto(f"/reports?{urlencode(query)}")
    full_shot(page, "reports-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("[data-chart=heatmap]")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # wide charts and tables scroll inside their panels
    full_shot(page, "reports-phone")

    # A period that cannot be: the fields say why, the overview still shows.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/reports?range=custom&from=2024-06-18&to=2024-06-10&timezone=Nowhere/City")
    expect(page.get_by_role("alert")).to_contain_text("Check the fields marked")
    expect(page.get_by_label("To", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Time zone", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-timezone-error")).to_have_text("Choose a time zone from the list.")
    expect(page.locator("[data-report-table]")).to_have_count(0)
    expect(page.locator("[data-overview-field=open] .stat__value")).to_have_text("3")
    shot(page, "reports-refused")


# --- narrowed to a channel and a team -----------------------------------------------------------

SCOPE = ("channel_id", "team_id")


def query_of(url: str) -> dict[str, str]:
    """A URL's query, one value a name, empty values kept."""
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def wait_for_scope(page: Page, **scope: str) -> None:
    """Until the page's URL carries exactly these channel_id and team_id ("" or absent: all)."""
    page.wait_for_url(
        lambda url: all(query_of(url).get(name, "") == scope.get(name, "") for name in SCOPE)
    )


def check_narrowed_screen_against_api(
    page: Page, period: dict[str, str], clock: str = "wall", **scope: str
) -> dict[str, Any]:
    """check_screen_against_api, and the pickers, the overview and every export link's
    query follow the same narrowing; returns the screen's tables."""
    for name in SCOPE:
        expect(page.locator(f"#f-{name}")).to_have_value(scope.get(name, ""))
    _, tables = check_screen_against_api(
        page, period["from"], period["to"], period["timezone"], clock, **scope
    )
    now = api(page, "overview", **{k: v for k, v in scope.items() if v})
    for field in ("open", "unassigned", "waiting", "pending", "sla_at_risk", "sla_breached"):
        assert overview_value(page, field) == str(now[field]), field

    links = page.get_by_role("link", name="Export CSV")
    expect(links).to_have_count(6)
    for link in links.all():
        href = link.get_attribute("href")
        assert href is not None
        sent = query_of(href)
        assert {k: sent[k] for k in ("from", "to", "timezone")} == period, href
        assert {k: sent.get(k, "") for k in SCOPE} == {k: scope.get(k, "") for k in SCOPE}, href
    return tables


def total(tables: dict[str, Any], field: str = "conversations_opened") -> float | None:
    return number(tables["channel"]["total"][field])


@pytest.mark.parametrize("ui_database_url", ["postgresql"], indirect=True)
def test_the_report_screen_narrowed_to_a_channel_and_a_team(
    page: Page, context: BrowserContext, live_server: LiveServer
) -> None:
    seeded = seed(live_server)
    texts = sms_channel(live_server, "Texts")
    manager = live_server.user(Role.MANAGER, name="Maya Manager")
    live_server.sign_in(context, manager)
    period = {"from": "2024-06-10", "to": "2024-06-18", "timezone": NEW_YORK}
    page.goto(f"/reports?{urlencode({'range': 'custom', **period})}")
    everything = check_narrowed_screen_against_api(page, period)
    assert total(everything) == 5
    expect(page.locator("[data-report-scope]")).to_have_count(0)  # the whole inbox

    # The pickers: all, then every channel and every team, by name.
    channel = page.get_by_label("Channel", exact=True)
    team = page.get_by_label("Team", exact=True)
    expect(channel.locator("option")).to_have_text(
        ["All channels", "Sales <form> & co", "Support desk", "Texts"]
    )
    expect(channel).to_have_value("")
    expect(team.locator("option").first).to_have_text("All teams")
    expect(team.locator(f"option[value='{seeded.team}']")).to_have_count(1)

    # One channel: the select submits itself, every figure is the API's for that channel.
    channel.select_option(label="Support desk")
    wait_for_scope(page, channel_id=str(seeded.support))
    support = check_narrowed_screen_against_api(page, period, channel_id=str(seeded.support))
    assert total(support) == 3 != total(everything)
    assert list(support["channel"]) == [str(seeded.support), "total"]
    assert overview_value(page, "open") == "2"
    expect(page.locator("[data-overview] [data-report-scope]")).to_have_text("Support desk")

    # The URL is the report: a reload keeps the channel.
    page.reload()
    check_narrowed_screen_against_api(page, period, channel_id=str(seeded.support))

    # Then a team as well: both narrow, and the figures move again.
    team.select_option(str(seeded.team))
    both = {"channel_id": str(seeded.support), "team_id": str(seeded.team)}
    wait_for_scope(page, **both)
    narrowed = check_narrowed_screen_against_api(page, period, **both)
    assert total(narrowed) == 2 != total(support)
    assert total(narrowed, "messages_in") != total(everything, "messages_in")
    assert list(narrowed["team"]) == [str(seeded.team), "total"]
    assert overview_value(page, "open") == "1"
    expect(page.locator("[data-report-period] [data-report-scope] li")).to_have_count(2)
    full_shot(page, "reports-narrowed")

    # The agents' CSV is the API's for the same channel and team, not the whole inbox's.
    panel = page.locator("section").filter(has=page.locator("[data-report-table=agent]"))
    with page.expect_download() as download:
        panel.get_by_role("link", name="Export CSV").click()
    text = download.value.path().read_text(encoding="utf-8-sig")
    rows = {(r["row"], r["key"]): r for r in csv.DictReader(io.StringIO(text, newline=""))}
    expected = api(page, "summary", **period, **both, group_by="agent")
    groups = {("group", g["key"] or ""): g for g in expected["groups"]}
    assert set(rows) == {*groups, ("total", "")}
    for key, group in [*groups.items(), (("total", ""), expected["totals"])]:
        assert int(rows[key]["conversations_opened"]) == group["conversations_opened"], key
        assert int(rows[key]["messages_in"]) == group["messages_in"], key
    whole = api(page, "summary", **period, group_by="agent")["totals"]
    assert expected["totals"]["conversations_opened"] == 2 != whole["conversations_opened"]

    # All channels again, the team kept.
    channel.select_option("")
    wait_for_scope(page, team_id=str(seeded.team))
    check_narrowed_screen_against_api(page, period, team_id=str(seeded.team))
    expect(page.locator("[data-overview] [data-report-scope] li")).to_have_count(1)

    # The overview follows live events with the page's narrowing: a text on the Texts
    # channel counts there, and the whole inbox has it as well as the seeded three.
    team.select_option("")
    wait_for_scope(page)
    channel.select_option(str(texts))
    wait_for_scope(page, channel_id=str(texts))
    check_narrowed_screen_against_api(page, period, channel_id=str(texts))
    assert overview_value(page, "open") == "0"
    expect(page.locator("[data-live-badge]")).to_have_attribute("data-state", "open")
    with page.expect_request(lambda r: "/api/v1/reports/overview" in r.url) as asked:
        text_in(live_server, texts, "+14155550100", "Is anyone there?")
    assert query_of(asked.value.url) == {"channel_id": str(texts)}
    stat = page.locator("[data-overview-field=open] .stat__value")
    expect(stat).to_have_attribute("data-value", "1")
    expect(page.locator("[data-overview-field=unassigned] .stat__value")).to_have_text("1")
    assert api(page, "overview")["open"] == 4


def test_an_unknown_channel_or_team_in_the_link_shows_everything_and_says_so(
    page: Page, context: BrowserContext, live_server: LiveServer
) -> None:
    seed(live_server)
    manager = live_server.user(Role.MANAGER, name="Maya Manager")
    live_server.sign_in(context, manager)
    period = {"from": "2024-06-10", "to": "2024-06-18", "timezone": NEW_YORK}
    odd = {"channel_id": str(uuid.uuid4()), "team_id": "not-a-team"}
    response = page.goto(f"/reports?{urlencode({'range': 'custom', **period, **odd})}")
    assert response is not None and response.status == 200
    expect(page.locator("#f-channel_id-note")).to_have_text(
        "The channel in the link is not in the list: all channels are shown."
    )
    expect(page.locator("#f-team_id-note")).to_have_text(
        "The team in the link is not in the list: all teams are shown."
    )
    expect(page.get_by_label("Channel", exact=True)).to_have_attribute(
        "aria-describedby", "f-channel_id-note"
    )
    expect(page.get_by_role("alert")).to_have_count(0)  # the report is made
    tables = check_narrowed_screen_against_api(page, period)  # everything, links included
    assert total(tables) == 5
    shot(page, "reports-unknown-channel")
