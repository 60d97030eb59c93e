"""The reports API: who may read reports, what a bad period answers, the shapes of the
summary and volume reports and their CSV files (figures: tests/inbox/report_scenario.py)."""

from __future__ import annotations

import csv
import io

import pytest

from inbox.models import Role
from tests.inbox.report_scenario import FIRST, LAST, TIMEZONE, build_weekend
from tests.web.conftest import ApiUser, Client, make_api_user
from timeline.db import SessionFactory

SUMMARY = "/api/v1/reports/summary"
VOLUME = "/api/v1/reports/volume"
PERIOD = {"from": str(FIRST), "to": str(LAST), "timezone": TIMEZONE}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_periods_and_roles(client: Client, admin: ApiUser, agent: ApiUser) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({"to": "2024-01-02"}, "from"),
        ({"from": "2024-02-30", "to": "2024-03-01"}, "from"),
        ({"from": "2024/01/01", "to": "2024-01-02"}, "from"),
        ({"from": "1700000000", "to": "2024-01-02"}, "from"),
        ({"from": "2024-01-01", "to": "2024-01-01T00:00"}, "to"),
        ({"from": "2024-01-02", "to": "2024-01-01"}, "to"),
        ({"from": "2024-01-01", "to": "2025-02-04"}, "to"),  # 401 days
        ({"from": "2024-01-01", "to": "2024-01-02", "timezone": "Mars/Base"}, "timezone"),
        ({"from": "2024-01-01", "to": "2024-01-02", "timezone": "UTC\x00"}, "timezone"),
        ({"from": "2024-01-01", "to": "2024-01-02", "timezone": "A" * 65}, "timezone"),
        ({"from": "2024-01-01", "to": "2024-01-02", "group_by": "contact"}, "group_by"),
        ({"from": "2024-01-01", "to": "2024-01-02", "channel_id": "nope"}, "channel_id"),
        ({"from": "2024-01-01", "to": "2024-01-02", "limit": "5"}, "limit"),
    ]
    for query, field in cases:
        for path in (SUMMARY, SUMMARY + "/export.csv"):
            response = await client.get(path, params=query, headers=admin.headers)
            assert response.status == 422, (path, query)
            body = await response.json()
            assert body["error"]["code"] == "validation_error"
            assert field in body["error"]["fields"], (query, body)
    # 400 days is the most a report covers.
    longest = {"from": "2024-01-01", "to": "2025-02-03"}
    assert (await client.get(VOLUME, params=longest, headers=admin.headers)).status == 200

    for path in (SUMMARY, SUMMARY + "/export.csv", VOLUME, VOLUME + "/export.csv"):
        assert (await client.get(path, params=PERIOD)).status == 401
        forbidden = await client.get(path, params=PERIOD, headers=agent.headers)
        assert forbidden.status == 403
        assert (await forbidden.json())["error"]["code"] == "forbidden"

    document = await (await client.get("/api/v1/openapi.json")).json()
    parameters = document["paths"][SUMMARY]["get"]["parameters"]
    assert {p["name"] for p in parameters} >= {"from", "to", "timezone", "group_by"}


async def test_reports_over_http(client: Client, sessions: SessionFactory) -> None:
    weekend = await build_weekend(sessions, ann_name="@SUM(A1)")
    manager = await make_api_user(sessions, Role.MANAGER)

    response = await client.get(
        SUMMARY, params={**PERIOD, "group_by": "agent"}, headers=manager.headers
    )
    assert response.status == 200
    report = await response.json()
    assert report["period"] == {
        "from": "2024-03-30",
        "to": "2024-03-31",
        "timezone": "Europe/Berlin",
        "start": "2024-03-29T23:00:00Z",
        "end": "2024-03-31T22:00:00Z",
    }
    groups = {g["key"]: g for g in report["groups"]}
    bob = groups[str(weekend.bob)]
    assert (bob["name"], bob["messages_in"], bob["messages_out"]) == ("Bob", 1, 1)
    assert bob["first_response"]["wall"] == {"count": 2, "median": 60.0, "p90": 84.0, "mean": 60.0}
    assert bob["first_response"]["business"] is None  # no calendar applied
    assert bob["sla"]["first_response"] == {"met": 0, "breached": 1, "attainment": 0.0}
    ann = groups[str(weekend.ann)]
    assert ann["first_response"]["business"] == {
        "count": 3,
        "median": 100.0,
        "p90": 260.0,
        "mean": 150.0,
    }
    cid = groups[str(weekend.cid)]
    assert cid["conversations_opened"] == 0 and cid["reply"]["wall"]["median"] is None
    # The manager asking has no work either: a zero group too.
    assert groups[str(manager.user.id)]["messages_out"] == 0
    totals = report["totals"]
    assert (totals["conversations_opened"], totals["conversations_resolved"]) == (3, 1)
    assert totals["first_response"]["wall"]["median"] == 120.0

    sales = await client.get(
        SUMMARY,
        params={**PERIOD, "channel_id": str(weekend.sales)},
        headers=manager.headers,
    )
    assert (await sales.json())["totals"]["messages_in"] == 1

    export = await client.get(
        SUMMARY + "/export.csv", params={**PERIOD, "group_by": "agent"}, headers=manager.headers
    )
    assert export.status == 200
    assert export.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in export.headers["Content-Disposition"]
    raw = await export.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(table) == 1 + len(report["groups"]) + 1
    names = {row[2] for row in table[1:]}
    assert "'@SUM(A1)" in names and "@SUM(A1)" not in names  # shown as text, never run
    total = dict(zip(table[0], table[-1], strict=True))
    assert (total["row"], total["messages_in"], total["first_response_wall_p90"]) == (
        "total",
        "3",
        "384.0",
    )

    volume = await client.get(VOLUME, params=PERIOD, headers=manager.headers)
    hours = await volume.json()
    assert hours["weekdays"][5:] == ["sat", "sun"]
    assert (hours["hours"][5][0], hours["hours"][6][3], hours["hours"][6][23]) == (1, 1, 1)
    assert hours["total"] == 3

    volume_csv = await client.get(VOLUME + "/export.csv", params=PERIOD, headers=manager.headers)
    rows = list(csv.reader(io.StringIO((await volume_csv.read()).decode("utf-8-sig"))))
    assert rows[0][0] == "weekday" and len(rows) == 8
    assert rows[7][0] == "sun" and rows[7][-1] == "2"
