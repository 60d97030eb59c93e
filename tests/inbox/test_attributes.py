"""Custom attributes: definitions, typed values in their columns, and what values forbid."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from inbox.attributes import (
    MAX_DEFINITIONS,
    MAX_TEXT_LENGTH,
    AttributeInputError,
    AttributeType,
    Columns,
    DefinitionConflict,
    check_key,
    check_options,
    convert,
    create_definition,
    delete_definition,
    render,
    set_attributes,
    update_definition,
)
from inbox.models import AttributeDefinition
from timeline.db import SessionFactory
from timeline.models import Contact, ContactAttribute

NOW = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def definition(kind: str, options: list[str] | None = None) -> AttributeDefinition:
    return AttributeDefinition(key="k", label="K", type=kind, options=options)


@pytest.mark.parametrize(
    ("kind", "value", "columns", "shown"),
    [
        ("text", "hello", Columns(text_value="hello"), "hello"),
        ("text", "", Columns(text_value=""), ""),
        ("number", 42, Columns(number_value=42.0), 42.0),
        ("number", -1.5, Columns(number_value=-1.5), -1.5),
        ("date", "2024-02-29", Columns(date_value=datetime(2024, 2, 29, tzinfo=UTC)), "2024-02-29"),
        ("boolean", False, Columns(bool_value=False), False),
        ("select", "gold", Columns(text_value="gold"), "gold"),
        (
            "money",
            {"amount": "12.5", "currency": "eur"},
            Columns(money_minor=1250, currency="EUR"),
            {"amount": "12.50", "currency": "EUR"},
        ),
    ],
)
def test_values_go_to_their_column_and_render_back(
    kind: str, value: Any, columns: Columns, shown: Any
) -> None:
    defined = definition(kind, ["gold", "silver"] if kind == "select" else None)
    assert convert(defined, value) == columns
    row = ContactAttribute(
        key="k", **{f: getattr(columns, f) for f in Columns.__dataclass_fields__}
    )
    assert render(row) == shown


@pytest.mark.parametrize(
    ("kind", "value", "says"),
    [
        ("text", 5, "string"),
        ("text", "a\x00b", "NUL"),
        ("text", "x" * (MAX_TEXT_LENGTH + 1), "at most"),
        ("number", "5", "number"),
        ("number", True, "number"),
        ("number", float("nan"), "finite"),
        ("number", float("inf"), "finite"),
        ("number", 2**53 + 1, "2\\*\\*53"),
        ("date", "2024-02-30", "YYYY-MM-DD"),
        ("date", "2024-5-1", "YYYY-MM-DD"),
        ("date", "2024-05-01T10:00:00", "YYYY-MM-DD"),
        ("date", 20240501, "YYYY-MM-DD"),
        ("boolean", "true", "true or false"),
        ("boolean", 1, "true or false"),
        ("select", "bronze", "one of"),
        ("select", "Gold", "one of"),
        ("money", "12.50", "amount"),
        ("money", {"amount": 12.5, "currency": "EUR"}, "not a number"),
        ("money", {"amount": "12.505", "currency": "EUR"}, "decimal places"),
        ("money", {"amount": "1", "currency": "EURO"}, "ISO 4217"),
        ("money", {"amount": "1", "currency": "EUR", "extra": 1}, "amount"),
    ],
)
def test_bad_values_say_why(kind: str, value: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        convert(definition(kind, ["gold", "silver"] if kind == "select" else None), value)


@given(value=st.from_type(object).filter(lambda v: not isinstance(v, str | bool)))
def test_number_accepts_only_finite_numbers(value: object) -> None:
    try:
        columns = convert(definition("number"), value)
    except ValueError:
        return
    assert isinstance(value, int | float)
    assert columns.number_value == float(value)


@pytest.mark.parametrize("key", ["a", "deal_size", "x" + "1" * 63])
def test_good_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "1a", "_a", "A", "deal-size", "x" * 65, "é", "a\n"])
def test_bad_keys(key: str) -> None:
    with pytest.raises(ValueError):
        check_key(key)


@pytest.mark.parametrize(
    ("kind", "options", "says"),
    [
        (AttributeType.SELECT, None, "at least one"),
        (AttributeType.SELECT, [], "at least one"),
        (AttributeType.SELECT, ["a", " a "], "distinct"),
        (AttributeType.SELECT, ["a", ""], "printable"),
        (AttributeType.SELECT, ["a\tb"], "printable"),
        (AttributeType.TEXT, ["a"], "only a select"),
    ],
)
def test_bad_options(kind: AttributeType, options: list[str] | None, says: str) -> None:
    with pytest.raises(AttributeInputError) as refused:
        check_options(kind, options)
    assert says in refused.value.fields["options"]


async def make_contact(sessions: SessionFactory) -> Contact:
    async with sessions() as session, session.begin():
        contact = Contact(name="Ann")
        session.add(contact)
    return contact


async def define(
    sessions: SessionFactory, key: str, kind: AttributeType, options: list[str] | None = None
) -> None:
    async with sessions() as session, session.begin():
        await create_definition(
            session, key=key, label=key.title(), kind=kind, options=options, now=NOW
        )


async def set_values(sessions: SessionFactory, contact: Contact, **values: Any) -> dict[str, Any]:
    async with sessions() as session, session.begin():
        return await set_attributes(session, contact.id, values)


async def stored(sessions: SessionFactory, contact: Contact) -> dict[str, Any]:
    async with sessions() as session:
        rows = await session.scalars(
            select(ContactAttribute).where(ContactAttribute.contact_id == contact.id)
        )
        return {row.key: render(row) for row in rows}


async def test_set_change_and_remove_values(sessions: SessionFactory) -> None:
    ann = await make_contact(sessions)
    await define(sessions, "plan", AttributeType.SELECT, ["free", "pro"])
    await define(sessions, "seats", AttributeType.NUMBER)
    await define(sessions, "renewal", AttributeType.DATE)
    await define(sessions, "deal", AttributeType.MONEY)

    diff = await set_values(
        sessions,
        ann,
        plan="free",
        seats=3,
        renewal="2025-01-31",
        deal={"amount": "1500", "currency": "JPY"},
    )
    assert diff == {
        "plan": {"from": None, "to": "free"},
        "seats": {"from": None, "to": 3.0},
        "renewal": {"from": None, "to": "2025-01-31"},
        "deal": {"from": None, "to": {"amount": "1500", "currency": "JPY"}},
    }
    # Partial: only what is sent changes; the same value again is no change.
    assert await set_values(sessions, ann, plan="pro", seats=3) == {
        "plan": {"from": "free", "to": "pro"}
    }
    assert await set_values(sessions, ann, renewal=None) == {
        "renewal": {"from": "2025-01-31", "to": None}
    }
    assert await set_values(sessions, ann, renewal=None) == {}  # already gone
    assert await stored(sessions, ann) == {
        "plan": "pro",
        "seats": 3.0,
        "deal": {"amount": "1500", "currency": "JPY"},
    }


async def test_every_bad_value_is_reported_and_nothing_written(sessions: SessionFactory) -> None:
    ann = await make_contact(sessions)
    await define(sessions, "seats", AttributeType.NUMBER)
    await define(sessions, "vip", AttributeType.BOOLEAN)
    with pytest.raises(AttributeInputError) as refused:
        await set_values(sessions, ann, seats=2, vip="yes", nickname="Annie")
    assert set(refused.value.fields) == {"attributes.vip", "attributes.nickname"}
    assert refused.value.fields["attributes.nickname"] == "no such attribute is defined"
    assert await stored(sessions, ann) == {}


async def test_duplicate_key_is_a_conflict(sessions: SessionFactory) -> None:
    await define(sessions, "plan", AttributeType.TEXT)
    with pytest.raises(DefinitionConflict, match="already defined"):
        await define(sessions, "plan", AttributeType.NUMBER)


async def test_type_change_refused_while_values_exist(sessions: SessionFactory) -> None:
    ann = await make_contact(sessions)
    await define(sessions, "seats", AttributeType.TEXT)
    await set_values(sessions, ann, seats="three")
    async with sessions() as session, session.begin():
        row = await session.get(AttributeDefinition, "seats")
        assert row is not None
        with pytest.raises(DefinitionConflict, match="hold values of 'seats' as text"):
            await update_definition(session, row, kind=AttributeType.NUMBER)
        await update_definition(session, row, label="Seat count")  # a label is fine
    await set_values(sessions, ann, seats=None)
    async with sessions() as session, session.begin():
        row = await session.get(AttributeDefinition, "seats")
        assert row is not None
        await update_definition(session, row, kind=AttributeType.NUMBER)
    async with sessions() as session:
        row = await session.get(AttributeDefinition, "seats")
        assert row is not None
        assert (row.type, row.label) == ("number", "Seat count")


async def test_select_cannot_drop_an_option_in_use(sessions: SessionFactory) -> None:
    ann = await make_contact(sessions)
    await define(sessions, "plan", AttributeType.SELECT, ["free", "pro", "team"])
    await set_values(sessions, ann, plan="pro")
    async with sessions() as session, session.begin():
        row = await session.get(AttributeDefinition, "plan")
        assert row is not None
        with pytest.raises(DefinitionConflict, match="'pro'"):
            await update_definition(session, row, options=["free", "team"])
        await update_definition(session, row, options=["free", "pro", "enterprise"])
        assert row.options == ["free", "pro", "enterprise"]


async def test_changing_to_select_needs_options(sessions: SessionFactory) -> None:
    await define(sessions, "tier", AttributeType.TEXT)
    async with sessions() as session, session.begin():
        row = await session.get(AttributeDefinition, "tier")
        assert row is not None
        with pytest.raises(AttributeInputError):
            await update_definition(session, row, kind=AttributeType.SELECT)
        await update_definition(session, row, kind=AttributeType.SELECT, options=["a", "b"])
        await update_definition(session, row, kind=AttributeType.TEXT)
        assert (row.type, row.options) == ("text", None)


async def test_delete_removes_the_values(sessions: SessionFactory) -> None:
    ann = await make_contact(sessions)
    await define(sessions, "plan", AttributeType.TEXT)
    await define(sessions, "seats", AttributeType.NUMBER)
    await set_values(sessions, ann, plan="pro", seats=2)
    async with sessions() as session, session.begin():
        assert await delete_definition(session, "plan") is True
        assert await delete_definition(session, "plan") is False
    assert await stored(sessions, ann) == {"seats": 2.0}


async def test_number_of_definitions_is_bounded(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        session.add_all(
            AttributeDefinition(key=f"a{n}", label="x", type="text", created_at=NOW)
            for n in range(MAX_DEFINITIONS)
        )
    with pytest.raises(DefinitionConflict, match="at most"):
        await define(sessions, "one_more", AttributeType.TEXT)
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(AttributeDefinition))
    assert count == MAX_DEFINITIONS
