"""Custom attribute definitions over the REST API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from inbox.models import Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory

BASE = "/api/v1/attributes"


async def post(client: Client, user: ApiUser, body: Any, status: int = 201) -> Any:
    response = await client.post(BASE, json=body, headers=user.headers)
    assert response.status == status, await response.text()
    return await response.json()


async def patch_contact(client: Client, user: ApiUser, contact_id: object, body: Any) -> Any:
    response = await client.patch(f"/api/v1/contacts/{contact_id}", json=body, headers=user.headers)
    return response.status, await response.json()


@pytest.fixture
async def manager(sessions: SessionFactory) -> ApiUser:
    return await make_api_user(sessions, Role.MANAGER)


async def test_define_list_change_delete(client: Client, admin: ApiUser, agent: ApiUser) -> None:
    created = await post(
        client, admin, {"key": "plan", "label": " Plan ", "type": "select", "options": ["a", "b"]}
    )
    assert created["key"] == "plan"
    assert created["label"] == "Plan"
    assert created["type"] == "select"
    assert created["options"] == ["a", "b"]
    await post(client, admin, {"key": "seats", "label": "Seats", "type": "number"})

    response = await client.get(BASE, headers=agent.headers)  # everyone may read them
    page = await response.json()
    assert [item["key"] for item in page["items"]] == ["plan", "seats"]
    assert page["next_cursor"] is None

    response = await client.patch(
        f"{BASE}/plan",
        json={"label": "Pricing plan", "options": ["a", "b", "c"]},
        headers=admin.headers,
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["options"] == ["a", "b", "c"]

    response = await client.delete(f"{BASE}/plan", headers=admin.headers)
    assert response.status == 204
    response = await client.delete(f"{BASE}/plan", headers=admin.headers)
    assert response.status == 404
    page = await (await client.get(BASE, headers=agent.headers)).json()
    assert [item["key"] for item in page["items"]] == ["seats"]


async def test_managers_may_define_agents_may_not(
    client: Client, manager: ApiUser, agent: ApiUser
) -> None:
    await post(client, manager, {"key": "tier", "label": "Tier", "type": "text"})
    body = await post(client, agent, {"key": "x", "label": "X", "type": "text"}, status=403)
    assert body["error"]["code"] == "forbidden"
    for method in ("patch", "delete"):
        response = await getattr(client, method)(
            f"{BASE}/tier",
            headers=agent.headers,
            **({"json": {"label": "Y"}} if method == "patch" else {}),
        )
        assert response.status == 403


async def test_duplicate_key_is_409(client: Client, admin: ApiUser) -> None:
    await post(client, admin, {"key": "plan", "label": "Plan", "type": "text"})
    body = await post(client, admin, {"key": "plan", "label": "Plan", "type": "number"}, status=409)
    assert body["error"]["code"] == "conflict"
    assert "already defined" in body["error"]["message"]


async def test_concurrent_creates_of_one_key_make_one(client: Client, admin: ApiUser) -> None:
    responses = await asyncio.gather(
        *(
            client.post(
                BASE, json={"key": "plan", "label": f"P{n}", "type": "text"}, headers=admin.headers
            )
            for n in range(4)
        )
    )
    assert sorted(response.status for response in responses) == [201, 409, 409, 409]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "Plan", "label": "P", "type": "text"}, "key"),
        ({"key": "1plan", "label": "P", "type": "text"}, "key"),
        ({"key": "p" * 65, "label": "P", "type": "text"}, "key"),
        ({"key": "plan", "label": "", "type": "text"}, "label"),
        ({"key": "plan", "label": "P\x00", "type": "text"}, "label"),
        ({"key": "plan", "label": "P", "type": "json"}, "type"),
        ({"key": "plan", "label": "P", "type": "select"}, "options"),
        ({"key": "plan", "label": "P", "type": "select", "options": ["a", "a"]}, "options"),
        ({"key": "plan", "label": "P", "type": "text", "options": ["a"]}, "options"),
        ({"key": "plan", "label": "P", "type": "text", "extra": 1}, "extra"),
    ],
)
# Refused by the API's own checks; one database is enough (on SQLite, which stores what
# PostgreSQL would refuse, a missing check shows as a stored value instead of a 422).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_definitions_are_422(
    client: Client, admin: ApiUser, body: dict[str, Any], field: str
) -> None:
    error = (await post(client, admin, body, status=422))["error"]
    assert field in error["fields"], error


async def test_type_change_with_values_is_409_and_without_is_fine(
    client: Client, admin: ApiUser, rows: Rows
) -> None:
    await post(client, admin, {"key": "seats", "label": "Seats", "type": "text"})
    contact = await rows.contact("Ann")
    status, _ = await patch_contact(client, admin, contact.id, {"attributes": {"seats": "3"}})
    assert status == 200
    response = await client.patch(f"{BASE}/seats", json={"type": "number"}, headers=admin.headers)
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "conflict"
    assert "hold values" in error["message"]

    status, _ = await patch_contact(client, admin, contact.id, {"attributes": {"seats": None}})
    assert status == 200
    response = await client.patch(f"{BASE}/seats", json={"type": "number"}, headers=admin.headers)
    assert response.status == 200
    assert (await response.json())["type"] == "number"


async def test_delete_removes_values_from_contacts(
    client: Client, admin: ApiUser, rows: Rows
) -> None:
    await post(client, admin, {"key": "vip", "label": "VIP", "type": "boolean"})
    contact = await rows.contact("Ann")
    status, body = await patch_contact(client, admin, contact.id, {"attributes": {"vip": True}})
    assert (status, body["attributes"]) == (200, {"vip": True})
    assert (await client.delete(f"{BASE}/vip", headers=admin.headers)).status == 204
    response = await client.get(f"/api/v1/contacts/{contact.id}", headers=admin.headers)
    assert (await response.json())["attributes"] == {}


@pytest.mark.parametrize("key", ["UPPER", "no-dash", "x" * 70, "%00"])
async def test_malformed_path_keys_are_404(client: Client, admin: ApiUser, key: str) -> None:
    response = await client.patch(f"{BASE}/{key}", json={"label": "x"}, headers=admin.headers)
    assert response.status == 404


async def test_requires_a_token(client: Client) -> None:
    assert (await client.get(BASE)).status == 401
