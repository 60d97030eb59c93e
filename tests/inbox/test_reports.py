"""Report figures on a constructed weekend (tests/inbox/report_scenario.py works every
expected value out by hand), periods in local days across DST, and exact percentiles."""

from __future__ import annotations

import random
import statistics
import uuid
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbox.metric_models import ConversationMetric
from inbox.report_csv import chunks, summary_header, summary_rows, volume_rows
from inbox.report_period import MAX_DAYS, PeriodError, period
from inbox.report_stats import MEDIAN, P90, Ranked, percentile
from inbox.reports import (
    Figures,
    GroupingUnavailable,
    Scope,
    Summary,
    labels_table,
    summary,
    volume,
)
from tests.inbox.report_scenario import END, FIRST, LAST, NOW, START, TIMEZONE, build_weekend
from timeline.db import SessionFactory
from timeline.models import Channel, Contact, Conversation


def by_key(report: Summary) -> dict[str | None, Figures]:
    return {group.key: group.figures for group in report.groups}


def wall(figures: Figures, kind: str) -> tuple[int, float | None, float | None, float | None]:
    stats = figures.times[kind]["wall"]
    return stats.count, stats.median, stats.p90, stats.mean


def business(figures: Figures, kind: str) -> tuple[int, float | None, float | None, float | None]:
    stats = figures.times[kind]["business"]
    return stats.count, stats.median, stats.p90, stats.mean


# --- periods ----------------------------------------------------------------------------------


def test_period_is_local_days_across_dst() -> None:
    # Berlin's summer time starts on 2024-03-31: Saturday+Sunday is 47 hours.
    spring = period(FIRST, LAST, TIMEZONE)
    assert (spring.start, spring.end) == (START, END)
    assert spring.end - spring.start == timedelta(hours=47)
    # ... and ends on 2024-10-27: that Sunday alone is 25 hours (22:00Z Sat .. 23:00Z Sun).
    autumn = period(date(2024, 10, 27), date(2024, 10, 27), TIMEZONE)
    assert autumn.start == datetime(2024, 10, 26, 22, 0, tzinfo=UTC)
    assert autumn.end == datetime(2024, 10, 27, 23, 0, tzinfo=UTC)
    # India is 5:30 ahead all year: a day starts at 18:30Z the day before.
    india = period(date(2024, 1, 1), date(2024, 1, 1), "Asia/Kolkata")
    assert india.start == datetime(2023, 12, 31, 18, 30, tzinfo=UTC)
    # Santiago skipped 00:00 on 2022-09-11 (clocks went 00:00 -> 01:00): the day begins at
    # 01:00 -03, which is 04:00Z, the same instant as the previous day's 24:00 -04.
    santiago = period(date(2022, 9, 11), date(2022, 9, 11), "America/Santiago")
    assert santiago.start == datetime(2022, 9, 11, 4, 0, tzinfo=UTC)
    assert santiago.end - santiago.start == timedelta(hours=23)


@pytest.mark.parametrize(
    ("first", "last", "zone", "field"),
    [
        (date(2024, 2, 2), date(2024, 2, 1), "UTC", "to"),
        (date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=MAX_DAYS), "UTC", "to"),
        (date(2024, 1, 1), date(2024, 1, 2), "Mars/Olympus", "timezone"),
        (date(2024, 1, 1), date(2024, 1, 2), "Europe/Berlin\x00", "timezone"),
        (date(2024, 1, 1), date(2024, 1, 2), "../../etc/passwd", "timezone"),
        (date(2024, 1, 1), date(2024, 1, 2), "", "timezone"),
        (date(9999, 12, 31), date(9999, 12, 31), "Pacific/Kiritimati", "to"),
    ],
)
def test_period_refuses(first: date, last: date, zone: str, field: str) -> None:
    with pytest.raises(PeriodError) as caught:
        period(first, last, zone)
    assert caught.value.field == field


def test_period_of_max_days_is_allowed() -> None:
    span = period(date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=MAX_DAYS - 1), "UTC")
    assert (span.end - span.start).days == MAX_DAYS


# --- percentiles ------------------------------------------------------------------------------


@given(st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=1))
def test_percentiles_agree_with_the_statistics_module(values: list[float]) -> None:
    ordered = sorted(values)
    ranked = dict(enumerate(ordered, start=1))
    n = len(ordered)
    assert percentile(n, ranked, MEDIAN) == pytest.approx(statistics.median(ordered))
    if n >= 2:
        p90 = statistics.quantiles(ordered, n=10, method="inclusive")[8]
        assert percentile(n, ranked, P90) == pytest.approx(p90, rel=1e-9, abs=1e-6)
    assert min(ordered) <= percentile(n, ranked, P90) <= max(ordered)


def test_empty_group_has_only_a_count() -> None:
    stats = Ranked().stats()
    assert (stats.count, stats.median, stats.p90, stats.mean) == (0, None, None, None)


# --- the summary ------------------------------------------------------------------------------


async def test_summary_by_agent(sessions: SessionFactory) -> None:
    weekend = await build_weekend(sessions)
    span = period(FIRST, LAST, TIMEZONE)
    async with sessions() as session:
        report = await summary(session, span, "agent", Scope(), now=NOW)
    groups = by_key(report)
    ann, bob, cid = (groups[str(u)] for u in (weekend.ann, weekend.bob, weekend.cid))
    assert [g.name for g in report.groups] == ["Ann", "Bob", "Cid", None]

    assert (ann.conversations_opened, ann.messages_in, ann.messages_out) == (1, 2, 1)
    assert (bob.conversations_opened, bob.messages_in, bob.messages_out) == (1, 1, 1)
    assert groups[None].conversations_opened == 1  # c4, unassigned
    assert (ann.conversations_resolved, bob.conversations_resolved) == (0, 1)

    assert wall(ann, "first_response") == (5, 180.0, 456.0, 240.0)
    assert business(ann, "first_response") == (3, 100.0, 260.0, 150.0)
    assert wall(bob, "first_response") == (2, 60.0, 84.0, 60.0)
    assert business(bob, "first_response") == (0, None, None, None)
    assert wall(bob, "resolution") == (1, 3600.0, 3600.0, 3600.0)
    assert wall(ann, "reply") == (0, None, None, None)

    assert (ann.sla["first_response"].met, ann.sla["first_response"].rate) == (1, 1.0)
    assert (bob.sla["first_response"].breached, bob.sla["first_response"].rate) == (1, 0.0)
    assert (bob.sla["resolution"].breached, bob.sla["resolution"].rate) == (1, 0.0)

    # The agent with no work is there, with zeros and no figures.
    assert (cid.conversations_opened, cid.messages_in, cid.messages_out) == (0, 0, 0)
    assert wall(cid, "first_response") == (0, None, None, None)
    assert all(a.rate is None for a in cid.sla.values())

    totals = report.totals
    assert (totals.conversations_opened, totals.conversations_resolved) == (3, 1)
    assert (totals.messages_in, totals.messages_out) == (3, 2)
    assert wall(totals, "first_response") == (7, 120.0, 384.0, 1320 / 7)
    assert business(totals, "first_response") == (3, 100.0, 260.0, 150.0)
    assert (totals.sla["first_response"].met, totals.sla["first_response"].breached) == (1, 1)
    assert totals.sla["first_response"].rate == 0.5
    assert totals.sla["next_response"].rate is None  # due after "now": undecided


async def test_summary_by_channel_team_and_label(sessions: SessionFactory) -> None:
    weekend = await build_weekend(sessions)
    span = period(FIRST, LAST, TIMEZONE)
    async with sessions() as session:
        channels = by_key(await summary(session, span, "channel", Scope(), now=NOW))
        teams = await summary(session, span, "team", Scope(), now=NOW)
        only_team = await summary(session, span, "none", Scope(team_id=weekend.team), now=NOW)
        only_sales = await summary(session, span, "agent", Scope(channel_id=weekend.sales), now=NOW)
        nothing_visible = await summary(session, span, "none", Scope(visible=frozenset()))
    support, sales = channels[str(weekend.support)], channels[str(weekend.sales)]
    assert (support.conversations_opened, support.messages_in, support.messages_out) == (2, 2, 1)
    assert (sales.conversations_opened, sales.messages_in, sales.messages_out) == (1, 1, 1)
    assert wall(support, "first_response") == (5, 180.0, 456.0, 240.0)
    assert None not in channels  # every message has a channel

    team = by_key(teams)[str(weekend.team)]
    assert (team.conversations_opened, team.messages_in, team.messages_out) == (1, 1, 1)
    assert by_key(teams)[None].conversations_opened == 2
    assert wall(only_team.totals, "first_response") == (2, 60.0, 84.0, 60.0)
    assert only_team.totals.sla["first_response"].breached == 1

    sales_only = by_key(only_sales)
    assert sales_only[str(weekend.bob)].messages_out == 1
    assert sales_only[str(weekend.ann)].messages_out == 0
    assert only_sales.totals.conversations_opened == 1
    assert nothing_visible.totals.conversations_opened == 0

    if labels_table() is None:
        with pytest.raises(GroupingUnavailable):
            async with sessions() as session:
                await summary(session, span, "label", Scope(), now=NOW)
        return
    async with sessions() as session:
        labels = by_key(await summary(session, span, "label", Scope(), now=NOW))
    assert set(labels) == {"billing", "vip", None}
    # c1 and c2 are billing, c1 also vip, c4 has none: a conversation counts in each label.
    assert labels["billing"].conversations_opened == 2
    assert labels["vip"].conversations_opened == 1
    assert labels[None].conversations_opened == 1
    assert (labels["billing"].messages_in, labels["vip"].messages_in) == (3, 2)
    assert wall(labels["billing"], "first_response") == (7, 120.0, 384.0, 1320 / 7)
    assert labels["billing"].sla["first_response"].rate == 0.5


async def test_volume_by_local_hour_of_week(sessions: SessionFactory) -> None:
    weekend = await build_weekend(sessions)
    async with sessions() as session:
        berlin = await volume(session, period(FIRST, LAST, TIMEZONE), Scope())
        in_utc = await volume(session, period(FIRST, LAST, "UTC"), Scope())
        sales = await volume(
            session, period(FIRST, LAST, TIMEZONE), Scope(channel_id=weekend.sales)
        )
        team = await volume(session, period(FIRST, LAST, TIMEZONE), Scope(team_id=weekend.team))
    sat, sun = 5, 6
    # 23:00Z Fri = Sat 00:00 CET; 01:30Z Sun = 03:30 CEST; 21:59:59Z Sun = 23:59:59 CEST.
    expected = {(sat, 0): 1, (sun, 3): 1, (sun, 23): 1}
    assert {
        (d, h): n for d, row in enumerate(berlin.hours) for h, n in enumerate(row) if n
    } == expected
    assert berlin.total == 3
    # In UTC the same days (Sat 00:00Z .. Mon 00:00Z) hold Sunday's 01:30Z, 21:59:59Z and
    # 22:00Z; Friday's 23:00Z is before them.
    assert {(d, h): n for d, row in enumerate(in_utc.hours) for h, n in enumerate(row) if n} == {
        (sun, 1): 1,
        (sun, 21): 1,
        (sun, 22): 1,
    }
    assert sales.total == team.total == 1
    assert sales.hours[sun][3] == 1


async def test_percentiles_are_exact_over_many_values(sessions: SessionFactory) -> None:
    """Many spans with ties and microsecond fractions: the database's ranks give the same
    figures as sorting in Python (identical on SQLite and PostgreSQL)."""
    rng = random.Random(9)
    values = [round(rng.choice([rng.uniform(0, 5000), 42.0]), 6) for _ in range(101)]
    channel = Channel(kind="webform", name="x", config_encrypted="-")
    contact = Contact(name="c")
    async with sessions() as session, session.begin():
        session.add_all([channel, contact])
        await session.flush()
        conversation = Conversation(contact_id=contact.id, channel_id=channel.id)
        session.add(conversation)
        await session.flush()
        for i, value in enumerate(values):
            ended = datetime(2024, 6, 1, tzinfo=UTC) + timedelta(minutes=i)
            session.add(
                ConversationMetric(
                    conversation_id=conversation.id,
                    channel_id=channel.id,
                    agent_id=uuid.uuid4() if i % 2 else None,
                    cycle=1,
                    kind="reply",
                    started_at=ended - timedelta(seconds=value),
                    ended_at=ended,
                    wall_seconds=value,
                    business_seconds=None,
                )
            )
    async with sessions() as session:
        report = await summary(
            session, period(date(2024, 6, 1), date(2024, 6, 1), "UTC"), "none", Scope()
        )
    ordered = sorted(values)
    ranked = dict(enumerate(ordered, start=1))
    micros = sum(round(v * 1_000_000) for v in values)
    assert wall(report.totals, "reply") == (
        101,
        percentile(101, ranked, MEDIAN),
        percentile(101, ranked, P90),
        micros / (101 * 1_000_000),
    )
    assert report.totals.times["reply"]["wall"].median == ordered[50]
    assert percentile(101, ranked, Fraction(9, 10)) == ordered[90]


async def test_csv_rows_of_the_reports(sessions: SessionFactory) -> None:
    await build_weekend(sessions, ann_name='=HYPERLINK("http://x")')
    span = period(FIRST, LAST, TIMEZONE)
    async with sessions() as session:
        report = await summary(session, span, "agent", Scope(), now=NOW)
        hours = await volume(session, span, Scope())
    rows = list(summary_rows(report))
    assert rows[0] == summary_header()
    assert [row[0] for row in rows[1:]] == ["group"] * len(report.groups) + ["total"]
    assert all(len(row) == len(rows[0]) for row in rows)
    total = dict(zip(rows[0], rows[-1], strict=True))
    assert total["first_response_wall_median"] == "120.0"
    assert total["reply_wall_median"] == ""
    assert total["sla_first_response_attainment"] == "0.5"
    text = b"".join(chunks(rows)).decode("utf-8")
    assert text.startswith("\ufeffrow,key,name,")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    volume_table = list(volume_rows(hours))
    assert volume_table[0][:3] == ["weekday", "00", "01"]
    assert volume_table[6][0] == "sat" and volume_table[6][1] == "1"
    assert volume_table[7][-1] == "2"
