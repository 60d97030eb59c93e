"""CSV export of a filter's contacts: columns, formats, page-by-page streaming, and cells
a spreadsheet must never evaluate, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbox.contact_csv import (
    BOM,
    COLUMNS_AFTER_ATTRIBUTES,
    COLUMNS_BEFORE_ATTRIBUTES,
    export_csv,
    format_money,
    iso_utc,
    neutralize,
)
from inbox.models import AttributeDefinition, User
from inbox.segments import FilterError, SegmentFilters
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.models import (
    Channel,
    Contact,
    ContactAttribute,
    ContactTag,
    Conversation,
    Identity,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


async def export(sessions: SessionFactory, page_size: int = 500, **filters: object) -> list[bytes]:
    chunks = export_csv(sessions, SegmentFilters.model_validate(filters), page_size=page_size)
    return [chunk async for chunk in chunks]


def parse(chunks: list[bytes]) -> list[dict[str, str]]:
    text = b"".join(chunks).decode("utf-8")
    assert text.startswith(BOM)
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


# --- cells -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+1", "'+1+1"),
        ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-12.50 EUR", "-12.50 EUR"),
        ("-3", "-3"),
        ("+14155550100", "'+14155550100"),
        ("Ann = Bob", "Ann = Bob"),
        ("nul\x00byte", "nulbyte"),
        ("", ""),
    ],
)
def test_formula_like_cells_are_shown_as_text(cell: str, shown: str) -> None:
    assert neutralize(cell) == shown


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_no_cell_can_start_a_formula(cell: str) -> None:
    shown = neutralize(cell)
    assert "\x00" not in shown
    plain = cell.replace("\x00", "")
    assert shown in (plain, "'" + plain)
    if shown.startswith(FORMULA_STARTS):
        float(shown.split(" ")[0])  # only a plain (negative) number may


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (1250, "EUR", "12.50 EUR"),
        (5, "USD", "0.05 USD"),
        (-1250, "EUR", "-12.50 EUR"),
        (0, "EUR", "0.00 EUR"),
        (1250, "JPY", "1250 JPY"),
        (1250, "BHD", "1.250 BHD"),
        (2**63 - 1, "EUR", "92233720368547758.07 EUR"),
        (-(2**63) + 1, "JPY", "-9223372036854775807 JPY"),
        (1250, "XYZ", "12.50 XYZ"),  # a code no longer known: two decimals
    ],
)
def test_money_in_minor_units_is_shown_with_its_currency(
    minor: int, currency: str, shown: str
) -> None:
    assert format_money(minor, currency) == shown


def test_times_are_iso_8601_utc() -> None:
    plus_two = datetime(2026, 11, 1, 11, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    assert iso_utc(plus_two) == "2026-11-01T11:00:00Z"
    assert iso_utc(T0 + timedelta(microseconds=5)) == "2026-11-01T09:00:00.000005Z"


# --- whole files -----------------------------------------------------------------------------


async def test_one_row_per_contact_with_every_column(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        owner = User(email="owner@example.com", role="manager", password_hash="x")
        session.add(owner)
        for key, kind in [
            ("plan", "select"),
            ("score", "number"),
            ("deal", "money"),
            ("renewal", "date"),
            ("vip", "boolean"),
            ("note", "text"),
        ]:
            session.add(AttributeDefinition(key=key, label=key, type=kind))
        await session.flush()
        ann = Contact(
            name='Ann "the, first"\nLee',
            lifecycle_stage="lost",
            lost_reason="=chose a rival",
            owner_id=owner.id,
            lifetime_value_minor=123456,
            lifetime_value_currency="EUR",
            language="de-CH",
            timezone="Europe/Zurich",
            created_at=T0,
            last_activity_at=T0 + timedelta(hours=1),
        )
        bare = Contact(name=None, created_at=T0, last_activity_at=T0)
        session.add_all([ann, bare])
        await session.flush()
        session.add_all(
            [
                Identity(contact_id=ann.id, kind="email", value="ann@example.com"),
                Identity(contact_id=ann.id, kind="email", value="lee@example.com"),
                Identity(contact_id=ann.id, kind="phone", value="+14155550100"),
                Identity(contact_id=ann.id, kind="telegram", value="12345"),
                ContactTag(contact_id=ann.id, tag="vip"),
                ContactTag(contact_id=ann.id, tag="@home"),
                ContactAttribute(contact_id=ann.id, key="plan", text_value="pro"),
                ContactAttribute(contact_id=ann.id, key="score", number_value=3.0),
                ContactAttribute(contact_id=ann.id, key="deal", money_minor=1250, currency="JPY"),
                ContactAttribute(
                    contact_id=ann.id,
                    key="renewal",
                    date_value=datetime(2026, 12, 1, 23, tzinfo=UTC),
                ),
                ContactAttribute(contact_id=ann.id, key="vip", bool_value=False),
                ContactAttribute(contact_id=ann.id, key="note", text_value="-2+3"),
            ]
        )
    rows = parse(await export(sessions))
    attributes = [f"attribute:{key}" for key in ("deal", "note", "plan", "renewal", "score", "vip")]
    assert list(rows[0]) == [*COLUMNS_BEFORE_ATTRIBUTES, *attributes, *COLUMNS_AFTER_ATTRIBUTES]
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == {str(ann.id), str(bare.id)}
    assert by_id[str(ann.id)] == {
        "id": str(ann.id),
        "name": 'Ann "the, first"\nLee',
        "lifecycle_stage": "lost",
        "lost_reason": "'=chose a rival",
        "owner_email": "owner@example.com",
        "emails": "ann@example.com; lee@example.com",
        "phones": "'+14155550100",
        "telegram_ids": "12345",
        "tags": "'@home; vip",
        "attribute:deal": "1250 JPY",
        "attribute:note": "'-2+3",
        "attribute:plan": "pro",
        "attribute:renewal": "2026-12-01",
        "attribute:score": "3",
        "attribute:vip": "false",
        "lifetime_value": "1234.56 EUR",
        "language": "de-CH",
        "timezone": "Europe/Zurich",
        "created_at": "2026-11-01T09:00:00Z",
        "last_activity_at": "2026-11-01T10:00:00Z",
    }
    bare_row = by_id[str(bare.id)]
    assert bare_row["name"] == "" and bare_row["emails"] == "" and bare_row["attribute:vip"] == ""
    assert bare_row["lifecycle_stage"] == "new"


async def test_the_file_is_rfc_4180_with_a_bom(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        session.add(Contact(name="a,b", created_at=T0, last_activity_at=T0))
    data = b"".join(await export(sessions))
    assert data.startswith(BOM.encode("utf-8") + b"id,name,")
    lines = data.split(b"\r\n")
    assert lines[-1] == b""  # every record ends with CRLF
    assert b',"a,b",' in lines[1]
    assert b"\x00" not in data


async def test_streamed_page_by_page_each_contact_once(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        session.add_all(Contact(name=f"c{n}", created_at=T0, last_activity_at=T0) for n in range(7))
    chunks = await export(sessions, page_size=3)
    # The header, then pages of 3, 3 and 1 contacts.
    assert len(chunks) == 4
    assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 3, 3, 1]
    names = [row["name"] for row in parse(chunks)]
    assert sorted(names) == [f"c{n}" for n in range(7)]
    # A last page that is exactly full costs one more (empty) read, and no empty chunk.
    assert [chunk.count(b"\r\n") for chunk in await export(sessions, page_size=7)] == [1, 7]


async def test_only_the_filters_contacts_are_exported(sessions: SessionFactory) -> None:
    box = SecretBox("csv-tests-secret-key-0123456789abcdef")
    async with sessions() as session, session.begin():
        channel = Channel(kind="email", name="mail", config_encrypted=box.encrypt({}))
        lead = Contact(name="Lead", lifecycle_stage="lead")
        other = Contact(name="Other", lifecycle_stage="customer")
        erased = Contact(name="Erased", lifecycle_stage="lead", erased_at=T0)
        session.add_all([channel, lead, other, erased])
        await session.flush()
        merged = Contact(name="Merged", lifecycle_stage="lead", merged_into_id=lead.id)
        session.add(merged)
        session.add(Conversation(contact_id=other.id, channel_id=channel.id))
    assert [row["name"] for row in parse(await export(sessions, stages=["lead"]))] == ["Lead"]
    erased_too = parse(await export(sessions, stages=["lead"], include_erased=True))
    assert sorted(row["name"] for row in erased_too) == ["Erased", "Lead"]
    chunks = export_csv(sessions, SegmentFilters(), visible=frozenset({channel.id}))
    assert [row["name"] for row in parse([chunk async for chunk in chunks])] == ["Other"]
    assert parse(await export(sessions, stages=["qualified"])) == []


async def test_a_filter_that_does_not_fit_fails_before_any_byte(sessions: SessionFactory) -> None:
    chunks = export_csv(
        sessions,
        SegmentFilters.model_validate({"attributes": [{"key": "nope", "op": "is_set"}]}),
    )
    with pytest.raises(FilterError) as caught:
        await anext(chunks)
    assert list(caught.value.fields) == ["attributes.0.key"]


# SQLite only: PostgreSQL cannot store NUL in the first place.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_nul_never_reaches_the_file(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        session.add(Contact(name="a\x00b", created_at=T0, last_activity_at=T0))
    data = b"".join(await export(sessions))
    [row] = parse([data])
    assert row["name"] == "ab"
    assert b"\x00" not in data


async def test_owner_without_a_user_row_leaves_the_cell_empty(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        session.add(Contact(name="x", owner_id=uuid.uuid4()))
    [row] = parse(await export(sessions))
    assert row["owner_email"] == ""
