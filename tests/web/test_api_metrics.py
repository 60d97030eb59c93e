"""Business hours, SLA policies and a conversation's metrics and SLA over the REST API."""

from __future__ import annotations

import uuid

import pytest

from inbox.account_models import ChannelMember
from inbox.models import Role
from inbox.response_metrics import MetricRecorder
from tests.inbox.metric_story import Story, berlin, make_channel
from tests.inbox.test_response_metrics import EXPECTED, tell
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory

WEEK = {"mon": [["09:00", "12:30"], ["13:30", "18:00"]], "fri": [["09:00", "24:00"]]}


async def test_business_hours_and_policies(
    client: Client, sessions: SessionFactory, admin: ApiUser, agent: ApiUser, rows: Rows
) -> None:
    manager = await make_api_user(sessions, Role.MANAGER)
    channel = await rows.channel()
    team = uuid.uuid4()
    body = {
        "name": "Berlin office",
        "timezone": "Europe/Berlin",
        "week": WEEK,
        "holidays": [{"date": "2024-12-25", "name": "Christmas"}],
        "channel_ids": [str(channel.id)],
        "team_ids": [str(team)],
    }
    assert (
        await client.post("/api/v1/business-hours", json=body, headers=agent.headers)
    ).status == 403
    assert (
        await client.post("/api/v1/business-hours", json=body, headers=manager.headers)
    ).status == 403
    created = await client.post("/api/v1/business-hours", json=body, headers=admin.headers)
    assert created.status == 201, await created.text()
    calendar = await created.json()
    assert calendar["week"] == WEEK and calendar["channel_ids"] == [str(channel.id)]
    assert calendar["team_ids"] == [str(team)]
    url = f"/api/v1/business-hours/{calendar['id']}"
    listed = await client.get("/api/v1/business-hours", headers=manager.headers)
    assert [c["id"] for c in (await listed.json())["items"]] == [calendar["id"]]
    assert (await client.get(url, headers=agent.headers)).status == 403

    bad = await client.patch(
        url, json={"week": {"mon": [["13:00", "14:00"], ["09:00", "10:00"]]}}, headers=admin.headers
    )
    assert bad.status == 422
    assert "week.mon" in (await bad.json())["error"]["fields"]
    patched = await client.patch(
        url, json={"timezone": "America/New_York", "team_ids": []}, headers=admin.headers
    )
    assert patched.status == 200
    assert (await patched.json())["timezone"] == "America/New_York"
    assert (await patched.json())["team_ids"] == []
    assert (await patched.json())["week"] == WEEK  # unchanged parts stay

    policy_body = {
        "name": "Gold",
        "first_response_seconds": 3600,
        "resolution_seconds": 86400,
        "channel_ids": [str(channel.id)],
    }
    assert (
        await client.post("/api/v1/sla-policies", json=policy_body, headers=agent.headers)
    ).status == 403
    made = await client.post("/api/v1/sla-policies", json=policy_body, headers=admin.headers)
    assert made.status == 201, await made.text()
    policy = await made.json()
    assert policy["next_response_seconds"] is None and policy["enabled"] is True
    policy_url = f"/api/v1/sla-policies/{policy['id']}"
    no_target = await client.patch(
        policy_url,
        json={"first_response_seconds": None, "resolution_seconds": None},
        headers=admin.headers,
    )
    assert no_target.status == 422
    renamed = await client.patch(policy_url, json={"name": "Platinum"}, headers=admin.headers)
    assert (await renamed.json())["name"] == "Platinum"
    listed = await client.get("/api/v1/sla-policies", headers=manager.headers)
    assert [p["name"] for p in (await listed.json())["items"]] == ["Platinum"]

    assert (await client.delete(policy_url, headers=admin.headers)).status == 204
    assert (await client.get(policy_url, headers=admin.headers)).status == 404
    assert (await client.delete(url, headers=admin.headers)).status == 204
    assert (await client.get(url, headers=admin.headers)).status == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_hostile_input_is_refused(client: Client, admin: ApiUser, rows: Rows) -> None:
    base = {"name": "x", "timezone": "UTC"}
    cases = [
        ({**base, "name": "a\x00b"}, "name"),
        ({**base, "name": "n" * 201}, "name"),
        ({**base, "timezone": "Nowhere/Never"}, "timezone"),
        ({**base, "week": {"mon": [["09:00", "17:00"], ["16:00", "18:00"]]}}, "week.mon"),
        ({**base, "week": {"mon": [[9, 17]]}}, "week.mon"),
        ({**base, "holidays": [{"date": "not a date"}]}, "holidays.0.date"),
        ({**base, "channel_ids": [str(uuid.uuid4())]}, "channel_ids"),
        ({**base, "color": "red"}, "color"),
    ]
    for body, field in cases:
        answer = await client.post("/api/v1/business-hours", json=body, headers=admin.headers)
        assert answer.status == 422, body
        assert field in (await answer.json())["error"]["fields"], (body, await answer.json())
    policies = [
        ({"name": "p"}, "body"),
        ({"name": "p", "first_response_seconds": "soon"}, "first_response_seconds"),
        ({"name": "p", "first_response_seconds": 0}, "first_response_seconds"),
        ({"name": "p", "resolution_seconds": 10**12}, "resolution_seconds"),
        ({"name": "p", "resolution_seconds": 60, "priorities": ["a\x00"]}, "priorities.0"),
    ]
    for body, field in policies:
        answer = await client.post("/api/v1/sla-policies", json=body, headers=admin.headers)
        assert answer.status == 422, body
        assert field in (await answer.json())["error"]["fields"], (body, await answer.json())
    unknown = f"/api/v1/sla-policies/{uuid.uuid4()}"
    assert (await client.patch(unknown, json={"name": "x"}, headers=admin.headers)).status == 404
    assert (
        await client.get("/api/v1/business-hours/not-a-uuid", headers=admin.headers)
    ).status == 404


async def test_conversation_metrics_and_sla(
    client: Client, sessions: SessionFactory, admin: ApiUser, agent: ApiUser
) -> None:
    channel_id = await make_channel(sessions, office_hours=True)
    async with sessions() as session, session.begin():  # the agent works this channel
        session.add(ChannelMember(channel_id=channel_id, user_id=agent.user.id))
    story = Story(sessions, channel_id)
    await tell(story)
    base = f"/api/v1/conversations/{story.conversation_id}"
    empty = await client.get(base + "/metrics", headers=agent.headers)
    assert (await empty.json())["items"] == []
    await MetricRecorder(sessions, clock=lambda: berlin(2024, 5, 7, 12)).run_once()
    answer = await client.get(base + "/metrics", headers=agent.headers)
    assert answer.status == 200
    items = (await answer.json())["items"]
    assert [(i["kind"], i["cycle"], i["wall_seconds"], i["business_seconds"]) for i in items] == [
        (kind, cycle, wall, business) for kind, cycle, _, wall, business in EXPECTED
    ]

    assert (await (await client.get(base + "/sla", headers=agent.headers)).json()) == []
    policy = await client.post(
        "/api/v1/sla-policies",
        json={"name": "Office", "first_response_seconds": 3600, "resolution_seconds": 4 * 3600},
        headers=admin.headers,
    )
    assert policy.status == 201
    sla = await (await client.get(base + "/sla", headers=agent.headers)).json()
    # Cycle 2: first response after 45 business minutes of 60 (met, 15 min to spare);
    # resolved after 2.5 business hours of 4 (Fri 16:30 + 4 h open → Mon 12:30).
    assert [(t["target"], t["state"], t["cycle"], t["remaining_seconds"]) for t in sla] == [
        ("first_response", "met", 2, 900.0),
        ("resolution", "met", 2, 1.5 * 3600),
    ]
    assert sla[1]["due_at"] == "2024-05-06T10:30:00Z"
    missing = f"/api/v1/conversations/{uuid.uuid4()}"
    assert (await client.get(missing + "/sla", headers=agent.headers)).status == 404
    assert (await client.get(missing + "/metrics", headers=agent.headers)).status == 404
