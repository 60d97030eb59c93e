"""Segments over the REST API: saving and changing filters, live counts, a segment's
contacts, CSV export, and who may do what; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from typing import Any

import aiohttp
import pytest
from sqlalchemy import delete

from inbox import contact_csv
from inbox.models import AttributeDefinition, Role
from tests.web.conftest import T0, ApiUser, Client, Rows, make_api_user, minutes
from timeline.db import SessionFactory
from timeline.events import Event
from timeline.models import Channel, Contact, ContactAttribute, ContactTag, Conversation
from web.keys import BUS_KEY

API = "/api/v1"


@pytest.fixture
async def manager(sessions: SessionFactory) -> ApiUser:
    return await make_api_user(sessions, Role.MANAGER)


async def call(
    client: Client,
    user: ApiUser | None,
    method: str,
    path: str,
    expect: int,
    json: Any = None,
    **params: Any,
) -> Any:
    headers = user.headers if user else {}
    response = await client.request(method, API + path, json=json, params=params, headers=headers)
    assert response.status == expect, await response.text()
    if response.content_type == "application/json":
        return await response.json()
    return await response.read()


async def add_contact(
    sessions: SessionFactory,
    name: str,
    *,
    stage: str = "new",
    tags: tuple[str, ...] = (),
    erased: bool = False,
    plan: str | None = None,
    minute: int = 0,
    channel: Channel | None = None,
) -> Contact:
    at = T0 + minutes(minute)
    contact = Contact(
        name=name,
        lifecycle_stage=stage,
        erased_at=T0 if erased else None,
        created_at=at,
        last_activity_at=at,
    )
    async with sessions() as session, session.begin():
        session.add(contact)
        await session.flush()
        session.add_all(ContactTag(contact_id=contact.id, tag=tag) for tag in tags)
        if plan is not None:
            session.add(ContactAttribute(contact_id=contact.id, key="plan", text_value=plan))
        if channel is not None:
            # Agents see a contact through a conversation on one of their channels.
            session.add(
                Conversation(
                    contact_id=contact.id, channel_id=channel.id, last_activity_at=at, created_at=at
                )
            )
    return contact


async def define_plan(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        session.add(AttributeDefinition(key="plan", label="Plan", type="text"))


LEADS = {"name": "Leads", "filters": {"stages": ["lead"]}}


# --- saving and reading ----------------------------------------------------------------------


async def test_save_read_change_and_delete_a_segment(
    client: Client, manager: ApiUser, agent: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    home = await rows.home()  # the agent's channel
    await add_contact(sessions, "Ann", stage="lead", channel=home)
    await add_contact(sessions, "Bob", stage="customer", tags=("vip",), channel=home)
    created = await call(client, manager, "POST", "/segments", 201, LEADS)
    assert created["name"] == "Leads"
    assert created["filters"]["stages"] == ["lead"]
    assert created["count"] == 1
    assert created["problems"] == {}
    assert created["created_by"] == str(manager.user.id)
    url = f"/segments/{created['id']}"
    assert (await call(client, agent, "GET", url, 200))["count"] == 1
    await add_contact(sessions, "Cat", stage="lead", channel=home)
    # Counts are live: the new lead counts without touching the segment.
    listed = await call(client, agent, "GET", "/segments", 200)
    assert [(item["name"], item["count"]) for item in listed["items"]] == [("Leads", 2)]
    changed = await call(
        client, manager, "PATCH", url, 200, {"name": "VIPs", "filters": {"tags_any": ["vip"]}}
    )
    assert (changed["name"], changed["count"]) == ("VIPs", 1)
    assert changed["filters"]["stages"] == []
    assert changed["updated_at"] >= created["updated_at"]
    renamed = await call(client, manager, "PATCH", url, 200, {"name": "Very important"})
    assert renamed["filters"]["tags_any"] == ["vip"]
    await call(client, manager, "DELETE", url, 204)
    await call(client, agent, "GET", url, 404)
    await call(client, manager, "DELETE", url, 404)
    # The contacts stay.
    assert (await call(client, agent, "POST", "/segments/preview", 200, {}))["count"] == 3


async def test_changes_publish_events_after_commit(client: Client, admin: ApiUser) -> None:
    async with client.app[BUS_KEY].subscribe() as events:
        created = await call(client, admin, "POST", "/segments", 201, LEADS)
        url = f"/segments/{created['id']}"
        await call(client, admin, "PATCH", url, 200, {"name": "x"})
        await call(client, admin, "DELETE", url, 204)
        seen = [await events.get(timeout=5) for _ in range(3)]
    data = {"segment_id": created["id"]}
    assert seen == [
        Event("segment.created", data),
        Event("segment.updated", data),
        Event("segment.deleted", data),
    ]


async def test_segment_list_pages(client: Client, admin: ApiUser) -> None:
    ids = [
        (await call(client, admin, "POST", "/segments", 201, {"name": f"s{n}"}))["id"]
        for n in range(3)
    ]
    first = await call(client, admin, "GET", "/segments", 200, limit=2)
    second = await call(client, admin, "GET", "/segments", 200, cursor=first["next_cursor"])
    seen = [item["id"] for item in first["items"] + second["items"]]
    assert sorted(seen) == sorted(ids) and len(seen) == 3
    assert second["next_cursor"] is None


# --- who may do what -------------------------------------------------------------------------


async def test_agents_read_and_count_but_do_not_change_or_export(
    client: Client, admin: ApiUser, agent: ApiUser
) -> None:
    created = await call(client, admin, "POST", "/segments", 201, LEADS)
    url = f"/segments/{created['id']}"
    await call(client, agent, "POST", "/segments", 403, LEADS)
    await call(client, agent, "PATCH", url, 403, {"name": "mine"})
    await call(client, agent, "DELETE", url, 403)
    await call(client, agent, "GET", url + "/export.csv", 403)
    await call(client, agent, "POST", "/contacts/export.csv", 403, {"filters": {}})
    await call(client, agent, "GET", url, 200)
    await call(client, agent, "GET", url + "/contacts", 200)
    await call(client, agent, "POST", "/segments/preview", 200, {"filters": {}})
    assert (await call(client, admin, "GET", url, 200))["name"] == "Leads"


async def test_every_route_needs_a_token(client: Client, admin: ApiUser) -> None:
    created = await call(client, admin, "POST", "/segments", 201, LEADS)
    url = f"/segments/{created['id']}"
    for method, path in [
        ("GET", "/segments"),
        ("POST", "/segments"),
        ("POST", "/segments/preview"),
        ("GET", url),
        ("PATCH", url),
        ("DELETE", url),
        ("GET", url + "/contacts"),
        ("GET", url + "/export.csv"),
        ("POST", "/contacts/export.csv"),
    ]:
        await call(client, None, method, path, 401, {})


async def test_erased_contacts_are_for_admins_only(
    client: Client,
    admin: ApiUser,
    manager: ApiUser,
    agent: ApiUser,
    sessions: SessionFactory,
    rows: Rows,
) -> None:
    home = await rows.home()  # the agent's channel
    await add_contact(sessions, "Gone", stage="lead", erased=True, channel=home)
    await add_contact(sessions, "Here", stage="lead", channel=home)
    audit = {"stages": ["lead"], "include_erased": True}
    assert (await call(client, admin, "POST", "/segments/preview", 200, {"filters": audit})) == {
        "count": 2
    }
    for user in (manager, agent):
        error = await call(client, user, "POST", "/segments/preview", 403, {"filters": audit})
        assert error["error"]["code"] == "forbidden"
    await call(client, manager, "POST", "/segments", 403, {"name": "audit", "filters": audit})
    saved = await call(client, admin, "POST", "/segments", 201, {"name": "a", "filters": audit})
    assert saved["count"] == 2
    url = f"/segments/{saved['id']}"
    await call(client, manager, "PATCH", url, 403, {"filters": audit})
    # Others see the admin's segment without the erased contacts.
    assert (await call(client, manager, "GET", url, 200))["count"] == 1
    names = await call(client, agent, "GET", url + "/contacts", 200)
    assert [item["name"] for item in names["items"]] == ["Here"]
    exported = await call(client, manager, "GET", url + "/export.csv", 200)
    assert [row["name"] for row in csv_rows(exported)] == ["Here"]


# --- refused input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": 5}, "name"),
        ({}, "name"),
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": "x", "filters": {"stages": ["prospect"]}}, "filters.stages.0"),
        ({"name": "x", "filters": {"tags_any": ["t"] * 101}}, "filters.tags_any"),
        ({"name": "x", "filters": {"tags_any": ["a\x00"]}}, "filters.tags_any.0"),
        ({"name": "x", "filters": {"owner_id": "bob"}}, "filters.owner_id"),
        (
            {"name": "x", "filters": {"reachable_on_kinds": ["webform"]}},
            "filters.reachable_on_kinds",
        ),
        ({"name": "x", "filters": {"created_after": "yesterday"}}, "filters.created_after"),
        ({"name": "x", "filters": {"q": "x" * 201}}, "filters.q"),
        ({"name": "x", "filters": []}, "filters"),
        (
            {"name": "x", "filters": {"attributes": [{"key": "plan", "op": "eq", "value": "x"}]}},
            "filters.attributes.0.key",
        ),
        (
            {"name": "x", "filters": {"attributes": [{"key": "plan", "op": "gt", "value": 1}]}},
            "filters.attributes.0.op",
        ),
    ],
)
# Refused by the API's own checks; one database is enough (on SQLite, which stores what
# PostgreSQL would refuse, a missing check shows as a stored value instead of a 422).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_invalid_segments_are_422_naming_the_field(
    client: Client,
    admin: ApiUser,
    body: dict[str, Any],
    field: str,
    sessions: SessionFactory,
) -> None:
    if field.startswith("filters.attributes.0.op"):
        await define_plan(sessions)
    error = (await call(client, admin, "POST", "/segments", 422, body))["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    # The same filter is refused the same way by a preview, and nothing was saved.
    if "filters" in body and isinstance(body["filters"], dict):
        preview = await call(
            client, admin, "POST", "/segments/preview", 422, {"filters": body["filters"]}
        )
        assert field in preview["error"]["fields"]
    assert (await call(client, admin, "GET", "/segments", 200))["items"] == []


async def test_unknown_or_malformed_ids_are_404(client: Client, admin: ApiUser) -> None:
    for path in (f"/segments/{uuid.uuid4()}", "/segments/not-a-uuid"):
        await call(client, admin, "GET", path, 404)
        await call(client, admin, "PATCH", path, 404, {"name": "x"})
        await call(client, admin, "DELETE", path, 404)
        await call(client, admin, "GET", path + "/contacts", 404)
        await call(client, admin, "GET", path + "/export.csv", 404)


async def test_unreadable_body_is_400(client: Client, admin: ApiUser) -> None:
    response = await client.post(
        API + "/segments/preview", data=b"{not json", headers=admin.headers
    )
    assert response.status == 400


async def test_a_segment_whose_attribute_was_undefined_says_why(
    client: Client, admin: ApiUser, sessions: SessionFactory
) -> None:
    await define_plan(sessions)
    await add_contact(sessions, "Pro", plan="pro")
    filters = {"attributes": [{"key": "plan", "op": "eq", "value": "pro"}]}
    saved = await call(client, admin, "POST", "/segments", 201, {"name": "pro", "filters": filters})
    assert saved["count"] == 1
    async with sessions() as session, session.begin():
        await session.execute(delete(AttributeDefinition))
    url = f"/segments/{saved['id']}"
    shown = await call(client, admin, "GET", url, 200)
    assert shown["count"] is None
    assert list(shown["problems"]) == ["attributes.0.key"]
    listed = await call(client, admin, "GET", "/segments", 200)
    assert listed["items"][0]["count"] is None
    error = await call(client, admin, "GET", url + "/contacts", 422)
    assert list(error["error"]["fields"]) == ["filters.attributes.0.key"]
    error = await call(client, admin, "GET", url + "/export.csv", 422)
    assert list(error["error"]["fields"]) == ["filters.attributes.0.key"]


# --- contacts and export ---------------------------------------------------------------------


async def test_segment_contacts_page_most_recent_first(
    client: Client, agent: ApiUser, admin: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    home = await rows.home()  # the agent's channel
    for n in range(5):
        await add_contact(sessions, f"lead {n}", stage="lead", minute=n, channel=home)
    await add_contact(sessions, "customer", stage="customer", minute=9, channel=home)
    saved = await call(client, admin, "POST", "/segments", 201, LEADS)
    url = f"/segments/{saved['id']}/contacts"
    names: list[str] = []
    cursor = None
    for _ in range(3):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await call(client, agent, "GET", url, 200, **params)
        names += [item["name"] for item in page["items"]]
        assert all("identities" in item for item in page["items"])
        cursor = page["next_cursor"]
    assert names == [f"lead {n}" for n in (4, 3, 2, 1, 0)]
    assert cursor is None
    await call(client, agent, "GET", url, 422, cursor="garbage")
    await call(client, agent, "GET", url, 422, limit=0)


async def test_segment_contacts_honour_visible_channels(
    client: Client, agent: ApiUser, admin: ApiUser, rows: Rows
) -> None:
    # The agent is a member of `channel` only: they see the contact with a conversation
    # there, not the one without conversations nor the one on another channel; an admin
    # sees all three.
    channel = await rows.channel("email")
    await rows.member(agent.user, channel)
    with_conversation = await rows.contact("Talked", [("email", "t@example.com")])
    await rows.conversation(with_conversation, channel)
    await rows.contact("Silent")
    elsewhere = await rows.contact("Elsewhere")
    await rows.conversation(elsewhere, await rows.channel("sms"))
    saved = await call(client, admin, "POST", "/segments", 201, {"name": "all"})
    page = await call(client, agent, "GET", f"/segments/{saved['id']}/contacts", 200)
    assert sorted(item["name"] for item in page["items"]) == ["Talked"]
    assert (await call(client, agent, "GET", f"/segments/{saved['id']}", 200))["count"] == 1
    page = await call(client, admin, "GET", f"/segments/{saved['id']}/contacts", 200)
    assert sorted(item["name"] for item in page["items"]) == ["Elsewhere", "Silent", "Talked"]


def csv_rows(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


async def test_export_a_segment_as_csv(
    client: Client, manager: ApiUser, sessions: SessionFactory
) -> None:
    await add_contact(sessions, "=cmd|' /C calc'!A0", stage="lead", tags=("vip",))
    await add_contact(sessions, "Bob", stage="customer")
    saved = await call(
        client,
        manager,
        "POST",
        "/segments",
        201,
        {"name": 'Leads / Q4 "ÄÖ"\r\n', "filters": LEADS["filters"]},
    )
    response = await client.get(f"{API}/segments/{saved['id']}/export.csv", headers=manager.headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="Leads-Q4.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    rows = csv_rows(await response.read())
    assert [(row["name"], row["tags"]) for row in rows] == [("'=cmd|' /C calc'!A0", "vip")]


async def test_export_a_segment_with_an_unusable_name(
    client: Client, admin: ApiUser, sessions: SessionFactory
) -> None:
    saved = await call(client, admin, "POST", "/segments", 201, {"name": "../.. ÄÖ"})
    response = await client.get(f"{API}/segments/{saved['id']}/export.csv", headers=admin.headers)
    assert response.headers["Content-Disposition"] == 'attachment; filename="segment.csv"'
    assert csv_rows(await response.read()) == []


async def test_export_an_unsaved_filter(
    client: Client, admin: ApiUser, manager: ApiUser, sessions: SessionFactory
) -> None:
    await define_plan(sessions)
    await add_contact(sessions, "Pro", plan="pro")
    await add_contact(sessions, "Free", plan="free")
    body = {"filters": {"attributes": [{"key": "plan", "op": "contains", "value": "PR"}]}}
    response = await client.post(f"{API}/contacts/export.csv", json=body, headers=manager.headers)
    assert response.status == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="contacts.csv"'
    rows = csv_rows(await response.read())
    assert [(row["name"], row["attribute:plan"]) for row in rows] == [("Pro", "pro")]
    bad = {"filters": {"attributes": [{"key": "nope", "op": "is_set"}]}}
    error = await call(client, admin, "POST", "/contacts/export.csv", 422, bad)
    assert list(error["error"]["fields"]) == ["filters.attributes.0.key"]
    await call(client, admin, "POST", "/contacts/export.csv", 422, {"filters": {"x": 1}})


async def test_export_streams_more_than_one_page(
    client: Client, admin: ApiUser, sessions: SessionFactory
) -> None:
    async with sessions() as session, session.begin():
        session.add_all(Contact(name=f"c{n:04d}") for n in range(1203))
    response = await client.post(f"{API}/contacts/export.csv", json={}, headers=admin.headers)
    assert response.status == 200
    assert "Content-Length" not in response.headers  # streamed, not built up front
    names = [row["name"] for row in csv_rows(await response.read())]
    assert sorted(names) == [f"c{n:04d}" for n in range(1203)]


async def test_openapi_documents_the_segment_routes(client: Client) -> None:
    document = await (await client.get(API + "/openapi.json")).json()
    paths = document["paths"]
    assert set(paths[API + "/segments"]) == {"get", "post"}
    assert set(paths[API + "/segments/{id}"]) == {"get", "patch", "delete"}
    assert "post" in paths[API + "/segments/preview"]
    assert "get" in paths[API + "/segments/{id}/contacts"]
    assert "get" in paths[API + "/segments/{id}/export.csv"]
    assert "post" in paths[API + "/contacts/export.csv"]
    schemas = document["components"]["schemas"]
    assert {"SegmentOut", "SegmentCreate", "SegmentFilters", "AttributeCondition"} <= set(schemas)


async def test_an_export_failing_part_way_ends_as_an_incomplete_transfer(
    client: Client, admin: ApiUser, sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sessions() as session, session.begin():
        session.add_all(Contact(name=f"c{n}") for n in range(3))

    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    # The header is sent before the first page of contacts is read.
    monkeypatch.setattr(contact_csv, "_load_page", fail)
    response = await client.post(f"{API}/contacts/export.csv", json={}, headers=admin.headers)
    assert response.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()


async def test_a_change_racing_a_delete_is_applied_or_404_never_lost(
    client: Client, admin: ApiUser
) -> None:
    for _ in range(5):
        created = await call(client, admin, "POST", "/segments", 201, LEADS)
        url = f"{API}/segments/{created['id']}"
        patched, deleted = await asyncio.gather(
            client.patch(url, json={"name": "renamed"}, headers=admin.headers),
            client.delete(url, headers=admin.headers),
        )
        assert deleted.status == 204, await deleted.text()
        assert patched.status in (200, 404), await patched.text()
        await call(client, admin, "GET", f"/segments/{created['id']}", 404)
