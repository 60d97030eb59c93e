"""The pipeline board over the REST API: figures per lifecycle stage, cards, paging,
filters and what each user may see."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest

from inbox.money import from_minor
from tests.web.conftest import T0, ApiUser, Client, Rows, minutes
from timeline.db import SessionFactory
from timeline.models import Contact, ContactTag, utcnow

STAGES = ["new", "lead", "qualified", "customer", "lost"]


async def board(client: Client, user: ApiUser, **query: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/pipeline", params=query, headers=user.headers)
    assert response.status == 200, await response.text()
    return {column["stage"]: column for column in (await response.json())["stages"]}


async def _contact(
    rows: Rows,
    sessions: SessionFactory,
    name: str,
    stage: str,
    value: tuple[int, str] | None = None,
    *,
    minute: float = 0,
    owner: uuid.UUID | None = None,
    tags: tuple[str, ...] = (),
    **fields: Any,
) -> Contact:
    """A contact seen by the agent (a conversation on the home channel)."""
    contact = await rows.seen_contact(name, [("email", f"{name.lower()}@example.com")])
    async with sessions() as session, session.begin():
        row = await session.get(Contact, contact.id)
        assert row is not None
        row.lifecycle_stage = stage
        row.lost_reason = "too expensive" if stage == "lost" else None
        row.owner_id = owner
        row.last_activity_at = T0 + minutes(minute)
        if value is not None:
            row.lifetime_value_minor, row.lifetime_value_currency = value
        for key, field_value in fields.items():
            setattr(row, key, field_value)
        session.add_all(ContactTag(contact_id=contact.id, tag=tag) for tag in tags)
    return contact


async def test_each_column_counts_and_sums_exactly_what_a_recount_finds(
    client: Client, admin: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    made = [
        ("Ann", "lead", (1050, "EUR")),
        ("Bob", "lead", (2, "EUR")),
        ("Cyd", "lead", (900, "USD")),
        ("Dan", "lead", None),
        ("Eve", "customer", (2**62, "EUR")),  # far beyond a double's exact integers
        ("Fay", "customer", (1, "EUR")),
        ("Gus", "customer", (1500, "JPY")),
        ("Hal", "lost", (700, "USD")),
        ("Ivy", "new", None),
    ]
    for minute, (name, stage, value) in enumerate(made):
        await _contact(rows, sessions, name, stage, value, minute=minute)
    # Not on the board: merged away, erased, a stage no longer known.
    ann = (await board(client, admin))["lead"]["cards"][-1]
    await _contact(
        rows, sessions, "Merged", "lead", (5, "EUR"), merged_into_id=uuid.UUID(ann["id"])
    )
    await _contact(rows, sessions, "Erased", "customer", (5, "EUR"), erased_at=utcnow())
    await _contact(rows, sessions, "Odd", "prospect", (5, "EUR"))

    columns = await board(client, admin)

    assert list(columns) == STAGES
    counts = Counter(stage for _, stage, _ in made)
    sums: dict[str, Counter[str]] = defaultdict(Counter)
    for _, stage, value in made:
        if value is not None:
            sums[stage][value[1]] += value[0]
    for stage in STAGES:
        column = columns[stage]
        assert column["count"] == counts[stage], stage
        assert {(t["currency"], t["amount"]) for t in column["totals"]} == {
            (code, from_minor(minor, code)) for code, minor in sums[stage].items()
        }, stage
        assert len(column["cards"]) == counts[stage] and column["next_cursor"] is None
    assert columns["qualified"] == {
        "stage": "qualified",
        "count": 0,
        "totals": [],
        "cards": [],
        "next_cursor": None,
    }
    # The currency most of a column's contacts use comes first; the sum is exact.
    assert columns["customer"]["totals"] == [
        {"amount": from_minor(2**62 + 1, "EUR"), "currency": "EUR"},
        {"amount": "1500", "currency": "JPY"},
    ]
    # Cards: newest activity first, with what a card shows.
    assert [card["name"] for card in columns["lead"]["cards"]] == ["Dan", "Cyd", "Bob", "Ann"]
    cyd = columns["lead"]["cards"][1]
    assert cyd["identity"] == "cyd@example.com"
    assert cyd["lifetime_value"] == {"amount": "9.00", "currency": "USD"}
    assert columns["lost"]["cards"][0]["lost_reason"] == "too expensive"
    # Figures alone, for refreshing the headers after a move.
    figures = await board(client, admin, cards=0)
    assert all(figures[s]["cards"] == [] for s in STAGES)
    assert [figures[s]["count"] for s in STAGES] == [columns[s]["count"] for s in STAGES]

    # A move through PATCH /contacts/{id} shows in the figures at once.
    moved = await client.patch(
        f"/api/v1/contacts/{cyd['id']}",
        json={"lifecycle_stage": "qualified"},
        headers=admin.headers,
    )
    assert moved.status == 200, await moved.text()
    after = await board(client, admin, cards=0)
    assert (after["lead"]["count"], after["qualified"]["count"]) == (3, 1)
    assert after["lead"]["totals"] == [{"amount": "10.52", "currency": "EUR"}]
    assert after["qualified"]["totals"] == [{"amount": "9.00", "currency": "USD"}]


async def test_an_agent_sees_only_contacts_of_their_channels(
    client: Client, admin: ApiUser, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    await _contact(rows, sessions, "Mine", "lead", (100, "EUR"))
    other = await rows.contact("Theirs")
    await rows.conversation(other, await rows.channel(name="not the agent's"))
    async with sessions() as session, session.begin():
        row = await session.get(Contact, other.id)
        assert row is not None
        row.lifecycle_stage, row.lifetime_value_minor, row.lifetime_value_currency = (
            "lead",
            900,
            "EUR",
        )

    seen = (await board(client, agent))["lead"]
    everything = (await board(client, admin))["lead"]

    assert (seen["count"], [c["name"] for c in seen["cards"]]) == (1, ["Mine"])
    assert seen["totals"] == [{"amount": "1.00", "currency": "EUR"}]
    assert (everything["count"], everything["totals"]) == (
        2,
        [{"amount": "10.00", "currency": "EUR"}],
    )
    more = await client.get(
        "/api/v1/pipeline/cards", params={"stage": "lead"}, headers=agent.headers
    )
    assert [c["name"] for c in (await more.json())["items"]] == ["Mine"]


async def test_a_column_pages_by_keyset_and_filters_by_owner_and_tag(
    client: Client, admin: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    names = [f"Lead {n}" for n in range(7)]
    for n, name in enumerate(names):
        await _contact(
            rows,
            sessions,
            name,
            "lead",
            minute=n % 3,  # ties on the time: the id orders them
            owner=admin.user.id if n % 2 else None,
            tags=("vip",) if n < 3 else (),
        )
    first = (await board(client, admin, cards=3))["lead"]
    assert first["count"] == 7 and len(first["cards"]) == 3 and first["next_cursor"]

    seen = [card["id"] for card in first["cards"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        response = await client.get(
            "/api/v1/pipeline/cards",
            params={"stage": "lead", "limit": "3", "cursor": cursor},
            headers=admin.headers,
        )
        assert response.status == 200, await response.text()
        page = await response.json()
        seen += [card["id"] for card in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 7
    everything = await board(client, admin, cards=100)
    assert seen == [card["id"] for card in everything["lead"]["cards"]]

    owned = (await board(client, admin, owner_id=str(admin.user.id)))["lead"]
    assert owned["count"] == 3
    assert {c["owner"]["id"] for c in owned["cards"]} == {str(admin.user.id)}
    assert owned["cards"][0]["owner"]["name"] == admin.user.email  # no name: the address
    vip = (await board(client, admin, tag=" VIP "))["lead"]  # tags are kept lower-cased
    assert sorted(c["name"] for c in vip["cards"]) == names[:3]
    assert all(c["tags"] == ["vip"] for c in vip["cards"])
    both = await client.get(
        "/api/v1/pipeline/cards",
        params={"stage": "lead", "tag": "vip", "owner_id": str(admin.user.id)},
        headers=admin.headers,
    )
    assert [c["name"] for c in (await both.json())["items"]] == ["Lead 1"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/pipeline", {"cards": "-1"}, "cards"),
        ("/pipeline", {"cards": "101"}, "cards"),
        ("/pipeline", {"owner_id": "someone"}, "owner_id"),
        ("/pipeline", {"tag": "x" * 101}, "tag"),
        ("/pipeline", {"tag": "  "}, "tag"),
        ("/pipeline", {"stage": "lead"}, "stage"),  # unknown parameter here
        ("/pipeline/cards", {}, "stage"),
        ("/pipeline/cards", {"stage": "prospect"}, "stage"),
        ("/pipeline/cards", {"stage": "lead", "cursor": "not-a-cursor"}, "cursor"),
        ("/pipeline/cards", {"stage": "lead", "limit": "0"}, "limit"),
        ("/pipeline/cards", {"stage": "lead", "limit": "101"}, "limit"),
    ],
)
async def test_bad_input_is_refused_naming_the_parameter(
    client: Client, admin: ApiUser, path: str, query: dict[str, str], field: str
) -> None:
    response = await client.get("/api/v1" + path, params=query, headers=admin.headers)

    assert response.status == 422, await response.text()
    assert field in (await response.json())["error"]["fields"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_board_needs_a_signed_in_user(client: Client) -> None:
    assert (await client.get("/api/v1/pipeline")).status == 401
    assert (await client.get("/api/v1/pipeline/cards?stage=lead")).status == 401
