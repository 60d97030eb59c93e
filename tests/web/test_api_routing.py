"""Routing rules, assignment policies and agent capacity over the REST API: admins
write, managers read, agents are refused; references are checked; input is validated."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from inbox import presence
from inbox.account_models import Team
from inbox.models import Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory

RULES = "/api/v1/routing-rules"
POLICIES = "/api/v1/assignment-policies"
LABEL = [{"type": "add_label", "label": "vip"}]


async def call(
    client: Client, user: ApiUser, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    response = await client.request(method, url, json=body, headers=user.headers)
    data = await response.json() if response.status != 204 else None
    return response.status, data


async def make_team(sessions: SessionFactory, name: str = "second line") -> uuid.UUID:
    team = Team(name=name)
    async with sessions() as session, session.begin():
        session.add(team)
    return team.id


async def test_rules_crud_order_and_references(
    client: Client, admin: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    channel = await rows.channel("sms")
    team = await make_team(sessions)
    escalate = {
        "name": "escalate",
        "conditions": {
            "all": [{"type": "channel", "channel_ids": [str(channel.id)]}],
            "any": [
                {"type": "text", "operator": "matches", "value": r"(?i)\burgent\b"},
                {"type": "language", "languages": ["de"]},
            ],
        },
        "actions": [
            {"type": "escalate", "team_id": str(team)},
            {"type": "auto_reply", "text": "Hi {{contact.first_name | there}}"},
        ],
        "stop_processing": True,
    }
    status, first = await call(client, admin, "POST", RULES, escalate)
    assert status == 201, first
    assert first["position"] == 0 and first["problems"] == [] and first["stop_processing"]
    assert first["actions"][0] == {"type": "escalate", "team_id": str(team)}
    status, second = await call(client, admin, "POST", RULES, {"name": "b", "actions": LABEL})
    assert (status, second["position"]) == (201, 1)
    status, third = await call(
        client, admin, "POST", RULES, {"name": " c ", "actions": LABEL, "position": 0}
    )
    assert (status, third["name"], third["position"]) == (201, "c", 0)

    async def order() -> list[str]:
        status, page = await call(client, admin, "GET", RULES)
        assert status == 200 and page["next_cursor"] is None
        return [item["name"] for item in page["items"]]

    assert await order() == ["c", "escalate", "b"]
    status, moved = await call(client, admin, "PATCH", f"{RULES}/{third['id']}", {"position": 9})
    assert (status, moved["position"]) == (200, 2)
    assert await order() == ["escalate", "b", "c"]
    status, changed = await call(
        client,
        admin,
        "PATCH",
        f"{RULES}/{second['id']}",
        {"enabled": False, "actions": [{"type": "set_priority", "priority": "urgent"}]},
    )
    assert status == 200 and not changed["enabled"]
    assert changed["actions"] == [{"type": "set_priority", "priority": "urgent"}]

    # A team deleted later: the rule stays readable and says what is missing.
    async with sessions() as session, session.begin():
        await session.delete(await session.get(Team, team))
    status, read = await call(client, admin, "GET", f"{RULES}/{first['id']}")
    assert status == 200 and read["problems"] == [f"actions.0.team_id: no such team: {team}"]

    assert (await call(client, admin, "DELETE", f"{RULES}/{second['id']}"))[0] == 204
    assert (await call(client, admin, "GET", f"{RULES}/{second['id']}"))[0] == 404
    assert await order() == ["escalate", "c"]


async def test_unknown_references_are_422_naming_the_field(
    client: Client, admin: ApiUser, sessions: SessionFactory
) -> None:
    inactive = await make_api_user(sessions, Role.AGENT, active=False)
    unknown = str(uuid.uuid4())
    status, body = await call(
        client,
        admin,
        "POST",
        RULES,
        {
            "name": "refs",
            "conditions": {"any": [{"type": "channel", "channel_ids": [unknown]}]},
            "actions": [
                {"type": "assign_team", "team_id": unknown},
                {"type": "assign_agent", "user_id": str(inactive.user.id)},
            ],
        },
    )
    assert status == 422
    assert set(body["error"]["fields"]) == {
        "conditions.any.0.channel_ids",
        "actions.0.team_id",
        "actions.1.user_id",
    }
    status, page = await call(client, admin, "GET", RULES)
    assert page["items"] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"actions": LABEL}, "name"),
        ({"name": "x" * 201, "actions": LABEL}, "name"),
        ({"name": "a\x00b", "actions": LABEL}, "name"),
        ({"name": "   ", "actions": LABEL}, "name"),
        ({"name": "n", "actions": []}, "actions"),
        ({"name": "n", "actions": LABEL, "position": -1}, "position"),
        ({"name": "n", "actions": LABEL, "colour": "red"}, "colour"),
        ({"name": "n", "actions": [{"type": "auto_reply", "text": "{{nope}}"}]}, "actions.0"),
        (
            {
                "name": "n",
                "actions": LABEL,
                "conditions": {"all": [{"type": "text", "operator": "matches", "value": "(["}]},
            },
            "conditions.all.0",
        ),
        (
            {
                "name": "n",
                "actions": LABEL,
                "conditions": {
                    "all": [{"type": "text", "operator": "contains", "value": "x" * 501}]
                },
            },
            "conditions.all.0",
        ),
        ({"name": "n", "actions": [{"type": "assign_agent", "user_id": 5}]}, "actions.0"),
    ],
)
async def test_invalid_rules_are_422(
    client: Client, admin: ApiUser, body: dict[str, Any], field: str
) -> None:
    status, answer = await call(client, admin, "POST", RULES, body)
    assert status == 422, answer
    assert any(name.startswith(field) for name in answer["error"]["fields"]), answer


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_roles_and_malformed_requests(
    client: Client, admin: ApiUser, agent: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    manager = await make_api_user(sessions, Role.MANAGER)
    status, rule = await call(client, admin, "POST", RULES, {"name": "r", "actions": LABEL})
    assert status == 201
    channel = await rows.channel("sms")
    status, policy = await call(client, admin, "POST", POLICIES, {"channel_id": str(channel.id)})
    assert status == 201
    reads = [f"{RULES}", f"{RULES}/{rule['id']}", POLICIES, f"{POLICIES}/{policy['id']}"]
    reads += [f"{POLICIES}/{policy['id']}/agents", f"/api/v1/agents/{agent.user.id}/capacity"]
    for url in reads:
        assert (await call(client, manager, "GET", url))[0] == 200, url
        assert (await call(client, agent, "GET", url))[0] == 403, url
    writes = [
        ("POST", RULES, {"name": "r", "actions": LABEL}),
        ("PATCH", f"{RULES}/{rule['id']}", {"enabled": False}),
        ("DELETE", f"{RULES}/{rule['id']}", None),
        ("PATCH", f"{POLICIES}/{policy['id']}", {"enabled": False}),
        ("PUT", f"/api/v1/agents/{agent.user.id}/capacity", {"max_open": 3}),
    ]
    for method, url, body in writes:
        for user in (manager, agent):
            assert (await call(client, user, method, url, body))[0] == 403, (method, url)
    # Malformed and unknown ids.
    assert (await call(client, admin, "GET", f"{RULES}/not-a-uuid"))[0] == 404
    assert (await call(client, admin, "PATCH", f"{RULES}/{uuid.uuid4()}", {"enabled": 1}))[0] == 404
    status, body = await call(client, admin, "PATCH", f"{RULES}/{rule['id']}", {"name": None})
    assert status == 422 and "name" in body["error"]["fields"]
    response = await client.post(RULES, data=b"{not json", headers=admin.headers)
    assert response.status == 400


async def test_assignment_policies_pool_and_capacity(
    client: Client, admin: ApiUser, agent: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    channel = await rows.channel("sms")
    await rows.member(agent.user, channel)
    team = await make_team(sessions)
    status, policy = await call(
        client, admin, "POST", POLICIES, {"channel_id": str(channel.id), "default_capacity": 2}
    )
    assert status == 201 and policy["default_capacity"] == 2 and policy["team_id"] is None
    assert (await call(client, admin, "POST", POLICIES, {"channel_id": str(channel.id)}))[0] == 409
    status, by_team = await call(client, admin, "POST", POLICIES, {"team_id": str(team)})
    assert status == 201
    for body, field in [
        ({}, "body"),
        ({"channel_id": str(channel.id), "team_id": str(team)}, "body"),
        ({"channel_id": str(uuid.uuid4())}, "channel_id"),
        ({"team_id": str(uuid.uuid4())}, "team_id"),
        ({"channel_id": str(channel.id), "default_capacity": -1}, "default_capacity"),
    ]:
        status, answer = await call(client, admin, "POST", POLICIES, body)
        assert status == 422 and field in answer["error"]["fields"], (body, answer)

    async with sessions() as session, session.begin():
        await presence.connect(
            session, connection_id=uuid.uuid4(), user_id=agent.user.id, status="online", process="t"
        )
    status, pool = await call(client, admin, "GET", f"{POLICIES}/{policy['id']}/agents")
    assert status == 200
    assert [(a["user_id"], a["online"], a["capacity"]) for a in pool["items"]] == [
        (str(agent.user.id), True, 2)
    ]

    capacity = f"/api/v1/agents/{agent.user.id}/capacity"
    status, own = await call(client, admin, "GET", capacity)
    assert (status, own["own"], own["max_open"], own["open_conversations"]) == (200, False, None, 0)
    status, own = await call(client, admin, "PUT", capacity, {"max_open": 5})
    assert (status, own["own"], own["max_open"]) == (200, True, 5)
    status, own = await call(client, admin, "PUT", capacity, {"max_open": None})  # unlimited
    assert (status, own["own"], own["max_open"]) == (200, True, None)
    status, pool = await call(client, admin, "GET", f"{POLICIES}/{policy['id']}/agents")
    assert pool["items"][0]["capacity"] is None
    for body in ({}, {"max_open": -1}, {"max_open": 10_001}, {"max_open": "3"}, {"x": 1}):
        assert (await call(client, admin, "PUT", capacity, body))[0] == 422, body
    status, own = await call(client, admin, "DELETE", capacity)
    assert (status, own["own"]) == (200, False)
    unknown = f"/api/v1/agents/{uuid.uuid4()}/capacity"
    assert (await call(client, admin, "PUT", unknown, {"max_open": 1}))[0] == 404
    assert (await call(client, admin, "GET", unknown))[0] == 404

    status, patched = await call(
        client, admin, "PATCH", f"{POLICIES}/{policy['id']}", {"default_capacity": None}
    )
    assert (status, patched["default_capacity"], patched["enabled"]) == (200, None, True)
    status, patched = await call(
        client, admin, "PATCH", f"{POLICIES}/{policy['id']}", {"enabled": False}
    )
    assert (status, patched["enabled"], patched["default_capacity"]) == (200, False, None)
    status, page = await call(client, admin, "GET", POLICIES)
    assert [p["id"] for p in page["items"]] == [policy["id"], by_team["id"]]
    assert (await call(client, admin, "DELETE", f"{POLICIES}/{by_team['id']}"))[0] == 204
    assert (await call(client, admin, "GET", f"{POLICIES}/{by_team['id']}"))[0] == 404
