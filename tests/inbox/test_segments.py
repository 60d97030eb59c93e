"""Segment filters: what each condition matches, which filters are refused and why, and a
property test against a reference evaluation in Python, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.registry import REGISTRY
from connectors.types import ChannelId, ExternalId, IdentityKind, Inbound, RawPayload, SenderHandle
from inbox.models import AttributeDefinition
from inbox.money import Money
from inbox.segments import (
    MAX_CONDITIONS,
    MAX_VALUES,
    FilterError,
    SegmentFilters,
    compile_filters,
    count_contacts,
)
from timeline.crypto import SecretBox
from timeline.db import SessionFactory, session_factory
from timeline.events import InProcessBus
from timeline.ingest import Ingestor
from timeline.models import (
    Channel,
    Contact,
    ContactAttribute,
    ContactReachability,
    ContactTag,
    Conversation,
    Identity,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SECRET = "segment-tests-secret-key-0123456789abcdef"

# --- the world every test filters ------------------------------------------------------------

CHANNEL_KINDS = {
    "email": "email",
    "sms": "sms",
    "sms2": "sms",
    "telegram": "telegram",
    "web": "webform",
}
DEFINITIONS: dict[str, tuple[str, list[str] | None]] = {
    "plan": ("select", ["free", "pro", "Pro_%"]),
    "note": ("text", None),
    "score": ("number", None),
    "deal": ("money", None),
    "renewal": ("date", None),
    "vip": ("boolean", None),
}
OWNER_A = uuid.UUID("00000000-0000-4000-8000-00000000000a")
OWNER_B = uuid.UUID("00000000-0000-4000-8000-00000000000b")


@dataclass
class Conv:
    channel: str
    status: str = "open"
    last_inbound_at: datetime | None = None
    last_outbound_at: datetime | None = None


@dataclass
class Person:
    key: str
    name: str | None
    stage: str = "new"
    owner: uuid.UUID | None = None
    identities: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    conversations: list[Conv] = field(default_factory=list)
    refused_on: dict[str, str] = field(default_factory=dict)  # channel -> opted_out/blocked
    created_at: datetime = T0
    erased: bool = False
    merged_into: str | None = None


PEOPLE = [
    Person(
        "ann",
        "Ann Lee",
        "lead",
        OWNER_A,
        [("email", "ann@example.com")],
        ["vip", "50%_off"],
        {
            "plan": "pro",
            "note": "Likes 100% cotton",
            "score": 10.0,
            "deal": (1250, "EUR"),
            "renewal": datetime(2026, 12, 1, tzinfo=UTC),
            "vip": True,
        },
        [Conv("email", "open", T0, T0 + HOUR)],
        created_at=T0 - 10 * DAY,
    ),
    Person(
        "bob",
        "Bob",
        "customer",
        None,
        [("phone", "+14155550100")],
        ["vip"],
        {"score": 3.5, "deal": (900, "USD"), "vip": False},
        [Conv("sms", "resolved", T0 - 5 * DAY, None)],
        refused_on={"sms": "opted_out"},
        created_at=T0 - 5 * DAY,
    ),
    Person(
        "cat",
        "Cat_%",
        "qualified",
        OWNER_B,
        [("telegram", "12345"), ("phone", "+14155550111")],
        ["new"],
        {"plan": "free", "note": "back\\slash", "renewal": datetime(2026, 12, 1, 23, tzinfo=UTC)},
        [Conv("telegram", "pending", None, T0 - 2 * DAY)],
        refused_on={"telegram": "blocked"},
        created_at=T0 - DAY,
    ),
    Person("dan", None, "new", None, [("webform", "visitor-1")], created_at=T0),
    Person(
        "eve",
        "Eve",
        "lost",
        None,
        [("email", "eve@example.org")],
        ["vip"],
        {"score": -2.0},
        [Conv("email", "open", T0 - 9 * DAY, None)],
        created_at=T0 - 30 * DAY,
        erased=True,
    ),
    Person(
        "fay",
        "Fay",
        "lead",
        OWNER_A,
        [("email", "fay@example.net")],
        ["vip"],
        created_at=T0 - 20 * DAY,
        merged_into="ann",
    ),
    Person(
        "gus",
        "GUS",
        "lead",
        OWNER_B,
        [("email", "gus@example.com"), ("phone", "+14155550122")],
        [],
        {"deal": (5000, "EUR"), "renewal": datetime(2027, 1, 1, tzinfo=UTC), "plan": "Pro_%"},
        [Conv("web", "open", T0 + 2 * DAY, None), Conv("email", "resolved", T0 - DAY, T0)],
        created_at=T0 - 3 * DAY,
    ),
]

_VALUE_COLUMN = {
    "text": "text_value",
    "select": "text_value",
    "number": "number_value",
    "date": "date_value",
    "boolean": "bool_value",
}


@dataclass
class World:
    sessions: SessionFactory
    channels: dict[str, uuid.UUID]
    contacts: dict[str, uuid.UUID]


async def build_world(sessions: SessionFactory) -> World:
    box = SecretBox(SECRET)
    channels: dict[str, uuid.UUID] = {}
    contacts: dict[str, uuid.UUID] = {}
    async with sessions() as session, session.begin():
        for name, kind in CHANNEL_KINDS.items():
            channel = Channel(kind=kind, name=name, config_encrypted=box.encrypt({}))
            session.add(channel)
            await session.flush()
            channels[name] = channel.id
        for key, (kind, options) in DEFINITIONS.items():
            session.add(AttributeDefinition(key=key, label=key.title(), type=kind, options=options))
        for person in PEOPLE:
            row = Contact(
                name=person.name,
                lifecycle_stage=person.stage,
                owner_id=person.owner,
                created_at=person.created_at,
                erased_at=T0 if person.erased else None,
                merged_into_id=contacts.get(person.merged_into) if person.merged_into else None,
            )
            session.add(row)
            await session.flush()
            contacts[person.key] = row.id
            for kind, value in person.identities:
                session.add(Identity(contact_id=row.id, kind=kind, value=value))
            for tag in person.tags:
                session.add(ContactTag(contact_id=row.id, tag=tag))
            for key, value in person.attributes.items():
                attribute = ContactAttribute(contact_id=row.id, key=key)
                if DEFINITIONS[key][0] == "money":
                    attribute.money_minor, attribute.currency = value
                else:
                    setattr(attribute, _VALUE_COLUMN[DEFINITIONS[key][0]], value)
                session.add(attribute)
            for conv in person.conversations:
                session.add(
                    Conversation(
                        contact_id=row.id,
                        channel_id=channels[conv.channel],
                        status=conv.status,
                        last_inbound_at=conv.last_inbound_at,
                        last_outbound_at=conv.last_outbound_at,
                    )
                )
            for channel_name, how in person.refused_on.items():
                session.add(
                    ContactReachability(
                        channel_id=channels[channel_name],
                        contact_id=row.id,
                        opted_out=how == "opted_out",
                        blocked=how == "blocked",
                    )
                )
    return World(sessions, channels, contacts)


@pytest.fixture
async def world(engine: AsyncEngine) -> World:
    return await build_world(session_factory(engine))


async def matched(
    world: World, filters: SegmentFilters, visible: frozenset[uuid.UUID] | None = None
) -> set[str]:
    """The keys of the people `filters` match, checked against the count."""
    by_id = {contact_id: key for key, contact_id in world.contacts.items()}
    async with world.sessions() as session:
        condition = await compile_filters(session, filters, visible=visible)
        ids = list(await session.scalars(select(Contact.id).where(condition)))
        count = await count_contacts(session, filters, visible=visible)
    assert count == len(ids) == len(set(ids))
    return {by_id[contact_id] for contact_id in ids}


async def match(world: World, **filters: Any) -> set[str]:
    return await matched(world, SegmentFilters.model_validate(filters))


# --- a reference evaluation in Python --------------------------------------------------------


def _lower(text: str) -> str:
    # Case-insensitive matching is ASCII-only on SQLite; the generated texts stay there.
    return text.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))


def _compare(left: Any, op: str, right: Any) -> bool:
    outcomes: dict[str, bool] = {
        "eq": left == right,
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
    }
    return outcomes[op]


def _attribute_holds(person: Person, condition: dict[str, Any]) -> bool:
    key, op = condition["key"], condition["op"]
    value: Any = condition.get("value")
    kind = DEFINITIONS[key][0]
    stored = person.attributes.get(key)
    if op == "is_set":
        return stored is not None
    if op == "is_not_set":
        return stored is None
    if op == "neq":
        return bool(stored != value)
    if stored is None:
        return False
    if kind in ("text", "select"):
        if op == "eq":
            return bool(stored == value)
        if op == "in":
            return stored in value
        return _lower(value) in _lower(stored)  # contains
    if kind == "number":
        return _compare(stored, op, float(value))
    if kind == "money":
        minor, currency = stored
        wanted = Money.parse(value["amount"], value["currency"])
        return currency == wanted.currency and _compare(minor, op, wanted.minor)
    if kind == "date":
        start = datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
        if op == "before":
            return bool(stored < start)
        if op == "after":
            return bool(stored >= start + DAY)
        return bool(start <= stored < start + DAY)
    return bool(stored == value)  # boolean "is"


def _reachable(person: Person, channels: Sequence[str]) -> bool:
    held = {kind for kind, _ in person.identities}
    for channel in channels:
        recipient = REGISTRY[CHANNEL_KINDS[channel]].recipient_kind  # type: ignore[index]
        if recipient is not None and recipient.value in held and channel not in person.refused_on:
            return True
    return False


def _tags(filters: dict[str, Any], name: str) -> set[str]:
    return {tag.strip().lower() for tag in filters.get(name, ())}


def _latest(person: Person, attribute: str) -> datetime | None:
    times = [getattr(conv, attribute) for conv in person.conversations]
    present = [moment for moment in times if moment is not None]
    return max(present) if present else None


def expected(world: World, filters: dict[str, Any]) -> set[str]:
    """Which people `filters` should match, evaluated without SQL."""
    names_of = {contact_id: name for name, contact_id in world.channels.items()}
    keep = set()
    for person in PEOPLE:
        f = filters
        checks = [
            person.merged_into is None,
            not person.erased or f.get("include_erased", False),
            not f.get("stages") or person.stage in f["stages"],
            f.get("owner_id") is None
            or (person.owner is None if f["owner_id"] == "none" else person.owner == f["owner_id"]),
            _tags(f, "tags_all") <= set(person.tags),
            not f.get("tags_any") or bool(_tags(f, "tags_any") & set(person.tags)),
            not _tags(f, "tags_none") & set(person.tags),
            all(_attribute_holds(person, c) for c in f.get("attributes", ())),
            not f.get("reachable_on")
            or _reachable(person, [names_of[c] for c in f["reachable_on"] if c in names_of]),
            not f.get("reachable_on_kinds")
            or _reachable(
                person, [n for n, k in CHANNEL_KINDS.items() if k in f["reachable_on_kinds"]]
            ),
            f.get("q") is None
            or _lower(f["q"]) in _lower(person.name or "")
            or any(_lower(f["q"]) in _lower(value) for _, value in person.identities),
            f.get("has_open_conversation") is None
            or f["has_open_conversation"]
            == any(conv.status != "resolved" for conv in person.conversations),
            f.get("created_after") is None or person.created_at > f["created_after"],
            f.get("created_before") is None or person.created_at < f["created_before"],
        ]
        for prefix, attribute in (
            ("last_inbound", "last_inbound_at"),
            ("last_outbound", "last_outbound_at"),
        ):
            latest = _latest(person, attribute)
            if (bound := f.get(f"{prefix}_after")) is not None:
                checks.append(latest is not None and latest > bound)
            if (bound := f.get(f"{prefix}_before")) is not None:
                checks.append(latest is not None and latest < bound)
        if all(checks):
            keep.add(person.key)
    return keep


# --- conditions, one by one ------------------------------------------------------------------


async def test_no_condition_matches_every_live_contact(world: World) -> None:
    assert await match(world) == {"ann", "bob", "cat", "dan", "gus"}
    assert await match(world, include_erased=True) == {"ann", "bob", "cat", "dan", "gus", "eve"}


async def test_stage_owner_and_tags(world: World) -> None:
    assert await match(world, stages=["lead", "lost"]) == {"ann", "gus"}
    assert await match(world, owner_id=str(OWNER_A)) == {"ann"}
    assert await match(world, owner_id="none") == {"bob", "dan"}
    assert await match(world, tags_all=["vip", "50%_off"]) == {"ann"}
    assert await match(world, tags_all=["vip", "vip"]) == {"ann", "bob"}
    assert await match(world, tags_any=["new", "50%_off"]) == {"ann", "cat"}
    assert await match(world, tags_none=["vip"]) == {"cat", "dan", "gus"}
    # Tags are stored lower-cased, so the filter is too.
    assert await match(world, tags_any=[" VIP "]) == {"ann", "bob"}
    # A tag is matched whole: the wildcard characters in it are plain characters.
    assert await match(world, tags_any=["50%%_off", "5_%"]) == set()


async def test_text_and_select_attributes(world: World) -> None:
    def cond(key: str, op: str, value: Any) -> dict[str, Any]:
        return {"attributes": [{"key": key, "op": op, "value": value}]}

    assert await match(world, **cond("plan", "eq", "pro")) == {"ann"}
    # neq also matches contacts without the attribute.
    assert await match(world, **cond("plan", "neq", "pro")) == {"bob", "cat", "dan", "gus"}
    assert await match(world, **cond("plan", "in", ["free", "Pro_%"])) == {"cat", "gus"}
    # contains is case-insensitive and takes % _ \ literally.
    assert await match(world, **cond("plan", "contains", "PRO")) == {"ann", "gus"}
    assert await match(world, **cond("plan", "contains", "o_%")) == {"gus"}
    assert await match(world, **cond("note", "contains", "100%")) == {"ann"}
    assert await match(world, **cond("note", "contains", "0% c")) == {"ann"}
    assert await match(world, **cond("note", "contains", "_")) == set()
    assert await match(world, **cond("note", "contains", "k\\s")) == {"cat"}
    assert await match(world, **cond("note", "is_set", None)) == {"ann", "cat"}
    assert await match(world, **cond("note", "is_not_set", None)) == {"bob", "dan", "gus"}


async def test_number_money_date_and_boolean_attributes(world: World) -> None:
    def cond(key: str, op: str, value: Any) -> dict[str, Any]:
        return {"attributes": [{"key": key, "op": op, "value": value}]}

    assert await match(world, **cond("score", "gt", 3.5)) == {"ann"}
    assert await match(world, **cond("score", "gte", 3.5)) == {"ann", "bob"}
    assert await match(world, **cond("score", "lt", 10)) == {"bob"}
    assert await match(world, **cond("score", "eq", 10)) == {"ann"}
    # Money compares only within its currency: 900 USD is not less than 1000 EUR.
    euros = {"amount": "10.00", "currency": "EUR"}
    assert await match(world, **cond("deal", "gt", euros)) == {"ann", "gus"}
    assert await match(world, **cond("deal", "lt", euros)) == set()
    assert await match(world, **cond("deal", "lte", {"amount": "9", "currency": "usd"})) == {"bob"}
    # Dates are UTC days: 2026-12-01T23:00Z is still on the 1st.
    assert await match(world, **cond("renewal", "on", "2026-12-01")) == {"ann", "cat"}
    assert await match(world, **cond("renewal", "after", "2026-12-01")) == {"gus"}
    assert await match(world, **cond("renewal", "before", "2026-12-02")) == {"ann", "cat"}
    assert await match(world, **cond("renewal", "before", "2026-12-01")) == set()
    assert await match(world, **cond("renewal", "after", "9999-12-31")) == set()
    assert await match(world, **cond("renewal", "on", "9999-12-31")) == set()
    assert await match(world, **cond("vip", "is", True)) == {"ann"}
    assert await match(world, **cond("vip", "is", False)) == {"bob"}
    assert await match(world, **cond("vip", "is_not_set", None)) == {"cat", "dan", "gus"}


async def test_conditions_combine_with_and(world: World) -> None:
    assert await match(
        world,
        stages=["lead", "customer"],
        tags_any=["vip"],
        attributes=[{"key": "score", "op": "gt", "value": 0}],
    ) == {"ann", "bob"}
    assert await match(
        world,
        attributes=[
            {"key": "deal", "op": "gte", "value": {"amount": "0", "currency": "EUR"}},
            {"key": "plan", "op": "eq", "value": "pro"},
        ],
    ) == {"ann"}


async def test_reachable_on_channels_and_kinds(world: World) -> None:
    channels = world.channels
    # An email channel reaches every email identity, whether or not they wrote there.
    assert await match(world, reachable_on=[str(channels["email"])]) == {"ann", "gus"}
    # Bob opted out of one SMS number, not of the other.
    assert await match(world, reachable_on=[str(channels["sms"])]) == {"cat", "gus"}
    assert await match(world, reachable_on=[str(channels["sms2"])]) == {"bob", "cat", "gus"}
    # Cat blocked the bot: her telegram id reaches nobody.
    assert await match(world, reachable_on=[str(channels["telegram"])]) == set()
    assert await match(world, reachable_on=[str(channels["web"])]) == set()
    assert await match(world, reachable_on=[str(uuid.uuid4())]) == set()
    assert await match(world, reachable_on_kinds=["sms"]) == {"bob", "cat", "gus"}
    assert await match(world, reachable_on_kinds=["telegram"]) == set()
    assert await match(world, reachable_on_kinds=["telegram", "email"]) == {"ann", "gus"}


async def test_last_inbound_outbound_and_created(world: World) -> None:
    # The latest over the contact's conversations; never written: matches neither side.
    assert await match(world, last_inbound_after=T0 - HOUR) == {"ann", "gus"}
    assert await match(world, last_inbound_before=T0 + HOUR) == {"ann", "bob"}
    assert await match(world, last_inbound_before=T0 - 4 * DAY) == {"bob"}
    assert await match(world, last_outbound_after=T0 - 3 * DAY) == {"ann", "cat", "gus"}
    assert await match(world, last_outbound_before=T0) == {"cat"}
    assert await match(
        world, last_outbound_after=T0 - 3 * DAY, last_outbound_before=T0 + 2 * HOUR
    ) == {"ann", "cat", "gus"}
    assert await match(world, created_after=T0 - 4 * DAY, created_before=T0) == {"cat", "gus"}
    # Another offset names the same instant.
    plus_two = timezone(timedelta(hours=2))
    assert await match(world, created_after=(T0 - 4 * DAY).astimezone(plus_two)) == {
        "cat",
        "dan",
        "gus",
    }


async def test_search_and_open_conversations(world: World) -> None:
    assert await match(world, q="lee") == {"ann"}
    assert await match(world, q="EXAMPLE.COM") == {"ann", "gus"}
    assert await match(world, q="+1415555011") == {"cat"}
    assert await match(world, q="_%") == {"cat"}
    assert await match(world, q="%") == {"cat"}
    assert await match(world, has_open_conversation=True) == {"ann", "cat", "gus"}
    assert await match(world, has_open_conversation=False) == {"bob", "dan"}


async def test_visible_channels_narrow_every_filter(world: World) -> None:
    filters = SegmentFilters()
    assert await matched(world, filters, visible=frozenset({world.channels["email"]})) == {
        "ann",
        "gus",
    }
    assert await matched(world, filters, visible=frozenset()) == set()


async def test_contacts_made_by_ingestion_are_found(engine: AsyncEngine, tmp_path: Path) -> None:
    sessions = session_factory(engine)
    box = SecretBox(SECRET)
    async with sessions() as session, session.begin():
        channel = Channel(kind="sms", name="sms", config_encrypted=box.encrypt({}))
        session.add(channel)
    ingestor = Ingestor(
        sessions, InProcessBus(), reopen_window=7 * DAY, data_dir=tmp_path, secret_box=box
    )
    await ingestor.start()
    try:
        result = await ingestor.ingest(
            Inbound(
                channel_id=ChannelId(str(channel.id)),
                external_id=ExternalId("SM1"),
                sender=SenderHandle(IdentityKind.PHONE, "+14155550100", None),
                text="hi",
                sent_at=T0,
                raw=RawPayload("text/plain", b"hi"),
            )
        )
    finally:
        await ingestor.close()
    assert result.status == "created"
    world = World(sessions, {}, {"sender": result.contact_id} if result.contact_id else {})
    assert await match(world, reachable_on=[str(channel.id)], has_open_conversation=True) == {
        "sender"
    }
    # Ingestion stamps arrival time: the filter bounds are taken from what it stored.
    async with sessions() as session:
        arrived = await session.scalar(select(func.max(Conversation.last_inbound_at)))
    assert arrived is not None
    tick = timedelta(microseconds=1)
    assert await match(world, last_inbound_after=arrived - tick) == {"sender"}
    assert await match(world, last_inbound_before=arrived + tick) == {"sender"}
    assert await match(world, last_inbound_before=arrived) == set()
    assert await match(world, last_outbound_after=arrived - DAY) == set()
    assert await match(world, reachable_on_kinds=["email"]) == set()


# --- refused filters -------------------------------------------------------------------------


async def refused(world: World, **filters: Any) -> dict[str, str]:
    async with world.sessions() as session:
        with pytest.raises(FilterError) as caught:
            await compile_filters(session, SegmentFilters.model_validate(filters))
    return caught.value.fields


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ({"key": "nope", "op": "eq", "value": "x"}, "key"),
        ({"key": "plan", "op": "gt", "value": "x"}, "op"),
        ({"key": "score", "op": "contains", "value": "1"}, "op"),
        ({"key": "vip", "op": "eq", "value": True}, "op"),
        ({"key": "renewal", "op": "eq", "value": "2026-12-01"}, "op"),
        ({"key": "plan", "op": "eq", "value": "gold"}, "value"),
        ({"key": "plan", "op": "in", "value": ["free", "gold"]}, "value"),
        ({"key": "plan", "op": "in", "value": "free"}, "value"),
        ({"key": "note", "op": "eq", "value": 3}, "value"),
        ({"key": "note", "op": "contains", "value": ""}, "value"),
        ({"key": "score", "op": "gt", "value": "10"}, "value"),
        ({"key": "score", "op": "gt", "value": True}, "value"),
        ({"key": "deal", "op": "gt", "value": 10}, "value"),
        ({"key": "renewal", "op": "on", "value": "20261201"}, "value"),
        ({"key": "renewal", "op": "on", "value": "2026-13-01"}, "value"),
        ({"key": "renewal", "op": "before", "value": 5}, "value"),
        ({"key": "vip", "op": "is", "value": "yes"}, "value"),
        ({"key": "vip", "op": "is_set", "value": True}, "value"),
    ],
)
async def test_a_condition_that_does_not_fit_is_a_field_error(
    world: World, condition: dict[str, Any], field: str
) -> None:
    fields = await refused(world, attributes=[{"key": "plan", "op": "is_set"}, condition])
    assert list(fields) == [f"attributes.1.{field}"]


async def test_every_misfit_is_reported_at_once(world: World) -> None:
    fields = await refused(
        world,
        attributes=[
            {"key": "nope", "op": "eq", "value": "x"},
            {"key": "score", "op": "eq", "value": 1},
            {"key": "vip", "op": "before", "value": "2026-01-01"},
        ],
    )
    assert set(fields) == {"attributes.0.key", "attributes.2.op"}
    assert "nope" in fields["attributes.0.key"]


def invalid_at(filters: dict[str, Any]) -> set[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        SegmentFilters.model_validate(filters)
    return {error["loc"][: len(error["loc"])] for error in caught.value.errors()}


@pytest.mark.parametrize(
    ("filters", "where"),
    [
        ({"tags_any": ["t"] * (MAX_VALUES + 1)}, ("tags_any",)),
        ({"tags_all": ["x" * 101]}, ("tags_all", 0)),
        ({"tags_none": ["a\x00b"]}, ("tags_none", 0)),
        ({"tags_none": [""]}, ("tags_none", 0)),
        ({"tags_none": ["  "]}, ("tags_none", 0)),
        ({"reachable_on": [str(uuid.uuid4())] * (MAX_VALUES + 1)}, ("reachable_on",)),
        ({"reachable_on": ["not-a-uuid"]}, ("reachable_on", 0)),
        ({"reachable_on_kinds": ["webform"]}, ("reachable_on_kinds",)),
        ({"reachable_on_kinds": ["fax"]}, ("reachable_on_kinds", 0)),
        ({"stages": ["prospect"]}, ("stages", 0)),
        ({"owner_id": "someone"}, ("owner_id",)),
        ({"q": ""}, ("q",)),
        ({"q": "x" * 201}, ("q",)),
        ({"q": "\ud800"}, ("q",)),
        ({"created_after": "2026-01-01T00:00:00"}, ("created_after",)),
        ({"created_after": "0001-01-01T00:00:00+01:00"}, ("created_after",)),
        ({"has_open_conversation": "maybe"}, ("has_open_conversation",)),
        ({"colour": "red"}, ("colour",)),
        ({"attributes": [{"key": "k", "op": "is_set"}] * (MAX_CONDITIONS + 1)}, ("attributes",)),
        ({"attributes": [{"key": "k", "op": "like", "value": "x"}]}, ("attributes", 0, "op")),
        ({"attributes": [{"key": "", "op": "is_set"}]}, ("attributes", 0, "key")),
        ({"attributes": [{"key": "k", "op": "eq", "value": "v", "x": 1}]}, ("attributes", 0, "x")),
        (
            {"attributes": [{"key": "k", "op": "in", "value": ["v"] * (MAX_VALUES + 1)}]},
            ("attributes", 0, "value"),
        ),
        (
            {
                "attributes": [
                    {"key": "k", "op": "eq", "value": {"amount": "1", "currency": "EURO"}}
                ]
            },
            ("attributes", 0, "value"),
        ),
        (
            {
                "attributes": [
                    {"key": "k", "op": "eq", "value": {"amount": "1.001", "currency": "EUR"}}
                ]
            },
            ("attributes", 0, "value"),
        ),
    ],
)
def test_malformed_filters_are_refused_where_they_are_wrong(
    filters: dict[str, Any], where: tuple[str | int, ...]
) -> None:
    locations = invalid_at(filters)
    assert any(location[: len(where)] == where for location in locations), locations


def test_stored_form_round_trips_and_leaves_defaults_out() -> None:
    filters = SegmentFilters.model_validate(
        {
            "stages": ["lead"],
            "owner_id": str(OWNER_A),
            "created_after": "2026-01-01T02:00:00+02:00",
            "attributes": [
                {"key": "deal", "op": "gt", "value": {"amount": "0.05", "currency": "EUR"}}
            ],
        }
    )
    stored = filters.stored()
    assert set(stored) == {"stages", "owner_id", "created_after", "attributes"}
    assert SegmentFilters.model_validate(stored) == filters
    assert filters.created_after == datetime(2026, 1, 1, tzinfo=UTC)


# --- random filters --------------------------------------------------------------------------

_TEXT = st.text(alphabet="aAbBeElLoOnNpPrR%_\\ .@1+€", min_size=1, max_size=6)
_TAGS = st.lists(st.sampled_from(["vip", "new", "50%_off", "VIP", "x_"]), max_size=3)
_OFFSETS = st.builds(timezone, st.timedeltas(min_value=-23 * HOUR, max_value=23 * HOUR))
_MOMENTS = st.datetimes(
    min_value=datetime(2026, 9, 1), max_value=datetime(2027, 2, 1), timezones=_OFFSETS
) | st.sampled_from([T0, T0 - 5 * DAY, T0 + HOUR, T0 - DAY])
_DAYS = st.dates(min_value=date(2026, 11, 25), max_value=date(2027, 1, 5)).map(date.isoformat)


def _condition_strategy() -> st.SearchStrategy[dict[str, Any]]:
    def of(key: str, ops: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.builds(
            lambda op, value: {"key": key, "op": op, "value": value}, st.sampled_from(ops), values
        )

    options = DEFINITIONS["plan"][1] or []
    numbers = st.integers(-5, 12) | st.floats(-5, 12, allow_nan=False)
    money = st.builds(
        lambda amount, currency: {"amount": amount, "currency": currency},
        st.sampled_from(["0", "9", "10.00", "12.5", "50", "-0.01", "12.49"]),
        st.sampled_from(["EUR", "USD"]),
    )
    presence = st.builds(
        lambda key, op: {"key": key, "op": op},
        st.sampled_from(sorted(DEFINITIONS)),
        st.sampled_from(["is_set", "is_not_set"]),
    )
    return st.one_of(
        of("plan", ["eq", "neq"], st.sampled_from(options)),
        of("plan", ["in"], st.lists(st.sampled_from(options), min_size=1, max_size=3)),
        of("plan", ["contains"], _TEXT),
        of("note", ["eq", "neq", "contains"], _TEXT | st.sampled_from(["Likes 100% cotton"])),
        of("note", ["in"], st.lists(_TEXT, min_size=1, max_size=3)),
        of("score", ["eq", "gt", "gte", "lt", "lte"], numbers),
        of("deal", ["eq", "gt", "gte", "lt", "lte"], money),
        of("renewal", ["before", "after", "on"], _DAYS),
        of("vip", ["is"], st.booleans()),
        presence,
    )


_PARTS: dict[str, st.SearchStrategy[Any]] = {
    "stages": st.lists(
        st.sampled_from(["new", "lead", "qualified", "customer", "lost"]), max_size=3
    ),
    "owner_id": st.sampled_from(["none", OWNER_A, OWNER_B, uuid.UUID(int=7)]),
    "tags_all": _TAGS,
    "tags_any": _TAGS,
    "tags_none": _TAGS,
    "attributes": st.lists(_condition_strategy(), max_size=3),
    "reachable_on_kinds": st.lists(st.sampled_from(["email", "sms", "telegram"]), max_size=2),
    "last_inbound_after": _MOMENTS,
    "last_inbound_before": _MOMENTS,
    "last_outbound_after": _MOMENTS,
    "last_outbound_before": _MOMENTS,
    "created_after": _MOMENTS,
    "created_before": _MOMENTS,
    "q": _TEXT,
    "has_open_conversation": st.booleans(),
    "include_erased": st.booleans(),
}
# A few conditions at a time: with many, almost every filter would match nobody.
# Attribute conditions have the most to get wrong: drawn more often than the rest.
_FILTERS = st.lists(
    st.sampled_from([*sorted(_PARTS), "attributes", "attributes", "attributes"]),
    max_size=3,
    unique=True,
).flatmap(lambda keys: st.fixed_dictionaries({key: _PARTS[key] for key in keys}))


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(filters=_FILTERS, channels=st.lists(st.sampled_from([*CHANNEL_KINDS, "gone"]), max_size=2))
async def test_random_filters_match_what_a_reference_evaluation_says(
    world: World, filters: dict[str, Any], channels: list[str]
) -> None:
    if channels:
        filters["reachable_on"] = [world.channels.get(name, uuid.UUID(int=1)) for name in channels]
    parsed = SegmentFilters.model_validate(filters)
    # The reference evaluation compares instants; give it the validated (UTC) ones.
    reference = {**filters, **{k: v for k, v in parsed if isinstance(v, datetime)}}
    assert await matched(world, parsed) == expected(world, reference)


_ANY_VALUE = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats()
    | _TEXT
    | st.lists(_TEXT, max_size=3)
    | st.fixed_dictionaries(
        {
            "amount": st.sampled_from(["1", "1.5", "1.005", "1e3", "-0", "99999999999999999999"]),
            "currency": st.sampled_from(["EUR", "eur", "EURO", "JPY"]),
        }
    )
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    conditions=st.lists(
        st.fixed_dictionaries(
            {
                "key": st.sampled_from([*DEFINITIONS, "nope"]),
                "op": st.sampled_from(
                    [
                        "eq",
                        "neq",
                        "contains",
                        "in",
                        "gt",
                        "gte",
                        "lt",
                        "lte",
                        "before",
                        "after",
                        "on",
                        "is",
                        "is_set",
                        "is_not_set",
                    ]
                ),
                "value": _ANY_VALUE,
            }
        ),
        min_size=1,
        max_size=3,
    )
)
async def test_any_condition_is_refused_with_a_reason_or_runs(
    world: World, conditions: list[dict[str, Any]]
) -> None:
    try:
        filters = SegmentFilters.model_validate({"attributes": conditions})
    except ValidationError as err:
        # Refused by shape: always with a location inside the conditions.
        assert all(error["loc"][0] == "attributes" for error in err.errors())
        return
    try:
        found = await matched(world, filters)
    except FilterError as err:
        assert err.fields
        assert all(path.startswith("attributes.") for path in err.fields)
        return
    assert found <= {"ann", "bob", "cat", "dan", "gus"}
