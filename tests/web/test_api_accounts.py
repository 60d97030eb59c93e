"""The accounts API: users (admins), API tokens (admins and their owners), teams, and
channel membership deciding what an agent sees; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from inbox.models import Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory

API = "/api/v1"


async def call(
    client: Client, user: ApiUser | None, method: str, path: str, expect: int, json: Any = None
) -> Any:
    headers = user.headers if user else {}
    response = await client.request(method, API + path, json=json, headers=headers)
    assert response.status == expect, await response.text()
    return await response.json() if response.content_type == "application/json" else None


async def test_admins_manage_users_who_are_never_deleted(
    client: Client, admin: ApiUser, agent: ApiUser
) -> None:
    body = {"email": "Zoe@Example.com", "password": "long enough pw", "role": "manager"}
    created = await call(client, admin, "POST", "/users", 201, body)
    assert created["email"] == "zoe@example.com" and created["role"] == "manager"
    assert "password" not in created and "password_hash" not in created
    await call(client, admin, "POST", "/users", 409, body | {"email": "ZOE@example.com"})
    await call(client, agent, "POST", "/users", 403, body | {"email": "x@example.com"})
    listed = await call(client, agent, "GET", "/users", 200)  # agents see their colleagues
    assert created["id"] in [u["id"] for u in listed["items"]]

    path = f"/users/{created['id']}"
    changed = await call(client, admin, "PATCH", path, 200, {"name": "Zoe Q", "role": "agent"})
    assert (changed["name"], changed["role"]) == ("Zoe Q", "agent")
    await call(client, agent, "PATCH", path, 403, {"name": "Hacked"})
    await call(client, admin, "PATCH", f"/users/{uuid.uuid4()}", 404, {"name": "Nobody"})
    await call(client, admin, "PATCH", path, 409, {"email": admin.user.email})
    assert (await call(client, admin, "GET", path, 200))["name"] == "Zoe Q"
    # The last active admin can be neither demoted nor deactivated.
    me = f"/users/{admin.user.id}"
    await call(client, admin, "PATCH", me, 409, {"role": "agent"})
    await call(client, admin, "PATCH", me, 409, {"is_active": False})
    await call(client, admin, "PATCH", path, 200, {"role": "admin"})
    await call(client, admin, "PATCH", me, 200, {"role": "manager"})
    await call(client, admin, "DELETE", path, 405)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_user_input_is_422_naming_the_field(client: Client, admin: ApiUser) -> None:
    good: dict[str, object] = {"email": "ok@example.com", "password": "long enough pw"}
    bad: list[tuple[dict[str, object], str]] = [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a\x00@example.com"}, "email"),
        ({"email": "a" * 400 + "@example.com"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "x" * 1025}, "password"),
        ({"role": "root"}, "role"),
        ({"name": "Eve\x07"}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"name": 42}, "name"),
        ({"is_admin": True}, "is_admin"),
    ]
    for change, field in bad:
        answer = await call(client, admin, "POST", "/users", 422, good | change)
        assert field in answer["error"]["fields"], (change, answer)
    answer = await call(client, admin, "PATCH", f"/users/{admin.user.id}", 422, {"email": "nope"})
    assert "email" in answer["error"]["fields"]


async def test_tokens_are_listed_created_and_revoked_by_their_owner_or_an_admin(
    client: Client, admin: ApiUser, agent: ApiUser, sessions: SessionFactory
) -> None:
    mine = f"/users/{agent.user.id}/tokens"
    made = await call(client, agent, "POST", mine, 201, {"name": "laptop"})
    assert made["token"].startswith("sb_") and made["name"] == "laptop"
    fresh = ApiUser(agent.user, made["token"])
    await call(client, fresh, "GET", "/session", 200)
    listed = await call(client, agent, "GET", mine, 200)
    by_id = {t["id"]: t for t in listed["items"]}
    assert set(by_id) >= {made["id"]} and "token" not in by_id[made["id"]]
    assert by_id[made["id"]]["last_used_at"] is not None  # it was just used
    other = await make_api_user(sessions, Role.AGENT)
    await call(client, other, "GET", mine, 403)
    await call(client, other, "DELETE", f"{mine}/{made['id']}", 403)
    # A token id of another user's is unknown here.
    await call(client, admin, "DELETE", f"/users/{other.user.id}/tokens/{made['id']}", 404)
    await call(client, admin, "GET", mine, 200)
    await call(client, agent, "DELETE", f"{mine}/{made['id']}", 204)
    await call(client, fresh, "GET", "/session", 401)  # revoked: stops working at once
    await call(client, agent, "DELETE", f"{mine}/{made['id']}", 404)
    await call(client, admin, "GET", f"/users/{uuid.uuid4()}/tokens", 404)


async def test_channel_membership_directly_and_through_teams_decides_what_agents_see(
    client: Client, admin: ApiUser, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    sales, support = await rows.channel(name="Sales"), await rows.channel(name="Support")
    ann = await rows.contact("Ann")
    bob = await rows.contact("Bob")
    in_sales = await rows.conversation(ann, sales)
    in_support = await rows.conversation(bob, support)

    async def seen() -> tuple[set[str], set[str], set[str]]:
        conversations = await call(client, agent, "GET", "/conversations", 200)
        contacts = await call(client, agent, "GET", "/contacts", 200)
        channels = await call(client, agent, "GET", "/channels", 200)
        return (
            {c["id"] for c in conversations["items"]},
            {c["id"] for c in contacts["items"]},
            {c["id"] for c in channels["items"]},
        )

    assert await seen() == (set(), set(), set())
    await call(client, agent, "GET", f"/conversations/{in_sales.id}", 404)

    members = f"/channels/{sales.id}/members"
    put = await call(client, admin, "PUT", members, 200, {"user_ids": [str(agent.user.id)]})
    assert put == {"channel_id": str(sales.id), "user_ids": [str(agent.user.id)], "team_ids": []}
    assert await seen() == ({str(in_sales.id)}, {str(ann.id)}, {str(sales.id)})
    await call(client, agent, "GET", f"/contacts/{bob.id}", 404)

    # Through a team: the agent joins Support with the team.
    team = await call(
        client,
        admin,
        "POST",
        "/teams",
        201,
        {"name": "Second line", "member_ids": [str(agent.user.id)]},
    )
    await call(client, admin, "POST", "/teams", 409, {"name": "Second line"})
    await call(
        client, admin, "PUT", f"/channels/{support.id}/members", 200, {"team_ids": [team["id"]]}
    )
    assert (await seen())[0] == {str(in_sales.id), str(in_support.id)}
    theirs = await call(client, agent, "GET", f"/users/{agent.user.id}/channels", 200)
    assert [(c["name"], c["direct"], c["team_ids"]) for c in theirs["items"]] == [
        ("Sales", True, []),
        ("Support", False, [team["id"]]),
    ]
    shown = await call(client, agent, "GET", f"/teams/{team['id']}", 200)
    assert shown["member_ids"] == [str(agent.user.id)] and shown["channel_ids"] == [str(support.id)]

    # Leaving the team (or the team going) takes the channel away at once.
    await call(client, admin, "PATCH", f"/teams/{team['id']}", 200, {"member_ids": []})
    assert (await seen())[0] == {str(in_sales.id)}
    await call(
        client, admin, "PATCH", f"/teams/{team['id']}", 200, {"member_ids": [str(agent.user.id)]}
    )
    await call(client, admin, "DELETE", f"/teams/{team['id']}", 204)
    await call(client, admin, "DELETE", f"/teams/{team['id']}", 404)
    assert (await seen())[0] == {str(in_sales.id)}
    await call(client, admin, "PUT", members, 200, {})
    assert await seen() == (set(), set(), set())

    # Unknown ids are named; nothing changes.
    unknown = str(uuid.uuid4())
    answer = await call(client, admin, "PUT", members, 422, {"user_ids": [unknown]})
    assert unknown in answer["error"]["fields"]["user_ids"]
    await call(client, admin, "PUT", members, 422, {"team_ids": [unknown]})
    await call(client, admin, "PUT", f"/channels/{uuid.uuid4()}/members", 404, {})
    await call(client, admin, "POST", "/teams", 422, {"name": "T", "member_ids": [unknown]})
    assert (await call(client, admin, "GET", members, 200))["user_ids"] == []
    # Managers see every channel without being members.
    manager = await make_api_user(sessions, Role.MANAGER)
    assert len((await call(client, manager, "GET", "/conversations", 200))["items"]) == 2
