"""Contact merge and merge suggestions over the REST API."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from inbox.models import Role
from tests.web.conftest import T0, ApiUser, Client, Rows, make_api_user, minutes
from timeline.db import SessionFactory
from timeline.models import Contact, MergeSuggestion, Message


async def post(client: Client, user: ApiUser, path: str, body: Any = None) -> Any:
    return await client.post(path, json=body, headers=user.headers)


async def _suggestion(
    sessions: SessionFactory, a: Contact, b: Contact, reason: str, minute: int = 0
) -> MergeSuggestion:
    row = MergeSuggestion(
        contact_id=a.id, other_contact_id=b.id, reason=reason, created_at=T0 + minutes(minute)
    )
    async with sessions() as session, session.begin():
        session.add(row)
    return row


@pytest.fixture
async def manager(sessions: SessionFactory) -> ApiUser:
    return await make_api_user(sessions, Role.MANAGER)


async def test_a_manager_merges_another_contact_into_one(
    client: Client, manager: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    channel = await rows.channel("email")
    ann = await rows.contact("Ann", [("email", "ann@example.com")])
    dup = await rows.contact(None, [("phone", "+14155550100")])
    conversation = await rows.conversation(dup, channel)
    await rows.message(conversation, text="from the duplicate")

    response = await post(
        client, manager, f"/api/v1/contacts/{ann.id}/merge", {"other_id": str(dup.id)}
    )

    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["survivor_id"], body["merged_id"]) == (str(ann.id), str(dup.id))
    assert body["moved"]["messages"] == 1 and body["moved"]["identities"] == 1
    assert body["contact"]["name"] == "Ann"
    assert {i["value"] for i in body["contact"]["identities"]} == {
        "ann@example.com",
        "+14155550100",
    }
    timeline = await client.get(f"/api/v1/contacts/{ann.id}/timeline", headers=manager.headers)
    kinds = [item["kind"] for item in (await timeline.json())["items"]]
    assert kinds[0] == "contact.merged"
    async with sessions() as session:
        owner = await session.scalar(select(Message.contact_id))
        merged = await session.get(Contact, dup.id)
    assert owner == ann.id and merged is not None and merged.merged_into_id == ann.id
    # Merging it again, or into it, is a conflict that says why.
    again = await post(
        client, manager, f"/api/v1/contacts/{ann.id}/merge", {"other_id": str(dup.id)}
    )
    assert again.status == 409
    assert "already merged" in (await again.json())["error"]["message"]
    into = await post(
        client, manager, f"/api/v1/contacts/{dup.id}/merge", {"other_id": str(ann.id)}
    )
    assert into.status == 409


async def test_agents_may_not_merge(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.contact("Ann")
    bob = await rows.contact("Bob")
    response = await post(
        client, agent, f"/api/v1/contacts/{ann.id}/merge", {"other_id": str(bob.id)}
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "other_id"),
        ({"other_id": "not-a-uuid"}, "other_id"),
        ({"other_id": 12}, "other_id"),
        ({"other_id": str(uuid.uuid4()), "extra": 1}, "extra"),
        ([], "body"),
    ],
)
async def test_bad_merge_bodies_are_422_naming_the_field(
    client: Client, admin: ApiUser, rows: Rows, body: Any, field: str
) -> None:
    ann = await rows.contact("Ann")
    response = await post(client, admin, f"/api/v1/contacts/{ann.id}/merge", body)
    assert response.status == 422
    assert field in (await response.json())["error"]["fields"]


async def test_unknown_self_and_missing_contacts(
    client: Client, admin: ApiUser, rows: Rows
) -> None:
    ann = await rows.contact("Ann")
    itself = await post(
        client, admin, f"/api/v1/contacts/{ann.id}/merge", {"other_id": str(ann.id)}
    )
    assert itself.status == 422 and "itself" in (await itself.json())["error"]["fields"]["other_id"]
    unknown_other = await post(
        client, admin, f"/api/v1/contacts/{ann.id}/merge", {"other_id": str(uuid.uuid4())}
    )
    assert unknown_other.status == 422
    assert (await unknown_other.json())["error"]["fields"] == {"other_id": "no such contact"}
    unknown = await post(
        client, admin, f"/api/v1/contacts/{uuid.uuid4()}/merge", {"other_id": str(ann.id)}
    )
    assert unknown.status == 404
    malformed = await post(client, admin, "/api/v1/contacts/nope/merge", {"other_id": str(ann.id)})
    assert malformed.status == 404


async def test_open_suggestions_are_listed_oldest_first_page_by_page(
    client: Client, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    ann, bob, cy = [await rows.seen_contact(name) for name in ("Ann", "Bob", "Cy")]
    first = await _suggestion(sessions, ann, bob, "phone:+14155550100", 1)
    second = await _suggestion(sessions, bob, cy, "email:cy@example.com", 2)
    closed = await _suggestion(sessions, ann, cy, "email:x@example.com", 0)
    async with sessions() as session, session.begin():
        row = await session.get(MergeSuggestion, closed.id)
        assert row is not None
        row.status = "dismissed"
    page = await client.get("/api/v1/merge-suggestions", params={"limit": 1}, headers=agent.headers)
    assert page.status == 200
    body = await page.json()
    [item] = body["items"]
    assert item["id"] == str(first.id) and item["reason"] == "phone:+14155550100"
    assert item["contact"] == {"id": str(ann.id), "name": "Ann"}
    assert item["other_contact"] == {"id": str(bob.id), "name": "Bob"}
    assert body["next_cursor"]
    rest = await client.get(
        "/api/v1/merge-suggestions",
        params={"limit": 1, "cursor": body["next_cursor"]},
        headers=agent.headers,
    )
    body = await rest.json()
    assert [i["id"] for i in body["items"]] == [str(second.id)] and body["next_cursor"] is None
    bad = await client.get(
        "/api/v1/merge-suggestions", params={"cursor": "garbage"}, headers=agent.headers
    )
    assert bad.status == 422


async def test_a_suggestion_is_dismissed_once(
    client: Client, manager: ApiUser, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    ann, bob = await rows.contact("Ann"), await rows.contact("Bob")
    suggestion = await _suggestion(sessions, ann, bob, "phone:+14155550100")
    path = f"/api/v1/merge-suggestions/{suggestion.id}/dismiss"
    assert (await post(client, agent, path)).status == 403
    response = await post(client, manager, path)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["status"] == "dismissed" and body["resolved_by"] == str(manager.user.id)
    assert (await post(client, manager, path)).status == 409
    unknown = await post(client, manager, f"/api/v1/merge-suggestions/{uuid.uuid4()}/dismiss")
    assert unknown.status == 404
    listed = await client.get("/api/v1/merge-suggestions", headers=agent.headers)
    assert (await listed.json())["items"] == []


async def test_a_suggestion_is_merged_into_the_chosen_contact(
    client: Client, admin: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    ann = await rows.contact("Ann", [("email", "ann@example.com")])
    bob = await rows.contact(None, [("phone", "+14155550100")])
    suggestion = await _suggestion(sessions, ann, bob, "phone:+14155550100")
    path = f"/api/v1/merge-suggestions/{suggestion.id}/merge"
    stranger = await post(client, admin, path, {"survivor_id": str(uuid.uuid4())})
    assert stranger.status == 422
    assert "survivor_id" in (await stranger.json())["error"]["fields"]
    response = await post(client, admin, path, {"survivor_id": str(bob.id)})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["survivor_id"], body["merged_id"]) == (str(bob.id), str(ann.id))
    assert body["contact"]["name"] == "Ann"  # the survivor had none: filled from the merged
    async with sessions() as session:
        stored = await session.get(MergeSuggestion, suggestion.id)
    assert stored is not None and stored.status == "merged"
    assert (await post(client, admin, path, {"survivor_id": str(bob.id)})).status == 409
    unknown = await post(
        client,
        admin,
        f"/api/v1/merge-suggestions/{uuid.uuid4()}/merge",
        {"survivor_id": str(bob.id)},
    )
    assert unknown.status == 404


async def test_the_routes_are_in_the_openapi_document(client: Client) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    assert paths["/api/v1/contacts/{id}/merge"]["post"]["requestBody"]
    assert "409" in paths["/api/v1/contacts/{id}/merge"]["post"]["responses"]
    assert "get" in paths["/api/v1/merge-suggestions"]
    assert "post" in paths["/api/v1/merge-suggestions/{id}/dismiss"]
    assert "post" in paths["/api/v1/merge-suggestions/{id}/merge"]
    assert "MergeOut" in document["components"]["schemas"]


async def test_a_merged_id_still_resolves_and_is_not_listed_twice(
    client: Client, admin: ApiUser, rows: Rows
) -> None:
    survivor = (await rows.contact("Ann", [("email", "ann@example.com")])).id
    merged = (await rows.contact(None, [("phone", "+14155550100")])).id
    answer = await client.post(
        f"/api/v1/contacts/{survivor}/merge", json={"other_id": str(merged)}, headers=admin.headers
    )
    assert answer.status == 200, await answer.text()
    got = await client.get(f"/api/v1/contacts/{merged}", headers=admin.headers)
    assert got.status == 200 and (await got.json())["id"] == str(survivor)
    timeline = await client.get(f"/api/v1/contacts/{merged}/timeline", headers=admin.headers)
    kinds = [item["kind"] for item in (await timeline.json())["items"]]
    assert "contact.merged" in kinds
    listed = await client.get("/api/v1/contacts?limit=100", headers=admin.headers)
    assert [item["id"] for item in (await listed.json())["items"]] == [str(survivor)]
