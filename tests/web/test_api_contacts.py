"""Contacts over the REST API: search, lookup by identity, one contact, the timeline."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.web.conftest import T0, ApiUser, Client, Rows, minutes


@pytest.fixture
def rows(agent_rows: Rows) -> Rows:
    """The `agent` works every channel made here (membership: test_api_accounts.py)."""
    return agent_rows


async def get_json(client: Client, user: ApiUser, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=user.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def found_names(client: Client, user: ApiUser, **params: Any) -> list[str | None]:
    page = await get_json(client, user, "/api/v1/contacts", **params)
    return [item["name"] for item in page["items"]]


@pytest.mark.parametrize(
    "identity",
    ["email:ann@example.com", "email:Ann@Example.COM", "EMAIL: ANN@EXAMPLE.com "],
)
async def test_find_by_email_whatever_the_casing(
    client: Client, agent: ApiUser, rows: Rows, identity: str
) -> None:
    await rows.seen_contact("Ann", [("email", "ann@example.com")])
    await rows.seen_contact("Bob", [("email", "bob@example.com")])
    assert await found_names(client, agent, identity=identity) == ["Ann"]


@pytest.mark.parametrize(
    "identity",
    ["phone:+14155550100", "phone:+1 (415) 555-0100", "phone:+1-415-555-0100"],
)
async def test_find_by_phone_whatever_the_formatting(
    client: Client, agent: ApiUser, rows: Rows, identity: str
) -> None:
    await rows.seen_contact("Ann", [("phone", "+14155550100")])
    await rows.seen_contact("Bob", [("phone", "+14155550111")])
    assert await found_names(client, agent, identity=identity) == ["Ann"]


async def test_unencoded_plus_in_the_url_still_finds_the_phone(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    await rows.seen_contact("Ann", [("phone", "+14155550100")])
    # A literal "+" in a query string decodes as a space.
    response = await client.get(
        "/api/v1/contacts?identity=phone:+14155550100", headers=agent.headers
    )
    assert [item["name"] for item in (await response.json())["items"]] == ["Ann"]


async def test_find_by_telegram_id_and_unknown_identity(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    await rows.seen_contact("Tg", [("telegram", "123456")])
    assert await found_names(client, agent, identity="telegram:123456") == ["Tg"]
    assert await found_names(client, agent, identity="telegram:654321") == []
    assert await found_names(client, agent, identity="email:nobody@example.com") == []


@pytest.mark.parametrize(
    "identity",
    ["ann@example.com", "fax:123", "phone:4155550100", "email:not-an-address", "telegram:abc"],
)
async def test_malformed_identity_is_422(client: Client, agent: ApiUser, identity: str) -> None:
    response = await client.get(
        "/api/v1/contacts", params={"identity": identity}, headers=agent.headers
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["identity"]


async def test_search_by_name_and_identity_value(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    await rows.seen_contact("Ann Lee", [("email", "ann@lee.example")], last_activity_at=T0)
    await rows.seen_contact(
        "Bob", [("email", "bob@corp.example")], last_activity_at=T0 + minutes(1)
    )
    await rows.seen_contact("100% Carl", [], last_activity_at=T0 + minutes(2))
    assert await found_names(client, agent, q="aNN") == ["Ann Lee"]
    assert await found_names(client, agent, q="CORP.example") == ["Bob"]
    assert await found_names(client, agent, q="example") == ["Bob", "Ann Lee"]
    # LIKE wildcards in the search are literal characters.
    assert await found_names(client, agent, q="100%") == ["100% Carl"]
    assert await found_names(client, agent, q="_") == []


async def test_list_is_newest_activity_first_and_pages(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    for n in range(5):
        await rows.seen_contact(f"c{n}", last_activity_at=T0 + minutes(n))
    await rows.seen_contact("never active")  # sorts by creation time (now): newest
    first = await get_json(client, agent, "/api/v1/contacts", limit=4)
    assert [item["name"] for item in first["items"]] == ["never active", "c4", "c3", "c2"]
    second = await get_json(client, agent, "/api/v1/contacts", limit=4, cursor=first["next_cursor"])
    assert [item["name"] for item in second["items"]] == ["c1", "c0"]
    assert second["next_cursor"] is None


async def test_get_contact_shape(client: Client, agent: ApiUser, rows: Rows) -> None:
    contact = await rows.seen_contact(
        "Ann", [("email", "ann@example.com"), ("phone", "+14155550100")], last_activity_at=T0
    )
    body = await get_json(client, agent, f"/api/v1/contacts/{contact.id}")
    assert body["id"] == str(contact.id)
    assert body["name"] == "Ann"
    assert body["lifecycle_stage"] == "new"
    assert body["last_activity_at"] == "2024-05-01T09:00:00Z"
    assert body["created_at"]
    assert sorted((i["kind"], i["value"]) for i in body["identities"]) == [
        ("email", "ann@example.com"),
        ("phone", "+14155550100"),
    ]
    assert set(body["identities"][0]) == {"kind", "value", "display_name"}

    missing = await client.get(f"/api/v1/contacts/{uuid.uuid4()}", headers=agent.headers)
    assert missing.status == 404


async def test_timeline_pages_without_gaps_or_duplicates(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    contact = await rows.seen_contact("Ann", [("email", "ann@example.com")])
    other = await rows.seen_contact("Bob")
    channel = await rows.channel("email")
    conversation = await rows.conversation(contact, channel)
    message = await rows.message(
        conversation, text="Where is my order?", attachment=("invoice.pdf", "application/pdf", 42)
    )
    # Three events share one timestamp: the id breaks the tie, across the page boundary.
    made = [
        await rows.event(contact, "contact.created", T0),
        await rows.event(contact, "message.received", T0 + minutes(1), message),
        await rows.event(contact, "note", T0 + minutes(1)),
        await rows.event(contact, "note", T0 + minutes(1)),
        await rows.event(contact, "conversation.resolved", T0 + minutes(2)),
    ]
    await rows.event(other, "contact.created", T0 + minutes(1))
    path = f"/api/v1/contacts/{contact.id}/timeline"

    first = await get_json(client, agent, path, limit=3)
    assert len(first["items"]) == 3 and first["next_cursor"]
    second = await get_json(client, agent, path, limit=3, cursor=first["next_cursor"])
    assert second["next_cursor"] is None
    seen = [item["id"] for item in first["items"] + second["items"]]
    expected = sorted(made, key=lambda e: (e.occurred_at, e.id), reverse=True)
    assert seen == [str(event.id) for event in expected]

    with_message = next(i for i in first["items"] + second["items"] if i["message_id"])
    assert with_message["kind"] == "message.received"
    assert with_message["conversation_id"] == str(conversation.id)
    assert with_message["message"]["text"] == "Where is my order?"
    assert with_message["message"]["delivery"] is None
    assert [a["filename"] for a in with_message["message"]["attachments"]] == ["invoice.pdf"]
    assert all(
        i["message"] is None for i in first["items"] + second["items"] if not i["message_id"]
    )


async def test_timeline_of_unknown_contact_is_404(client: Client, agent: ApiUser) -> None:
    response = await client.get(f"/api/v1/contacts/{uuid.uuid4()}/timeline", headers=agent.headers)
    assert response.status == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
        ({"limit": "201"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"colour": "red"}, "colour"),
        ({"q": "ann\x00"}, "q"),  # PostgreSQL cannot compare text holding NUL
        ({"identity": "email:ann\x00@example.com"}, "identity"),
    ],
)
async def test_bad_paging_parameters_are_422(
    client: Client, agent: ApiUser, params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/v1/contacts", params=params, headers=agent.headers)
    assert response.status == 422
    assert list((await response.json())["error"]["fields"]) == [field]
