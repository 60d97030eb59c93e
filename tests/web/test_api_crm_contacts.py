"""PATCH /api/v1/contacts/{id}: the CRM fields and the customer's preferences, each change
a timeline event, and the contact as the API shows it."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import Connection

from inbox.models import AttributeDefinition, Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory
from timeline.models import Contact, ContactAttribute, ContactTag
from web.keys import BUS_KEY, ENGINE_KEY


async def patch(client: Client, user: ApiUser, contact_id: object, body: Any) -> tuple[int, Any]:
    response = await client.patch(f"/api/v1/contacts/{contact_id}", json=body, headers=user.headers)
    return response.status, await response.json()


async def ok(client: Client, user: ApiUser, contact_id: object, body: Any) -> Any:
    status, answer = await patch(client, user, contact_id, body)
    assert status == 200, answer
    return answer


async def refused(client: Client, user: ApiUser, contact_id: object, body: Any) -> dict[str, str]:
    status, answer = await patch(client, user, contact_id, body)
    assert status == 422, answer
    assert answer["error"]["code"] == "validation_error"
    fields: dict[str, str] = answer["error"]["fields"]
    return fields


async def timeline(client: Client, user: ApiUser, contact_id: object) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/contacts/{contact_id}/timeline", headers=user.headers)
    assert response.status == 200
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items[::-1]  # oldest first


async def kinds(client: Client, user: ApiUser, contact_id: object) -> list[str]:
    return [item["kind"] for item in await timeline(client, user, contact_id)]


async def define(sessions: SessionFactory, key: str, kind: str, options: Any = None) -> None:
    async with sessions() as session, session.begin():
        session.add(AttributeDefinition(key=key, label=key, type=kind, options=options))


# --- lifecycle -------------------------------------------------------------------------------


async def test_stage_changes_are_recorded(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.seen_contact("Ann")
    answer = await ok(client, agent, ann.id, {"lifecycle_stage": "lead"})
    assert answer["lifecycle_stage"] == "lead"
    await ok(client, agent, ann.id, {"lifecycle_stage": "lead"})  # same stage: no event
    answer = await ok(
        client, agent, ann.id, {"lifecycle_stage": "lost", "lost_reason": "no budget"}
    )
    assert (answer["lifecycle_stage"], answer["lost_reason"]) == ("lost", "no budget")
    answer = await ok(client, agent, ann.id, {"lifecycle_stage": "qualified"})
    assert (answer["lifecycle_stage"], answer["lost_reason"]) == ("qualified", None)

    changes = [
        item["data"]
        for item in await timeline(client, agent, ann.id)
        if item["kind"] == "contact.stage_changed"
    ]
    by = str(agent.user.id)
    assert changes == [
        {"from": "new", "to": "lead", "by": by},
        {"from": "lead", "to": "lost", "reason": "no budget", "by": by},
        {"from": "lost", "to": "qualified", "by": by},
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lifecycle_stage": "lost"}, "lost_reason"),
        ({"lifecycle_stage": "lost", "lost_reason": "  "}, "lost_reason"),
        ({"lifecycle_stage": "lead", "lost_reason": "why"}, "lost_reason"),
        ({"lifecycle_stage": "won"}, "lifecycle_stage"),
        ({"lifecycle_stage": 3}, "lifecycle_stage"),
        ({"lifecycle_stage": None}, "body"),
        ({"lifecycle_stage": "lost", "lost_reason": "x" * 501}, "lost_reason"),
    ],
)
# Refused by the API's own checks; one database is enough (on SQLite, which stores what
# PostgreSQL would refuse, a missing check shows as a stored value instead of a 422).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_stage_changes_are_422(
    client: Client, agent: ApiUser, rows: Rows, body: dict[str, Any], field: str
) -> None:
    ann = await rows.seen_contact("Ann")
    assert field in await refused(client, agent, ann.id, body)
    assert "contact.stage_changed" not in await kinds(client, agent, ann.id)


# --- owner and plain fields ------------------------------------------------------------------


async def test_owner_is_an_active_user(
    client: Client, agent: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    ann = await rows.seen_contact("Ann")
    owner = await make_api_user(sessions, Role.MANAGER)
    gone = await make_api_user(sessions, Role.AGENT, active=False)
    assert "owner_id" in await refused(client, agent, ann.id, {"owner_id": str(gone.user.id)})
    assert "owner_id" in await refused(client, agent, ann.id, {"owner_id": str(uuid.uuid4())})
    assert "owner_id" in await refused(client, agent, ann.id, {"owner_id": "nobody"})
    answer = await ok(client, agent, ann.id, {"owner_id": str(owner.user.id)})
    assert answer["owner_id"] == str(owner.user.id)
    answer = await ok(client, agent, ann.id, {"owner_id": None})
    assert answer["owner_id"] is None
    owners = [
        item["data"]
        for item in await timeline(client, agent, ann.id)
        if item["kind"] == "contact.owner_changed"
    ]
    assert owners == [
        {"from": None, "to": str(owner.user.id), "by": str(agent.user.id)},
        {"from": str(owner.user.id), "to": None, "by": str(agent.user.id)},
    ]


async def test_name_and_preferences(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.seen_contact("Ann")
    sms = await rows.channel("sms")
    answer = await ok(
        client,
        agent,
        ann.id,
        {
            "name": "Ann Lee",
            "preferred_channel_id": str(sms.id),
            "language": "PT_br",
            "timezone": "america/sao_paulo",
            "reachable_hours": {
                d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            },
            "currency": "brl",
        },
    )
    assert answer["name"] == "Ann Lee"
    assert answer["preferred_channel_id"] == str(sms.id)
    assert answer["language"] == "pt-BR"
    assert answer["timezone"] == "America/Sao_Paulo"
    assert answer["currency"] == "BRL"
    assert answer["reachable_now"] is True  # every hour of every day
    local = datetime.fromisoformat(answer["local_time"])
    assert local.utcoffset() is not None and local.utcoffset().total_seconds() == -3 * 3600  # type: ignore[union-attr]
    [updated] = [i for i in await timeline(client, agent, ann.id) if i["kind"] == "contact.updated"]
    fields = updated["data"]["fields"]
    assert fields["name"] == {"from": "Ann", "to": "Ann Lee"}
    assert fields["language"] == {"from": None, "to": "pt-BR"}
    assert fields["preferred_channel_id"] == {"from": None, "to": str(sms.id)}
    assert set(fields) == {
        "name",
        "preferred_channel_id",
        "language",
        "timezone",
        "reachable_hours",
        "currency",
    }
    # Clearing the timezone makes local time and reachability unknown.
    answer = await ok(client, agent, ann.id, {"timezone": None, "name": None})
    assert (answer["local_time"], answer["reachable_now"], answer["name"]) == (None, None, None)


async def test_reachable_now_false_outside_hours(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    ann = await rows.seen_contact("Ann")
    answer = await ok(
        client, agent, ann.id, {"timezone": "UTC", "reachable_hours": {}}
    )  # no day at all: never
    assert answer["reachable_now"] is False
    assert answer["reachable_hours"] == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"language": "not a language"}, "language"),
        ({"language": "x" * 65}, "language"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"currency": "EURO"}, "currency"),
        ({"reachable_hours": {"mon": [["10:00", "09:00"]]}}, "reachable_hours"),
        ({"reachable_hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "reachable_hours"),
        ({"reachable_hours": {"caturday": []}}, "reachable_hours"),
        ({"reachable_hours": [["09:00", "12:00"]]}, "reachable_hours"),
        ({"preferred_channel_id": str(uuid.uuid4())}, "preferred_channel_id"),
        ({"preferred_channel_id": "email"}, "preferred_channel_id"),
        ({"name": "Ann\x00Lee"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"nickname": "Annie"}, "nickname"),
    ],
)
# Refused by the API's own checks; one database is enough (on SQLite, which stores what
# PostgreSQL would refuse, a missing check shows as a stored value instead of a 422).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_fields_are_422_and_change_nothing(
    client: Client, agent: ApiUser, rows: Rows, body: dict[str, Any], field: str
) -> None:
    ann = await rows.seen_contact("Ann")
    fields = await refused(client, agent, ann.id, {"lifecycle_stage": "lead", **body})
    assert field in fields, fields
    response = await client.get(f"/api/v1/contacts/{ann.id}", headers=agent.headers)
    assert (await response.json())["lifecycle_stage"] == "new"  # the valid part did not apply
    assert await kinds(client, agent, ann.id) == []


# --- lifetime value --------------------------------------------------------------------------


async def test_lifetime_value(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.seen_contact("Ann")
    answer = await ok(
        client, agent, ann.id, {"lifetime_value": {"amount": "1234.5", "currency": "eur"}}
    )
    assert answer["lifetime_value"] == {"amount": "1234.50", "currency": "EUR"}
    answer = await ok(
        client, agent, ann.id, {"lifetime_value": {"amount": "150000", "currency": "JPY"}}
    )
    assert answer["lifetime_value"] == {"amount": "150000", "currency": "JPY"}
    answer = await ok(client, agent, ann.id, {"lifetime_value": None})
    assert answer["lifetime_value"] is None
    changes = [
        item["data"]["fields"]["lifetime_value"]
        for item in await timeline(client, agent, ann.id)
        if item["kind"] == "contact.updated"
    ]
    assert changes == [
        {"from": None, "to": {"amount": "1234.50", "currency": "EUR"}},
        {
            "from": {"amount": "1234.50", "currency": "EUR"},
            "to": {"amount": "150000", "currency": "JPY"},
        },
        {"from": {"amount": "150000", "currency": "JPY"}, "to": None},
    ]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"amount": "12.345", "currency": "EUR"}, "lifetime_value.amount"),
        ({"amount": "1.5", "currency": "JPY"}, "lifetime_value.amount"),
        ({"amount": "NaN", "currency": "EUR"}, "lifetime_value.amount"),
        ({"amount": "1e400", "currency": "EUR"}, "lifetime_value.amount"),
        ({"amount": "9" * 39, "currency": "EUR"}, "lifetime_value.amount"),
        ({"amount": 12.5, "currency": "EUR"}, "lifetime_value.amount"),
        ({"amount": "1", "currency": "XYZ"}, "lifetime_value.currency"),
        ({"amount": "1"}, "lifetime_value.currency"),
        ({"amount": "1", "currency": "EUR", "note": "x"}, "lifetime_value.note"),
    ],
)
# Refused by the API's own checks; one database is enough (on SQLite, which stores what
# PostgreSQL would refuse, a missing check shows as a stored value instead of a 422).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_lifetime_values_are_422(
    client: Client, agent: ApiUser, rows: Rows, value: Any, field: str
) -> None:
    ann = await rows.seen_contact("Ann")
    fields = await refused(client, agent, ann.id, {"lifetime_value": value})
    assert field in fields, fields


# --- tags ------------------------------------------------------------------------------------


async def test_tags_are_normalized_set_added_and_removed(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    ann = await rows.seen_contact("Ann")
    answer = await ok(client, agent, ann.id, {"tags": [" VIP ", "vip", "Berlin"]})
    assert answer["tags"] == ["berlin", "vip"]
    answer = await ok(
        client, agent, ann.id, {"add_tags": ["Churn-Risk", "vip"], "remove_tags": ["berlin"]}
    )
    assert answer["tags"] == ["churn-risk", "vip"]
    answer = await ok(client, agent, ann.id, {"tags": ["vip"]})
    assert answer["tags"] == ["vip"]
    await ok(client, agent, ann.id, {"add_tags": ["vip"]})  # nothing changes: no event
    changes = [
        item["data"]
        for item in await timeline(client, agent, ann.id)
        if item["kind"] == "contact.tags_changed"
    ]
    by = str(agent.user.id)
    assert changes == [
        {"added": ["berlin", "vip"], "removed": [], "by": by},
        {"added": ["churn-risk"], "removed": ["berlin"], "by": by},
        {"added": [], "removed": ["churn-risk"], "by": by},
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tags": ["x" * 101]}, "tags.0"),
        ({"tags": ["  "]}, "tags.0"),
        ({"tags": ["a\tb"]}, "tags.0"),
        ({"tags": ["a\x00"]}, "tags.0"),
        ({"tags": [f"t{n}" for n in range(51)]}, "tags"),
        ({"tags": "vip"}, "tags"),
        ({"tags": None}, "body"),
        ({"tags": ["a"], "add_tags": ["b"]}, "body"),
        ({"add_tags": ["a"], "remove_tags": ["A"]}, "body"),
    ],
)
# Refused by the API's own checks; one database is enough (on SQLite, which stores what
# PostgreSQL would refuse, a missing check shows as a stored value instead of a 422).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_tags_are_422(
    client: Client, agent: ApiUser, rows: Rows, body: dict[str, Any], field: str
) -> None:
    ann = await rows.seen_contact("Ann")
    fields = await refused(client, agent, ann.id, body)
    assert field in fields, fields


async def test_more_than_50_tags_in_total_is_422(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    ann = await rows.seen_contact("Ann")
    await ok(client, agent, ann.id, {"tags": [f"t{n}" for n in range(50)]})
    assert "tags" in await refused(client, agent, ann.id, {"add_tags": ["one-more"]})
    answer = await ok(client, agent, ann.id, {"add_tags": ["one-more"], "remove_tags": ["t0"]})
    assert len(answer["tags"]) == 50


async def test_concurrent_add_tags_all_land(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.seen_contact("Ann")
    await ok(client, agent, ann.id, {"tags": ["base"]})
    statuses = await asyncio.gather(
        *(patch(client, agent, ann.id, {"add_tags": [f"tag{n}"]}) for n in range(12))
    )
    assert [status for status, _ in statuses] == [200] * 12
    response = await client.get(f"/api/v1/contacts/{ann.id}", headers=agent.headers)
    assert (await response.json())["tags"] == sorted(["base", *(f"tag{n}" for n in range(12))])
    added = [
        item["data"]["added"]
        for item in await timeline(client, agent, ann.id)
        if item["kind"] == "contact.tags_changed"
    ][1:]
    assert sorted(tag for tags in added for tag in tags) == sorted(f"tag{n}" for n in range(12))


async def test_concurrent_attribute_changes_all_land(
    client: Client, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    ann = await rows.seen_contact("Ann")
    for n in range(8):
        await define(sessions, f"a{n}", "number")
    await asyncio.gather(
        *(ok(client, agent, ann.id, {"attributes": {f"a{n}": n}}) for n in range(8))
    )
    response = await client.get(f"/api/v1/contacts/{ann.id}", headers=agent.headers)
    assert (await response.json())["attributes"] == {f"a{n}": float(n) for n in range(8)}


async def test_concurrent_adds_never_pass_the_tag_limit(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    ann = await rows.seen_contact("Ann")
    await ok(client, agent, ann.id, {"tags": [f"t{n}" for n in range(49)]})
    # Each would fit alone; read side by side without the row lock, all would.
    results = await asyncio.gather(
        *(patch(client, agent, ann.id, {"add_tags": [f"new{n}"]}) for n in range(6))
    )
    assert sorted(status for status, _ in results) == [200] + [422] * 5
    response = await client.get(f"/api/v1/contacts/{ann.id}", headers=agent.headers)
    assert len((await response.json())["tags"]) == 50


async def test_concurrent_changes_of_one_attribute_chain_up(
    client: Client, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    await define(sessions, "seats", "number")
    ann = await rows.seen_contact("Ann")
    results = await asyncio.gather(
        *(patch(client, agent, ann.id, {"attributes": {"seats": n}}) for n in range(6))
    )
    assert [status for status, _ in results] == [200] * 6
    changes = [
        item["data"]["seats"]
        for item in await timeline(client, agent, ann.id)
        if item["kind"] == "contact.attributes_changed"
    ]
    # Each change starts from what the previous one left: one chain, nothing lost.
    assert changes[0]["from"] is None
    assert all(prev["to"] == this["from"] for prev, this in itertools.pairwise(changes))
    response = await client.get(f"/api/v1/contacts/{ann.id}", headers=agent.headers)
    assert (await response.json())["attributes"]["seats"] == changes[-1]["to"]


# --- attributes ------------------------------------------------------------------------------


async def test_attributes_partial_typed_and_recorded(
    client: Client, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    await define(sessions, "plan", "select", ["free", "pro"])
    await define(sessions, "renewal", "date")
    await define(sessions, "deal", "money")
    await define(sessions, "vip", "boolean")
    ann = await rows.seen_contact("Ann")
    answer = await ok(
        client,
        agent,
        ann.id,
        {
            "attributes": {
                "plan": "free",
                "renewal": "2025-01-31",
                "deal": {"amount": "99.90", "currency": "USD"},
            }
        },
    )
    assert answer["attributes"] == {
        "plan": "free",
        "renewal": "2025-01-31",
        "deal": {"amount": "99.90", "currency": "USD"},
    }
    answer = await ok(client, agent, ann.id, {"attributes": {"vip": True, "renewal": None}})
    assert answer["attributes"] == {
        "plan": "free",
        "vip": True,
        "deal": {"amount": "99.90", "currency": "USD"},
    }
    changes = [
        item["data"]
        for item in await timeline(client, agent, ann.id)
        if item["kind"] == "contact.attributes_changed"
    ]
    assert changes[1] == {
        "vip": {"from": None, "to": True},
        "renewal": {"from": "2025-01-31", "to": None},
    }


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"nickname": "Annie"}, "attributes.nickname"),
        ({"plan": "enterprise"}, "attributes.plan"),
        ({"plan": 1}, "attributes.plan"),
        ({"Plan": "free"}, "attributes"),
        ({"x" * 65: 1}, "attributes"),
        ({f"k{n}": 1 for n in range(101)}, "attributes"),
    ],
)
async def test_bad_attributes_are_422(
    client: Client,
    agent: ApiUser,
    rows: Rows,
    sessions: SessionFactory,
    attributes: dict[str, Any],
    field: str,
) -> None:
    await define(sessions, "plan", "select", ["free", "pro"])
    ann = await rows.seen_contact("Ann")
    fields = await refused(client, agent, ann.id, {"attributes": attributes})
    assert field in fields, fields
    async with sessions() as session:
        assert await session.get(ContactAttribute, (ann.id, "plan")) is None


# --- what cannot be patched ------------------------------------------------------------------


async def test_merged_and_erased_contacts_are_409(
    client: Client, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    survivor = await rows.seen_contact("Ann")
    merged = await rows.seen_contact("Ann (dup)")
    erased = await rows.seen_contact("Gone")
    async with sessions() as session, session.begin():
        await session.execute(
            update(Contact).where(Contact.id == merged.id).values(merged_into_id=survivor.id)
        )
        await session.execute(
            update(Contact)
            .where(Contact.id == erased.id)
            .values(erased_at=datetime(2024, 1, 1, tzinfo=UTC))
        )
    status, body = await patch(client, agent, merged.id, {"name": "x"})
    assert status == 409
    assert body["error"]["code"] == "conflict"
    assert str(survivor.id) in body["error"]["message"]
    assert "merged" in body["error"]["message"]
    status, body = await patch(client, agent, erased.id, {"name": "x"})
    assert status == 409
    assert "erased" in body["error"]["message"]
    response = await client.get(f"/api/v1/contacts/{merged.id}", headers=agent.headers)
    shown = await response.json()
    # A merged id resolves to the contact it was merged into.
    assert (shown["id"], shown["merged_into_id"], shown["erased"]) == (
        str(survivor.id),
        None,
        False,
    )
    response = await client.get(f"/api/v1/contacts/{erased.id}", headers=agent.headers)
    assert (await response.json())["erased"] is True


async def test_unknown_and_malformed_ids_are_404(client: Client, agent: ApiUser) -> None:
    for contact_id in (uuid.uuid4(), "not-a-uuid"):
        status, body = await patch(client, agent, contact_id, {"name": "x"})
        assert status == 404, body


async def test_bad_json_and_no_token(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.seen_contact("Ann")
    response = await client.patch(
        f"/api/v1/contacts/{ann.id}", data=b"{nope", headers=agent.headers
    )
    assert response.status == 400
    response = await client.patch(f"/api/v1/contacts/{ann.id}", json={"name": "x"})
    assert response.status == 401


async def test_a_change_is_announced_on_the_bus(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.seen_contact("Ann")
    async with client.app[BUS_KEY].subscribe() as events:
        await ok(client, agent, ann.id, {"add_tags": ["vip"]})
        heard = await events.get(timeout=10)
        await ok(client, agent, ann.id, {"add_tags": ["vip"]})  # no change: nothing said
        await ok(client, agent, ann.id, {"name": "Ann B"})
        second = await events.get(timeout=10)
        # Published before the answer, so already queued if it existed: the no-op in
        # between said nothing, else the name change would still be waiting here.
        extra = await events.get(timeout=0.5)
    assert heard is not None and heard.type == "contact.updated"
    assert heard.data == {"contact_id": str(ann.id)}
    assert second is not None and second.data == {"contact_id": str(ann.id)}
    assert extra is None


# --- the contact as shown --------------------------------------------------------------------


async def test_contact_shape_has_every_crm_field(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    ann = await rows.seen_contact("Ann", [("email", "ann@example.com")])
    response = await client.get(f"/api/v1/contacts/{ann.id}", headers=agent.headers)
    body = await response.json()
    assert {
        "id",
        "name",
        "lifecycle_stage",
        "lost_reason",
        "owner_id",
        "identities",
        "tags",
        "attributes",
        "lifetime_value",
        "preferred_channel_id",
        "language",
        "timezone",
        "reachable_hours",
        "currency",
        "local_time",
        "reachable_now",
        "created_at",
        "last_activity_at",
        "merged_into_id",
        "erased",
    } <= set(body)
    assert body["tags"] == [] and body["attributes"] == {}
    assert body["local_time"] is None and body["reachable_now"] is None
    assert body["erased"] is False


async def test_contact_list_loads_children_in_one_query_per_kind(
    client: Client, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    await define(sessions, "seats", "number")
    for n in range(3):
        contact = await rows.seen_contact(f"c{n}", [("email", f"c{n}@example.com")])
        async with sessions() as session, session.begin():
            session.add(ContactTag(contact_id=contact.id, tag=f"t{n}"))
            session.add(ContactAttribute(contact_id=contact.id, key="seats", number_value=n))

    statements: list[str] = []

    def count(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = client.app[ENGINE_KEY].sync_engine

    async def selects(limit: int) -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            response = await client.get(
                "/api/v1/contacts", params={"limit": limit}, headers=agent.headers
            )
            assert response.status == 200
            page = await response.json()
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(page["items"]) == limit
        return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))

    assert await selects(1) == await selects(3)
    response = await client.get("/api/v1/contacts", headers=agent.headers)
    shown = {item["name"]: item for item in (await response.json())["items"]}
    assert shown["c2"]["tags"] == ["t2"]
    assert shown["c2"]["attributes"] == {"seats": 2.0}
