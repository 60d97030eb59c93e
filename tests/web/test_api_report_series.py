"""The report series and the live overview over HTTP (web/api/report_series.py): day and
week buckets in the reader's timezone, a span that moves to another day with the zone,
the figures worked out here from the seeded rows (Python's `statistics`, not the
report code), the CSV files, the overview's counts and SLA states, bad input and roles.
Buckets across a change to summer time are each exactly their days' summary report
(inbox/reports.py `summaries`, every grouping, against `summary` one part at a time).

`seed_reports` is also the dataset of the report screen's browser test
(tests/ui/test_admin_reports.py)."""

from __future__ import annotations

import csv
import io
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.registry import spec_for
from inbox.account_models import Team
from inbox.metric_models import ConversationMetric, SlaClock, SlaPolicy
from inbox.models import Role, User
from inbox.report_period import Period, period
from inbox.reports import GROUPINGS, Scope, labels_table, summaries, summary
from tests.inbox.report_scenario import TIMEZONE, build_weekend, utc
from tests.web.conftest import ApiUser, Client, make_api_user
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.models import Channel, Contact, Conversation, Message, utcnow
from web.api.report_series import buckets
from web.keys import SECRET_BOX_KEY

SERIES = "/api/v1/reports/series"
OVERVIEW = "/api/v1/reports/overview"
VOLUME = "/api/v1/reports/volume"
SUMMARY = "/api/v1/reports/summary"
FIRST, LAST = date(2024, 6, 10), date(2024, 6, 18)  # Monday .. the next Tuesday
NEW_YORK = "America/New_York"  # UTC-4 in June


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of June 2024, in UTC."""
    return datetime(2024, 6, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Span:
    kind: str
    ended: datetime
    wall: float
    business: float | None


@dataclass
class Seeded:
    """What `seed_reports` wrote that the tests reason about."""

    support: uuid.UUID
    sales: uuid.UUID
    team: uuid.UUID
    ann: uuid.UUID
    bob: uuid.UUID
    spans: list[Span] = field(default_factory=list)
    # (created, channel) of every conversation; customer messages' times and channels
    opened: list[tuple[datetime, uuid.UUID]] = field(default_factory=list)
    incoming: list[tuple[datetime, uuid.UUID]] = field(default_factory=list)


async def seed_reports(sessions: SessionFactory, box: SecretBox) -> Seeded:
    """Two channels, a team, two agents, five conversations in June 2024 with their
    messages and measured spans, an SLA policy with clocks around the real `now`.

    The boundary: conversation k2 starts and gets its first answer late on Monday
    evening in New York, which is already Tuesday in UTC."""
    config = spec_for("webform").config.model_validate({})

    def channel(name: str) -> Channel:
        return Channel(
            kind="webform",
            name=name,
            config_encrypted=box.encrypt(config.model_dump(mode="json")),
            health="unknown",
        )

    support, sales = channel("Support desk"), channel("Sales <form> & co")
    ann = User(email=f"ann-{uuid.uuid4().hex[:6]}@example.com", name="Ann Agent", role="agent")
    bob = User(email=f"bob-{uuid.uuid4().hex[:6]}@example.com", name="Bob Agent", role="agent")
    ann.password_hash = bob.password_hash = "not-a-real-hash"
    team = Team(name=f"Tier one {uuid.uuid4().hex[:4]}")
    contact = Contact(name="A Customer")
    now = utcnow()
    async with sessions() as session, session.begin():
        session.add_all([support, sales, ann, bob, team, contact])
        await session.flush()
        seeded = Seeded(support.id, sales.id, team.id, ann.id, bob.id)

        def conversation(
            created: datetime,
            place: Channel,
            who: User | None,
            *,
            status: str = "open",
            team_id: uuid.UUID | None = None,
            waiting: datetime | None = None,
        ) -> Conversation:
            row = Conversation(
                contact_id=contact.id,
                channel_id=place.id,
                assignee_id=who.id if who else None,
                team_id=team_id,
                status=status,
                created_at=created,
                last_activity_at=created,
                waiting_since=waiting,
            )
            session.add(row)
            seeded.opened.append((created, place.id))
            return row

        k1 = conversation(at(10, 14), support, ann, status="resolved", team_id=team.id)
        k2 = conversation(at(11, 2, 30), support, bob, waiting=now - timedelta(minutes=30))
        k3 = conversation(at(12, 15), sales, ann, status="pending")
        k4 = conversation(at(14, 18), sales, None, waiting=now - timedelta(minutes=5))
        k5 = conversation(at(17, 13), support, bob, team_id=team.id)
        await session.flush()

        seq = 0

        def message(conv: Conversation, when: datetime, author: User | None = None) -> None:
            nonlocal seq
            seq += 1
            session.add(
                Message(
                    conversation_id=conv.id,
                    channel_id=conv.channel_id,
                    contact_id=contact.id,
                    direction="out" if author else "in",
                    author_id=author.id if author else None,
                    text="hello",
                    sent_at=when,
                    created_at=when,
                    arrived_at=when,
                    seq=seq,
                )
            )
            if author is None:
                seeded.incoming.append((when, conv.channel_id))

        for conv in (k1, k2, k3, k4, k5):
            message(conv, conv.created_at)
        message(k2, at(11, 3, 30))  # Monday 23:30 in New York, Tuesday 03:30 UTC
        message(k3, at(13, 9))
        message(k1, at(10, 14, 5), ann)
        message(k2, at(11, 3, 40), bob)
        message(k3, at(12, 15, 2), ann)

        def span(
            conv: Conversation,
            kind: str,
            who: User,
            ended: datetime,
            wall: float,
            business: float | None,
            cycle: int = 1,
        ) -> None:
            session.add(
                ConversationMetric(
                    conversation_id=conv.id,
                    channel_id=conv.channel_id,
                    team_id=conv.team_id,
                    agent_id=who.id,
                    cycle=cycle,
                    kind=kind,
                    started_at=ended - timedelta(seconds=wall),
                    ended_at=ended,
                    wall_seconds=wall,
                    business_seconds=business,
                )
            )
            seeded.spans.append(Span(kind, ended, wall, business))

        span(k1, "first_response", ann, at(10, 14, 5), 300, 300)
        span(k1, "first_response", ann, at(10, 20), 60, None, cycle=2)
        span(k2, "first_response", bob, at(11, 3, 40), 4200, None)
        span(k3, "first_response", ann, at(12, 15, 2), 120, 100)
        span(k4, "first_response", ann, at(14, 18, 30), 1800, 1500)
        span(k5, "first_response", bob, at(17, 13, 10), 600, 600)
        span(k1, "reply", ann, at(10, 16), 900, None)
        span(k3, "reply", ann, at(12, 18), 240, 200)
        span(k3, "reply", ann, at(13, 10), 3600, 1800)
        span(k1, "resolution", ann, at(10, 22), 28800, 14400)
        span(k2, "resolution", bob, at(11, 5), 9000, None)
        span(k3, "resolution", ann, at(13, 12), 75600, 30000)

        policy = SlaPolicy(
            name="Standard",
            channel_ids=[],
            team_ids=[],
            priorities=[],
            first_response_seconds=6000,
            next_response_seconds=3600,
            resolution_seconds=86400,
        )
        session.add(policy)
        await session.flush()

        def clock(
            conv: Conversation,
            target: str,
            started: datetime,
            due: datetime,
            met: datetime | None = None,
            cycle: int = 1,
        ) -> None:
            session.add(
                SlaClock(
                    conversation_id=conv.id,
                    cycle=cycle,
                    target=target,
                    policy_id=policy.id,
                    started_at=started,
                    due_at=due,
                    met_at=met,
                    breached_at=due if due < now and met is None else None,
                )
            )

        def minutes(n: float) -> timedelta:
            return timedelta(minutes=n)

        # k2: 10 of 100 minutes left: at risk. k4: an old cycle's breach, now on time.
        clock(k2, "first_response", now - minutes(90), now + minutes(10))
        clock(k4, "first_response", now - minutes(300), now - minutes(200), cycle=1)
        clock(k4, "first_response", now - minutes(5), now + minutes(95), cycle=2)
        # k5: overdue; k3: met; k1 is resolved, so its late clock does not count.
        clock(k5, "resolution", now - minutes(1500), now - minutes(60))
        clock(k3, "first_response", now - minutes(50), now + minutes(50), met=now)
        clock(k1, "resolution", now - minutes(1500), now - minutes(60))
    return seeded


# --- the figures, worked out independently ------------------------------------------------------


def quantile(values: list[float], share: float) -> float | None:
    """Python's own interpolated quantile (the "inclusive" method)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    if share == 0.5:
        return statistics.median(values)
    return statistics.quantiles(values, n=10, method="inclusive")[int(share * 10) - 1]


def stats(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "median": quantile(values, 0.5),
        "p90": quantile(values, 0.9),
        "mean": statistics.fmean(values) if values else None,
    }


def local_day(instant: datetime, zone: str) -> date:
    return instant.astimezone(ZoneInfo(zone)).date()


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def expected_times(
    spans: Iterable[Span], zone: str, bucket: Any
) -> dict[tuple[date, str, str], dict[str, Any]]:
    values: dict[tuple[date, str, str], list[float]] = defaultdict(list)
    for s in spans:
        day = local_day(s.ended, zone)
        if not FIRST <= day <= LAST:
            continue
        values[(bucket(day), s.kind, "wall")].append(s.wall)
        if s.business is not None:
            values[(bucket(day), s.kind, "business")].append(s.business)
    return {key: stats(v) for key, v in values.items()}


def approx(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v if v is None or k == "count" else pytest.approx(v) for k, v in figures.items()}


async def test_series_in_two_timezones_by_day_and_week(
    client: Client, sessions: SessionFactory
) -> None:
    seeded = await seed_reports(sessions, client.app[SECRET_BOX_KEY])
    manager = await make_api_user(sessions, Role.MANAGER)
    kinds = ("first_response", "reply", "resolution")
    for zone in (NEW_YORK, "UTC"):
        period = {"from": str(FIRST), "to": str(LAST), "timezone": zone}
        answer = await client.get(SERIES, params=period, headers=manager.headers)
        assert answer.status == 200, await answer.text()
        body = await answer.json()
        assert body["interval"] == "day"
        days = [FIRST + timedelta(days=i) for i in range(9)]
        assert [(b["from"], b["to"]) for b in body["buckets"]] == [(str(d), str(d)) for d in days]
        expected = expected_times(seeded.spans, zone, lambda d: d)
        opened: dict[tuple[date, uuid.UUID], int] = defaultdict(int)
        for created, channel in seeded.opened:
            opened[(local_day(created, zone), channel)] += 1
        incoming: dict[tuple[date, uuid.UUID], int] = defaultdict(int)
        for sent, channel in seeded.incoming:
            incoming[(local_day(sent, zone), channel)] += 1
        for day, bucket in zip(days, body["buckets"], strict=True):
            assert bucket["start"] == datetime.combine(
                day, datetime.min.time(), ZoneInfo(zone)
            ).astimezone(UTC).isoformat().replace("+00:00", "Z")
            for kind in kinds:
                wall = expected.get((day, kind, "wall"), stats([]))
                business = expected.get((day, kind, "business"))
                assert bucket["totals"][kind]["wall"] == approx(wall), (zone, day, kind)
                assert bucket["totals"][kind]["business"] == (
                    None if business is None else approx(business)
                ), (zone, day, kind)
            channels = {c["key"]: c for c in bucket["channels"]}
            assert set(channels) == {str(seeded.support), str(seeded.sales)}
            for channel in (seeded.support, seeded.sales):
                figures = channels[str(channel)]
                assert figures["conversations_opened"] == opened[(day, channel)]
                assert figures["messages_in"] == incoming[(day, channel)]
        # Every bucket is the summary report of its own days.
        one = body["buckets"][1]
        alone = await client.get(
            SUMMARY,
            params={"from": one["from"], "to": one["to"], "timezone": zone},
            headers=manager.headers,
        )
        assert (await alone.json())["totals"] == one["totals"]

    # The boundary: k2's first answer (4200 s) is Monday's in New York, Tuesday's in UTC.
    by_zone = {}
    for zone in (NEW_YORK, "UTC"):
        params = {"from": str(FIRST), "to": str(LAST), "timezone": zone}
        body = await (await client.get(SERIES, params=params, headers=manager.headers)).json()
        by_zone[zone] = [b["totals"]["first_response"]["wall"] for b in body["buckets"][:2]]
    assert by_zone[NEW_YORK][0] == {"count": 3, "median": 300.0, "p90": 3420.0, "mean": 1520.0}
    assert by_zone[NEW_YORK][1]["count"] == 0
    assert by_zone["UTC"][0]["count"] == 2 and by_zone["UTC"][1]["median"] == 4200.0

    # Weeks: Monday to Sunday, the last one cut at the period's end.
    weekly = await client.get(
        SERIES,
        params={"from": str(FIRST), "to": str(LAST), "timezone": NEW_YORK, "interval": "week"},
        headers=manager.headers,
    )
    body = await weekly.json()
    assert body["interval"] == "week"
    assert [(b["from"], b["to"]) for b in body["buckets"]] == [
        ("2024-06-10", "2024-06-16"),
        ("2024-06-17", "2024-06-18"),
    ]
    expected = expected_times(seeded.spans, NEW_YORK, week_of)
    for bucket in body["buckets"]:
        monday = date.fromisoformat(bucket["from"])
        for kind in kinds:
            wall = expected.get((monday, kind, "wall"), stats([]))
            assert bucket["totals"][kind]["wall"] == approx(wall), (monday, kind)
    # Longer than 92 days goes by week by itself.
    long = {"from": "2024-01-01", "to": "2024-06-30", "timezone": NEW_YORK}
    body = await (await client.get(SERIES, params=long, headers=manager.headers)).json()
    assert body["interval"] == "week" and body["buckets"][0]["to"] == "2024-01-07"

    # The heatmap's cells: New York's Monday 23:00 is UTC's Tuesday 03:00.
    for zone in (NEW_YORK, "UTC"):
        params = {"from": str(FIRST), "to": str(LAST), "timezone": zone}
        hours = (await (await client.get(VOLUME, params=params, headers=manager.headers)).json())[
            "hours"
        ]
        cells: dict[tuple[int, int], int] = defaultdict(int)
        for sent, _ in seeded.incoming:
            local = sent.astimezone(ZoneInfo(zone))
            cells[(local.weekday(), local.hour)] += 1
        assert {(d, h): n for d, row in enumerate(hours) for h, n in enumerate(row) if n} == cells
        assert hours[0][23] == (1 if zone == NEW_YORK else 0)
        assert hours[1][3] == (0 if zone == NEW_YORK else 1)

    # CSV: the totals per day, and every channel per day, in the summary's columns.
    params = {"from": str(FIRST), "to": str(LAST), "timezone": NEW_YORK}
    times = await client.get(SERIES + "/export.csv", params=params, headers=manager.headers)
    assert times.status == 200
    assert times.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in times.headers["Content-Disposition"]
    raw = await times.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [row["from"] for row in table] == [str(FIRST + timedelta(days=i)) for i in range(9)]
    assert table[0]["first_response_wall_median"] == "300.0"
    assert table[0]["first_response_wall_p90"] == "3420.0"
    assert table[1]["first_response_wall_median"] == ""
    per_channel = await client.get(
        SERIES + "/export.csv", params={**params, "table": "channels"}, headers=manager.headers
    )
    rows = list(csv.DictReader(io.StringIO((await per_channel.read()).decode("utf-8-sig"))))
    assert len(rows) == 9 * 2
    sales = [r for r in rows if r["channel_id"] == str(seeded.sales)]
    assert {r["channel_name"] for r in sales} == {"Sales <form> & co"}
    assert [r["conversations_opened"] for r in sales][:5] == ["0", "0", "1", "0", "1"]


async def test_overview(client: Client, sessions: SessionFactory) -> None:
    seeded = await seed_reports(sessions, client.app[SECRET_BOX_KEY])
    admin = await make_api_user(sessions, Role.ADMIN)
    answer = await client.get(OVERVIEW, headers=admin.headers)
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    figures = {k: body[k] for k in ("open", "unassigned", "pending", "waiting")}
    # k2, k4, k5 open (k4 nobody's); k3 pending; k2 and k4 wait for an answer.
    assert figures == {"open": 3, "unassigned": 1, "pending": 1, "waiting": 2}
    waited = datetime.fromisoformat(body["at"]) - datetime.fromisoformat(body["waiting_since"])
    assert timedelta(minutes=29) < waited < timedelta(minutes=40)
    # k2 has 10 of 100 minutes left; k5 is overdue; k4's breach was an earlier cycle's.
    assert (body["sla_at_risk"], body["sla_breached"]) == (1, 1)

    team_only = await client.get(
        OVERVIEW, params={"team_id": str(seeded.team)}, headers=admin.headers
    )
    body = await team_only.json()
    assert (body["open"], body["waiting"], body["sla_breached"], body["sla_at_risk"]) == (
        1,
        0,
        1,
        0,
    )
    sales = await client.get(
        OVERVIEW, params={"channel_id": str(seeded.sales)}, headers=admin.headers
    )
    body = await sales.json()
    assert (body["open"], body["unassigned"], body["pending"], body["sla_breached"]) == (1, 1, 1, 0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_input_and_roles(client: Client, admin: ApiUser, agent: ApiUser) -> None:
    good = {"from": "2024-06-10", "to": "2024-06-18", "timezone": NEW_YORK}
    cases: list[tuple[dict[str, str], str]] = [
        ({"to": "2024-06-18"}, "from"),
        ({**good, "to": "2024-06-09"}, "to"),
        ({**good, "from": "2024-02-30"}, "from"),
        ({**good, "from": "2023-01-01", "to": "2024-06-18"}, "to"),  # over 400 days
        ({**good, "timezone": "Mars/Olympus"}, "timezone"),
        ({**good, "timezone": "Europe/" + "x" * 80}, "timezone"),
        ({**good, "interval": "month"}, "interval"),
        ({**good, "from": "2024-01-01", "interval": "day"}, "interval"),  # 170 days by day
        ({**good, "channel_id": "not-a-uuid"}, "channel_id"),
        ({**good, "group_by": "agent"}, "group_by"),
    ]
    for query, name in cases:
        for path in (SERIES, SERIES + "/export.csv"):
            answer = await client.get(path, params=query, headers=admin.headers)
            assert answer.status == 422, (path, query, await answer.text())
            body = await answer.json()
            assert body["error"]["code"] == "validation_error"
            assert name in body["error"]["fields"], (path, query, body)
    export = await client.get(
        SERIES + "/export.csv", params={**good, "table": "people"}, headers=admin.headers
    )
    assert "table" in (await export.json())["error"]["fields"]
    bad_overview = await client.get(OVERVIEW, params={"team_id": "x"}, headers=admin.headers)
    assert bad_overview.status == 422

    for path in (SERIES, SERIES + "/export.csv", OVERVIEW):
        assert (await client.get(path, params=good if path != OVERVIEW else {})).status == 401
        refused = await client.get(
            path, params=good if path != OVERVIEW else {}, headers=agent.headers
        )
        assert refused.status == 403
        assert (await refused.json())["error"]["code"] == "forbidden"


async def test_buckets_across_summer_time_are_each_days_summary(
    client: Client, sessions: SessionFactory
) -> None:
    """Friday 2024-03-29 to Monday 2024-04-01 in Europe/Berlin: Sunday has 23 hours
    (tests/inbox/report_scenario.py, with rows a second either side of each midnight).
    Added here: SLA clocks met in one bucket and due in another, one of them of an agent
    no longer active (a group only the clock's rows bring into a bucket)."""
    weekend = await build_weekend(sessions)
    async with sessions() as session, session.begin():
        dee = User(
            email=f"dee-{uuid.uuid4().hex[:6]}@example.com",
            name="Dee",
            role="agent",
            password_hash="not-a-real-hash",
            is_active=False,
        )
        contact = Contact(name="Another customer")
        session.add_all([dee, contact])
        await session.flush()
        old = Conversation(
            contact_id=contact.id,
            channel_id=weekend.sales,
            assignee_id=dee.id,
            created_at=utc(20, 9),
            last_activity_at=utc(20, 9),
        )
        policy = SlaPolicy(name="Weekend", channel_ids=[], team_ids=[], priorities=[])
        session.add_all([old, policy])
        await session.flush()
        clocks = [
            # met on time on Saturday 22:00 CET, due Sunday 00:30 CET: Saturday's met
            (old.id, "first_response", utc(30, 23, 30), utc(30, 21)),
            # due Sunday 23:00 CEST, met late on Monday 00:30 CEST: Sunday's breach
            (weekend.c4, "first_response", utc(31, 21), utc(31, 22, 30)),
            # met on time Monday 00:00 CEST sharp, due Monday: Monday's met
            (weekend.c4, "next_response", utc(1, 5, month=4), utc(31, 22)),
            # due Friday 23:59:59 CET, never met: Friday's breach
            (old.id, "resolution", utc(29, 22, 59, 59), None),
        ]
        for conversation_id, target, due, met in clocks:
            session.add(
                SlaClock(
                    conversation_id=conversation_id,
                    cycle=1,
                    target=target,
                    policy_id=policy.id,
                    started_at=due - timedelta(hours=2),
                    due_at=due,
                    met_at=met,
                )
            )
    now = utc(3, 12, month=4)
    span = period(date(2024, 3, 29), date(2024, 4, 1), TIMEZONE)
    _, days = buckets(span, "day")
    _, weeks = buckets(span, "week")
    assert [(p.start, p.end) for p in days] == [
        (utc(28, 23), utc(29, 23)),
        (utc(29, 23), utc(30, 23)),
        (utc(30, 23), utc(31, 22)),  # 23 hours
        (utc(31, 22), utc(1, 22, month=4)),
    ]
    assert [(p.first, p.last) for p in weeks] == [
        (date(2024, 3, 29), date(2024, 3, 31)),
        (date(2024, 4, 1), date(2024, 4, 1)),
    ]

    scopes = [Scope(), Scope(channel_id=weekend.sales), Scope(visible=frozenset({weekend.support}))]
    groupings = [g for g in GROUPINGS if g != "label" or labels_table() is not None]
    for parts in (days, weeks):
        for grouping in groupings:
            for scope in scopes:
                async with sessions() as session:
                    together = await summaries(session, parts, grouping, scope, now=now)
                    alone = [
                        await summary(session, part, grouping, scope, now=now) for part in parts
                    ]
                assert together == alone, (grouping, scope, [p.first for p in parts])
    async with sessions() as session:
        by_day = await summaries(session, days, "agent", Scope(), now=now)
    # The clocks' own buckets, worked out by hand above.
    attained = [
        {t: (a.met, a.breached) for t, a in r.totals.sla.items() if a.met or a.breached}
        for r in by_day
    ]
    assert attained[0] == {"resolution": (0, 1)}
    assert attained[1]["first_response"] == (2, 1)  # c1's, Dee's; c2's breach
    assert attained[2]["first_response"] == (0, 1) and attained[3] == {"next_response": (1, 0)}
    # Dee's group: Friday (the breach), Saturday (met), Sunday (the clock is due then).
    assert [any(g.name == "Dee" for g in r.groups) for r in by_day] == [True, True, True, False]

    # Over HTTP: each bucket is /reports/summary by channel of its own days.
    manager = await make_api_user(sessions, Role.MANAGER)
    for interval, parts in (("day", days), ("week", weeks)):
        params = {"from": "2024-03-29", "to": "2024-04-01", "timezone": TIMEZONE}
        answer = await client.get(
            SERIES, params={**params, "interval": interval}, headers=manager.headers
        )
        assert answer.status == 200, await answer.text()
        body = await answer.json()
        assert [b["from"] for b in body["buckets"]] == [str(p.first) for p in parts]
        for bucket in body["buckets"]:
            own = await client.get(
                SUMMARY,
                params={
                    **params,
                    "from": bucket["from"],
                    "to": bucket["to"],
                    "group_by": "channel",
                },
                headers=manager.headers,
            )
            report = await own.json()
            assert report["totals"] == bucket["totals"], (interval, bucket["from"])
            assert report["groups"] == bucket["channels"], (interval, bucket["from"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_series_parts_must_follow_one_another(sessions: SessionFactory) -> None:
    saturday = period(date(2024, 3, 30), date(2024, 3, 30), TIMEZONE)
    monday = period(date(2024, 4, 1), date(2024, 4, 1), TIMEZONE)
    elsewhere = period(date(2024, 3, 31), date(2024, 3, 31), "UTC")
    gaps: list[list[Period]] = [[], [saturday, monday], [saturday, elsewhere]]
    async with sessions() as session:
        for parts in gaps:
            with pytest.raises(ValueError):
                await summaries(session, parts, "none", Scope())
