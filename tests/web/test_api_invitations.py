"""Invitations: an admin invites someone, who sets a password once through an expiring
link; inviting again replaces the link; and setting the channels a user works directly.
On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from inbox.account_models import ChannelTeam, Invitation
from inbox.models import Role, User
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory
from timeline.models import utcnow

API = "/api/v1"
PASSWORD = "a long enough password"


async def call(
    client: Client, user: ApiUser | None, method: str, path: str, expect: int, json: Any = None
) -> Any:
    headers = user.headers if user else {}
    response = await client.request(method, API + path, json=json, headers=headers)
    assert response.status == expect, await response.text()
    return await response.json() if response.content_type == "application/json" else None


async def sign_in(client: Client, email: str, password: str) -> int:
    response = await client.post(f"{API}/session", json={"email": email, "password": password})
    return response.status


async def test_an_invitation_sets_the_password_once(
    client: Client, admin: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    sales = await rows.channel(name="Sales")
    body = {
        "email": " Nina@Example.com ",
        "name": "Nina",
        "role": "agent",
        "channel_ids": [str(sales.id)],
    }
    created = await call(client, admin, "POST", "/invitations", 201, body)
    user, token, url = created["user"], created["token"], created["url"]
    assert (user["email"], user["name"], user["role"]) == ("nina@example.com", "Nina", "agent")
    assert token.startswith("inv_")
    assert url.startswith("http") and url.endswith(f"/invitations/{token}")
    invitation = created["invitation"]
    assert invitation["user_id"] == user["id"] and invitation["created_by"] == str(admin.user.id)
    assert invitation["expired"] is False
    lifetime = datetime.fromisoformat(invitation["expires_at"]) - datetime.fromisoformat(
        invitation["created_at"]
    )
    assert lifetime == timedelta(days=7)
    # Only a hash of the token is stored, and the invitee cannot sign in yet.
    async with sessions() as session:
        row = await session.scalar(
            select(Invitation).where(Invitation.user_id == uuid.UUID(user["id"]))
        )
        stored = await session.get(User, uuid.UUID(user["id"]))
    assert row is not None and stored is not None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored.password_hash
    assert await sign_in(client, "nina@example.com", "") == 401
    channels = await call(client, admin, "GET", f"/users/{user['id']}/channels", 200)
    assert [c["id"] for c in channels["items"]] == [str(sales.id)]
    listed = await call(client, admin, "GET", "/invitations", 200)
    assert [i["user_id"] for i in listed["items"]] == [user["id"]]

    accept = {"token": token, "password": PASSWORD}
    answer = await call(
        client, None, "POST", "/invitations/accept", 422, accept | {"password": "short"}
    )
    assert "password" in answer["error"]["fields"]
    accepted = await call(client, None, "POST", "/invitations/accept", 200, accept)
    assert accepted["id"] == user["id"]
    assert await sign_in(client, "nina@example.com", PASSWORD) == 200
    # Once only; and then they are no longer invited.
    used = await call(client, None, "POST", "/invitations/accept", 410, accept)
    assert used["error"]["code"] == "invitation_used"
    assert (await call(client, admin, "GET", "/invitations", 200))["items"] == []
    await call(client, admin, "POST", "/invitations", 409, body)
    await call(client, admin, "POST", f"/users/{user['id']}/invitation", 409)
    page = await client.get(f"/invitations/{token}")
    assert page.status == 410 and "This invitation has been used" in await page.text()


async def test_inviting_again_replaces_the_link_and_links_expire(
    client: Client, admin: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    sales, support = await rows.channel(name="Sales"), await rows.channel(name="Support")
    body = {"email": "omid@example.com", "channel_ids": [str(sales.id)]}
    first = await call(client, admin, "POST", "/invitations", 201, body)
    user_id = first["user"]["id"]
    assert first["user"]["role"] == "agent" and first["user"]["name"] is None
    page = await client.get(f"/invitations/{first['token']}")
    assert page.status == 200 and "omid@example.com" in await page.text()

    # The same email again: new details, a new link; the first stops working.
    again = body | {"name": "Omid", "role": "manager", "channel_ids": [str(support.id)]}
    second = await call(client, admin, "POST", "/invitations", 201, again)
    assert second["user"]["id"] == user_id and second["token"] != first["token"]
    assert (second["user"]["name"], second["user"]["role"]) == ("Omid", "manager")
    channels = await call(client, admin, "GET", f"/users/{user_id}/channels", 200)
    assert [c["id"] for c in channels["items"]] == [str(support.id)]
    replaced = {"token": first["token"], "password": PASSWORD}
    answer = await call(client, None, "POST", "/invitations/accept", 410, replaced)
    assert answer["error"]["code"] == "invitation_replaced"

    # A new link for the same user, from the agents table.
    third = await call(client, admin, "POST", f"/users/{user_id}/invitation", 201)
    answer = await call(
        client,
        None,
        "POST",
        "/invitations/accept",
        410,
        {"token": second["token"], "password": PASSWORD},
    )
    assert answer["error"]["code"] == "invitation_replaced"
    listed = await call(client, admin, "GET", "/invitations", 200)
    assert [i["id"] for i in listed["items"]] == [third["invitation"]["id"]]

    # Past its end, the link says so (and the invitee is still listed, as expired).
    async with sessions() as session, session.begin():
        await session.execute(
            update(Invitation)
            .where(Invitation.id == uuid.UUID(third["invitation"]["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = {"token": third["token"], "password": PASSWORD}
    answer = await call(client, None, "POST", "/invitations/accept", 410, expired)
    assert answer["error"]["code"] == "invitation_expired"
    assert (await call(client, admin, "GET", "/invitations", 200))["items"][0]["expired"] is True
    page = await client.get(f"/invitations/{third['token']}")
    assert page.status == 410 and "This invitation has expired" in await page.text()

    # A deactivated invitee's link does not work either.
    fourth = await call(client, admin, "POST", f"/users/{user_id}/invitation", 201)
    await call(client, admin, "PATCH", f"/users/{user_id}", 200, {"is_active": False})
    inactive = {"token": fourth["token"], "password": PASSWORD}
    answer = await call(client, None, "POST", "/invitations/accept", 410, inactive)
    assert answer["error"]["code"] == "invitation_inactive"

    # Tokens never issued are unknown, whatever they look like.
    for token in ("inv_" + "x" * 43, "sb_whatever", "inv_" + "y" * 90):
        await call(
            client, None, "POST", "/invitations/accept", 404, {"token": token, "password": PASSWORD}
        )
    page = await client.get("/invitations/inv_nothing")
    assert page.status == 404 and "This invitation link does not work" in await page.text()


async def test_two_uses_of_one_link_at_once_set_one_password(
    client: Client, admin: ApiUser
) -> None:
    created = await call(client, admin, "POST", "/invitations", 201, {"email": "pat@example.com"})
    attempts = [
        client.post(f"{API}/invitations/accept", json={"token": created["token"], "password": p})
        for p in ("first password", "second password")
    ]
    statuses = sorted(r.status for r in await asyncio.gather(*attempts))
    assert statuses == [200, 410]
    outcomes = [
        await sign_in(client, "pat@example.com", p) for p in ("first password", "second password")
    ]
    assert sorted(outcomes) == [200, 401]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_only_admins_invite_and_bad_input_is_422(
    client: Client, admin: ApiUser, agent: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    manager = await make_api_user(sessions, Role.MANAGER)
    good = {"email": "new@example.com"}
    for caller in (manager, agent):
        await call(client, caller, "POST", "/invitations", 403, good)
        await call(client, caller, "GET", "/invitations", 403)
        await call(client, caller, "POST", f"/users/{agent.user.id}/invitation", 403)
        await call(
            client, caller, "PUT", f"/users/{agent.user.id}/channels", 403, {"channel_ids": []}
        )
    await call(client, None, "POST", "/invitations", 401, good)
    await call(client, admin, "POST", f"/users/{uuid.uuid4()}/invitation", 404)

    bad: list[tuple[dict[str, object], str]] = [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a" * 400 + "@example.com"}, "email"),
        ({"email": "nul\x00@example.com"}, "email"),
        ({"role": "root"}, "role"),
        ({"name": "n" * 201}, "name"),
        ({"name": "  "}, "name"),
        ({"channel_ids": [str(uuid.uuid4())]}, "channel_ids"),
        ({"channel_ids": ["not-a-uuid"]}, "channel_ids.0"),
        ({"password": "x" * 10}, "password"),
    ]
    for change, field in bad:
        answer = await call(client, admin, "POST", "/invitations", 422, good | change)
        assert field in answer["error"]["fields"], (change, answer)
    assert (await call(client, admin, "GET", "/invitations", 200))["items"] == []
    # An existing user who was not invited cannot be invited again.
    await call(client, admin, "POST", "/invitations", 409, {"email": agent.user.email})

    accept_bad: list[tuple[dict[str, object], str]] = [
        ({"token": "inv_" + "x" * 200}, "token"),
        ({"password": "x" * 1025}, "password"),
        ({"password": "short"}, "password"),
        ({"extra": True}, "extra"),
    ]
    base = {"token": "inv_abc", "password": PASSWORD}
    for change, field in accept_bad:
        answer = await call(client, None, "POST", "/invitations/accept", 422, base | change)
        assert field in answer["error"]["fields"], (change, answer)


async def test_the_channels_a_user_works_directly_are_set_in_one_call(
    client: Client, admin: ApiUser, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    sales, support, billing = [await rows.channel(name=n) for n in ("Sales", "Support", "Billing")]
    team = await call(
        client,
        admin,
        "POST",
        "/teams",
        201,
        {"name": "Billing team", "member_ids": [str(agent.user.id)]},
    )
    async with sessions() as session, session.begin():
        session.add(ChannelTeam(channel_id=billing.id, team_id=uuid.UUID(team["id"])))
    path = f"/users/{agent.user.id}/channels"
    both = {"channel_ids": [str(sales.id), str(support.id)]}
    answer = await call(client, admin, "PUT", path, 200, both)
    by_id = {c["id"]: c for c in answer["items"]}
    assert set(by_id) == {str(sales.id), str(support.id), str(billing.id)}
    assert by_id[str(billing.id)]["direct"] is False and by_id[str(sales.id)]["direct"] is True
    members = await call(client, admin, "GET", f"/channels/{sales.id}/members", 200)
    assert members["user_ids"] == [str(agent.user.id)]

    answer = await call(client, admin, "PUT", path, 200, {"channel_ids": [str(support.id)]})
    assert {c["id"] for c in answer["items"]} == {str(support.id), str(billing.id)}
    members = await call(client, admin, "GET", f"/channels/{sales.id}/members", 200)
    assert members["user_ids"] == []
    answer = await call(client, admin, "PUT", path, 422, {"channel_ids": [str(uuid.uuid4())]})
    assert "channel_ids" in answer["error"]["fields"]
    await call(client, admin, "PUT", path, 422, {"channel_ids": ["x"] * 1001})
    await call(client, admin, "PUT", f"/users/{uuid.uuid4()}/channels", 404, {"channel_ids": []})
    # What the agent sees follows at once.
    seen = await call(client, agent, "GET", "/channels", 200)
    assert {c["id"] for c in seen["items"]} == {str(support.id), str(billing.id)}
