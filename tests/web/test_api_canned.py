"""Canned responses over the REST API: who may write and use each scope, listing with
search and paging, rendering for a conversation, and replies made from one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp import ClientResponse

from inbox.account_models import Team, TeamMember
from inbox.models import Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory

BASE = "/api/v1/canned-responses"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _team(sessions: SessionFactory, *members: ApiUser) -> uuid.UUID:
    team = Team(name=f"team {uuid.uuid4().hex[:6]}")
    async with sessions() as session, session.begin():
        session.add(team)
        await session.flush()
        session.add_all(TeamMember(team_id=team.id, user_id=m.user.id) for m in members)
    return team.id


async def _post(client: Client, user: ApiUser, body: dict[str, Any]) -> ClientResponse:
    return await client.post(BASE, json=body, headers=user.headers)


async def _created(client: Client, user: ApiUser, body: dict[str, Any]) -> dict[str, Any]:
    response = await _post(client, user, {"title": "A title", "text": "Hello", **body})
    assert response.status == 201, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def _codes(client: Client, user: ApiUser, query: str = "") -> list[str]:
    response = await client.get(f"{BASE}?{query}", headers=user.headers)
    assert response.status == 200, await response.text()
    return [f"{item['short_code']}/{item['scope']}" for item in (await response.json())["items"]]


async def test_scopes_over_the_api(
    client: Client, sessions: SessionFactory, admin: ApiUser
) -> None:
    manager = await make_api_user(sessions, Role.MANAGER)
    member = await make_api_user(sessions, Role.AGENT)
    other = await make_api_user(sessions, Role.AGENT)
    team_id = str(await _team(sessions, member))

    glob = await _created(client, manager, {"scope": "global", "short_code": " Refund "})
    assert glob["short_code"] == "refund" and glob["owner_id"] is None and glob["can_edit"]
    team = await _created(
        client, member, {"scope": "team", "team_id": team_id, "short_code": "escalate"}
    )
    mine = await _created(client, member, {"short_code": "refund"})  # personal by default
    assert (mine["scope"], mine["owner_id"]) == ("personal", str(member.user.id))

    # Agents write neither global responses nor other teams'.
    refused = await _post(
        client, other, {"scope": "global", "short_code": "x", "title": "t", "text": "t"}
    )
    assert refused.status == 403
    theirs = {"scope": "team", "team_id": team_id, "short_code": "y", "title": "t", "text": "t"}
    assert (await _post(client, other, theirs)).status == 403
    taken = await _post(
        client, admin, {"scope": "global", "short_code": "REFUND", "title": "t", "text": "t"}
    )
    assert taken.status == 409
    assert list((await taken.json())["error"]["fields"]) == ["short_code"]

    assert await _codes(client, member) == ["escalate/team", "refund/global", "refund/personal"]
    assert await _codes(client, other) == ["refund/global"]
    assert await _codes(client, admin) == ["escalate/team", "refund/global"]

    # Someone else's personal response does not exist for them, whatever their role.
    for user in (admin, other):
        response = await client.get(f"{BASE}/{mine['id']}", headers=user.headers)
        assert response.status == 404
    # A response one may use but not write: 403 to change or delete.
    listed = await client.get(f"{BASE}/{glob['id']}", headers=member.headers)
    assert (await listed.json())["can_edit"] is False
    patch = await client.patch(f"{BASE}/{glob['id']}", json={"title": "x"}, headers=member.headers)
    assert patch.status == 403
    assert (await client.delete(f"{BASE}/{glob['id']}", headers=member.headers)).status == 403
    # The team's members change their team's responses; the team's outsiders cannot see it.
    changed = await client.patch(
        f"{BASE}/{team['id']}",
        json={"title": "Escalate to L2", "short_code": "l2"},
        headers=member.headers,
    )
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["short_code"] == "l2"
    assert (await client.get(f"{BASE}/{team['id']}", headers=other.headers)).status == 404
    assert (await client.delete(f"{BASE}/{team['id']}", headers=member.headers)).status == 204
    assert (await client.get(f"{BASE}/{team['id']}", headers=member.headers)).status == 404


async def test_search_and_paging(client: Client, sessions: SessionFactory, admin: ApiUser) -> None:
    titles = {
        "refund": "Rückerstattung bestätigt",
        "refund-eu": "Refund within the EU",
        "shipping": "Where is my parcel?",
        "hello": "Greeting",
    }
    for code, title in titles.items():
        await _created(client, admin, {"scope": "global", "short_code": code, "title": title})
    await _created(
        client, admin, {"scope": "global", "short_code": "promo", "title": "Discount 100%_off"}
    )

    assert await _codes(client, admin, "q=REFUND") == ["refund/global", "refund-eu/global"]
    # Case folding beyond ASCII, on both databases.
    assert await _codes(client, admin, "q=R%C3%9CCKERSTATTUNG") == ["refund/global"]
    # LIKE wildcards are searched for, not obeyed.
    assert await _codes(client, admin, "q=100%25_") == ["promo/global"]
    assert await _codes(client, admin, "q=_") == ["promo/global"]
    assert await _codes(client, admin, "q=nothing") == []

    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(f"{BASE}?{query}", headers=admin.headers)).json()
        seen += [item["short_code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["hello", "promo", "refund", "refund-eu", "shipping"]


async def test_render_and_reply_with_a_canned_response(
    client: Client, sessions: SessionFactory, agent: ApiUser, rows: Rows
) -> None:
    async with sessions() as session, session.begin():
        user = await session.get(type(agent.user), agent.user.id)
        assert user is not None
        user.name = "Bob Stone"
    channel = await rows.home()
    contact = await rows.contact("Ann Lee", [("email", "ann@example.com")])
    conversation = await rows.conversation(contact, channel)
    hidden = await rows.conversation(contact, await rows.channel())  # not the agent's channel
    text = "Hi {{contact.first_name | there}} ({{contact.email}}), {{agent.first_name}} here."
    canned = await _created(client, agent, {"short_code": "hi", "text": text})
    expected = "Hi Ann (ann@example.com), Bob here."

    path = f"{BASE}/{canned['id']}/render"
    response = await client.post(
        path, json={"conversation_id": str(conversation.id)}, headers=agent.headers
    )
    assert response.status == 200, await response.text()
    assert await response.json() == {"text": expected}
    for conversation_id in (hidden.id, uuid.uuid4()):
        response = await client.post(
            path, json={"conversation_id": str(conversation_id)}, headers=agent.headers
        )
        assert response.status == 404

    messages = f"/api/v1/conversations/{conversation.id}/messages"
    note = await client.post(
        messages, json={"canned_response_id": canned["id"], "private": True}, headers=agent.headers
    )
    assert note.status == 201, await note.text()
    assert (await note.json())["text"] == expected

    both = await client.post(
        messages, json={"canned_response_id": canned["id"], "text": "hi"}, headers=agent.headers
    )
    assert both.status == 422
    assert list((await both.json())["error"]["fields"]) == ["canned_response_id"]
    neither = await client.post(messages, json={"private": True}, headers=agent.headers)
    assert neither.status == 422
    assert list((await neither.json())["error"]["fields"]) == ["text"]
    # Another user's personal response is no canned response at all for this one.
    other = await make_api_user(sessions, Role.ADMIN)
    refused = await client.post(
        messages, json={"canned_response_id": canned["id"], "private": True}, headers=other.headers
    )
    assert refused.status == 422
    assert (await refused.json())["error"]["fields"] == {
        "canned_response_id": "no such canned response"
    }


async def test_a_canned_reply_is_checked_against_its_channel(
    client: Client, agent: ApiUser, agent_rows: Rows
) -> None:
    conversation = await agent_rows.conversation(
        await agent_rows.contact(None, [("phone", "+14155550100")]), await agent_rows.channel("sms")
    )
    messages = f"/api/v1/conversations/{conversation.id}/messages"
    empty = await _created(client, agent, {"short_code": "name", "text": "{{contact.first_name}}"})
    long = await _created(client, agent, {"short_code": "long", "text": "x" * 1601})
    response = await client.post(
        messages, json={"canned_response_id": empty["id"]}, headers=agent.headers
    )
    assert response.status == 422
    assert (await response.json())["error"]["fields"] == {
        "canned_response_id": "renders to nothing for this conversation"
    }
    response = await client.post(
        messages, json={"canned_response_id": long["id"]}, headers=agent.headers
    )
    assert response.status == 422
    assert list((await response.json())["error"]["fields"]) == ["canned_response_id"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"short_code": "x", "title": "t", "text": "Hi {{contact.frist_name}}"}, "text"),
        ({"short_code": "two words", "title": "t", "text": "t"}, "short_code"),
        ({"short_code": "x" * 51, "title": "t", "text": "t"}, "short_code"),
        ({"short_code": "x", "title": "a\nb", "text": "t"}, "title"),
        ({"short_code": "x", "title": "t" * 201, "text": "t"}, "title"),
        ({"short_code": "x", "title": "t", "text": "nul \u0000"}, "text"),
        ({"short_code": "x", "title": "t", "text": "half \ud800"}, "text"),
        ({"short_code": "x", "title": "t", "text": "   "}, "text"),
        ({"short_code": "x", "title": "t", "text": "t" * 20_001}, "text"),
        ({"short_code": "x", "title": "t", "text": "t", "scope": "everyone"}, "scope"),
        ({"short_code": "x", "title": "t", "text": "t", "scope": "team"}, "team_id"),
        ({"short_code": "x", "title": "t", "text": "t", "team_id": "nope"}, "team_id"),
        ({"short_code": 5, "title": "t", "text": "t"}, "short_code"),
        ({"short_code": "x", "title": "t", "text": "t", "owner_id": None}, "owner_id"),
    ],
)
async def test_hostile_inputs_are_422_naming_the_field(
    client: Client, admin: ApiUser, body: dict[str, Any], field: str
) -> None:
    response = await _post(client, admin, body)
    assert response.status == 422, await response.text()
    fields = (await response.json())["error"]["fields"]
    assert list(fields) == [field]
    if field == "text" and "frist" in body["text"]:
        assert "{{contact.frist_name}}" in fields["text"]


@SQLITE_ONLY
async def test_hostile_queries_and_ids(client: Client, admin: ApiUser) -> None:
    for query in ("cursor=garbage", "limit=0", "q=" + "x" * 201, "q=a%00b", "scope=x", "team_id=1"):
        response = await client.get(f"{BASE}?{query}", headers=admin.headers)
        assert response.status == 422, query
    for path in (f"{BASE}/not-a-uuid", f"{BASE}/{uuid.uuid4()}"):
        assert (await client.get(path, headers=admin.headers)).status == 404
        assert (await client.patch(path, json={}, headers=admin.headers)).status == 404
    render = await client.post(
        f"{BASE}/{uuid.uuid4()}/render", json={"conversation_id": 5}, headers=admin.headers
    )
    assert render.status == 422
