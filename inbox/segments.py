"""Segments: saved filters over contacts, and their translation into one SQL condition.

A filter (`SegmentFilters`) is checked in two steps: its shape by pydantic (every list
bounded, so a hostile filter cannot build a gigantic statement), then its attribute
conditions against the attribute definitions, whose type decides which operators fit
(`where_clause` raises `FilterError` with field paths). The condition is plain SQL over
`contacts` with correlated EXISTS subqueries, the same statement on SQLite and PostgreSQL.

All conditions are combined with AND. Merged contacts never match; erased ones only with
`include_erased` (an admin's audit).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)
from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.registry import REGISTRY
from connectors.types import ChannelKind
from inbox.lifecycle import Stage
from inbox.models import AttributeDefinition
from inbox.money import MAX_AMOUNT_LENGTH, Money, MoneyError, check_currency, to_minor
from inbox.user_ref import UserIdOrNone
from timeline.models import (
    Channel,
    Contact,
    ContactAttribute,
    ContactReachability,
    ContactTag,
    Conversation,
    ConversationStatus,
    Identity,
)

# Bounds of one filter: each list of values, and the attribute conditions.
MAX_VALUES = 100
MAX_CONDITIONS = 20
MAX_TEXT = 1000


# Which operators fit which attribute type; every type also takes is_set / is_not_set.
PRESENCE_OPS = frozenset({"is_set", "is_not_set"})
OPS_BY_TYPE: dict[str, frozenset[str]] = {
    "text": frozenset({"eq", "neq", "contains", "in"}),
    "select": frozenset({"eq", "neq", "contains", "in"}),
    "number": frozenset({"eq", "gt", "gte", "lt", "lte"}),
    "money": frozenset({"eq", "gt", "gte", "lt", "lte"}),
    "date": frozenset({"before", "after", "on"}),
    "boolean": frozenset({"is"}),
}
AttributeOp = Literal[
    "eq", "neq", "contains", "in", "gt", "gte", "lt", "lte", "before", "after", "on", "is",
    "is_set", "is_not_set",
]  # fmt: skip


class FilterError(ValueError):
    """A filter that does not fit the attribute definitions: field path -> reason."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{path}: {reason}" for path, reason in fields.items()))
        self.fields = dict(fields)


def _storable(value: str) -> str:
    # PostgreSQL cannot hold NUL and the driver cannot encode lone surrogates: refused
    # here with the field named, instead of failing the statement.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if any("\ud800" <= char <= "\udfff" for char in value):
        raise ValueError("must not contain lone surrogates")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as err:
        # e.g. 0001-01-01T00:00+01:00 lies before the first representable UTC instant.
        raise ValueError("must be a time that exists in UTC") from err


FilterText = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_storable)]


def _tag(value: str) -> str:
    # Tags are stored stripped and lower-cased (one spelling per tag): filter alike.
    tag = value.strip().lower()
    if not tag:
        raise ValueError("a tag must not be blank")
    return tag


Tag = Annotated[str, Field(max_length=100), AfterValidator(_storable), AfterValidator(_tag)]
Moment = Annotated[AwareDatetime, AfterValidator(_utc)]


class _Strict(BaseModel):
    # Unknown keys are refused, not ignored: an ignored filter answers the wrong contacts.
    model_config = ConfigDict(extra="forbid", frozen=True)


class MoneyValue(_Strict):
    """An amount as the rest of the API writes money: a decimal string and an ISO 4217
    code ({"amount": "12.50", "currency": "EUR"}); compared in minor units."""

    amount: str = Field(max_length=MAX_AMOUNT_LENGTH, examples=["12.50"])
    currency: str = Field(max_length=10, examples=["EUR"])

    @model_validator(mode="after")
    def _exact(self) -> MoneyValue:
        try:
            to_minor(self.amount, check_currency(self.currency))
        except MoneyError as err:
            raise ValueError(str(err)) from err
        return self

    @property
    def money(self) -> Money:
        """The exact amount (currency upper-cased)."""
        return Money.parse(self.amount, self.currency)


AttributeValue = (
    StrictBool
    | StrictInt
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | FilterText
    | Annotated[list[FilterText], Field(min_length=1, max_length=MAX_VALUES)]
    | MoneyValue
    | None
)


class AttributeCondition(_Strict):
    """One condition on a custom attribute; which `op` and `value` fit depends on the
    attribute's type: text/select: eq, neq, contains, in (a list); number: eq, gt, gte,
    lt, lte; money: the same with {"amount": "12.50", "currency": "EUR"} (compared only within that
    currency); date: before, after, on with "YYYY-MM-DD" (UTC days); boolean: is;
    every type: is_set, is_not_set (no value). `neq` also matches contacts without
    the attribute."""

    key: str = Field(min_length=1, max_length=64)
    op: AttributeOp
    value: AttributeValue = None


class SegmentFilters(_Strict):
    """Which contacts a segment holds: every given condition must match (AND)."""

    stages: list[Stage] = Field(
        default_factory=list, max_length=5, description="any of these lifecycle stages"
    )
    owner_id: UserIdOrNone | None = Field(
        default=None, description="the owner's user id, or `none` for unowned contacts"
    )
    tags_all: list[Tag] = Field(default_factory=list, max_length=MAX_VALUES)
    tags_any: list[Tag] = Field(default_factory=list, max_length=MAX_VALUES)
    tags_none: list[Tag] = Field(default_factory=list, max_length=MAX_VALUES)
    attributes: list[AttributeCondition] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    reachable_on: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_VALUES,
        description="channel ids: reachable on any of them (an identity the channel replies "
        "to, not opted out or blocked there)",
    )
    reachable_on_kinds: list[ChannelKind] = Field(
        default_factory=list,
        max_length=len(ChannelKind),
        description="reachable on any channel of any of these kinds",
    )
    last_inbound_after: Moment | None = None
    last_inbound_before: Moment | None = None
    last_outbound_after: Moment | None = None
    last_outbound_before: Moment | None = None
    created_after: Moment | None = None
    created_before: Moment | None = None
    q: FilterText | None = Field(
        default=None, min_length=1, max_length=200, description="name or identity value contains"
    )
    has_open_conversation: bool | None = Field(
        default=None, description="true: has a conversation not resolved; false: has none"
    )
    include_erased: bool = Field(default=False, description="admins only: erased contacts too")

    @field_validator("reachable_on_kinds")
    @classmethod
    def _repliable(cls, kinds: list[ChannelKind]) -> list[ChannelKind]:
        for kind in kinds:
            if REGISTRY[kind].recipient_kind is None:
                raise ValueError(f"{kind.value} channels cannot reach anyone")
        return kinds

    def stored(self) -> dict[str, Any]:
        """The filter as stored in `segments.filters` (JSON; defaults left out)."""
        return self.model_dump(mode="json", exclude_defaults=True)


def attribute_keys(filters: SegmentFilters) -> set[str]:
    """The attribute keys a filter refers to (their definitions are needed to compile it)."""
    return {condition.key for condition in filters.attributes}


async def load_definitions(
    session: AsyncSession, keys: Iterable[str]
) -> dict[str, AttributeDefinition]:
    """The definitions of `keys` that exist."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await session.scalars(
        select(AttributeDefinition).where(AttributeDefinition.key.in_(wanted))
    )
    return {row.key: row for row in rows}


def where_clause(
    filters: SegmentFilters,
    definitions: Mapping[str, AttributeDefinition],
    *,
    visible: frozenset[uuid.UUID] | None = None,
) -> ColumnElement[bool]:
    """The condition over `contacts` that `filters` describe; FilterError when an
    attribute condition does not fit its definition. `visible`: only contacts with a
    conversation on one of these channels (None: every contact)."""
    conditions: list[ColumnElement[bool]] = [Contact.merged_into_id.is_(None)]
    if not filters.include_erased:
        conditions.append(Contact.erased_at.is_(None))
    if visible is not None:
        seen = select(Conversation.contact_id).where(Conversation.channel_id.in_(sorted(visible)))
        conditions.append(Contact.id.in_(seen))
    if filters.stages:
        conditions.append(Contact.lifecycle_stage.in_(sorted(set(filters.stages))))
    if filters.owner_id == "none":
        conditions.append(Contact.owner_id.is_(None))
    elif filters.owner_id is not None:
        conditions.append(Contact.owner_id == filters.owner_id)
    conditions += _tag_conditions(filters)
    conditions += _attribute_conditions(filters.attributes, definitions)
    if filters.reachable_on:
        conditions.append(_reachable(Channel.id.in_(sorted(set(filters.reachable_on)))))
    if filters.reachable_on_kinds:
        kinds = set(filters.reachable_on_kinds)
        conditions.append(_reachable(true(), kinds))
    conditions += _time_conditions(filters)
    if filters.q is not None:
        pattern = _contains(filters.q)
        by_identity = select(Identity.contact_id).where(Identity.value.ilike(pattern, escape="\\"))
        conditions.append(
            or_(Contact.name.ilike(pattern, escape="\\"), Contact.id.in_(by_identity))
        )
    if filters.has_open_conversation is not None:
        unresolved = _has_conversation(Conversation.status != ConversationStatus.RESOLVED.value)
        conditions.append(unresolved if filters.has_open_conversation else not_(unresolved))
    return and_(*conditions)


async def compile_filters(
    session: AsyncSession,
    filters: SegmentFilters,
    *,
    visible: frozenset[uuid.UUID] | None = None,
) -> ColumnElement[bool]:
    """`where_clause` with the definitions it needs loaded from the database."""
    definitions = await load_definitions(session, attribute_keys(filters))
    return where_clause(filters, definitions, visible=visible)


async def count_contacts(
    session: AsyncSession,
    filters: SegmentFilters,
    *,
    visible: frozenset[uuid.UUID] | None = None,
) -> int:
    """How many contacts match `filters` right now (a live count)."""
    condition = await compile_filters(session, filters, visible=visible)
    statement = select(func.count()).select_from(Contact).where(condition)
    return int(await session.scalar(statement) or 0)


# --- the parts -------------------------------------------------------------------------------


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains(text: str) -> str:
    return "%" + _escape_like(text) + "%"


def _tag_conditions(filters: SegmentFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.tags_all:
        wanted = sorted(set(filters.tags_all))
        # (contact_id, tag) is the primary key: counting the wanted tags a contact has
        # is one subquery, however many tags are asked for.
        held = (
            select(func.count())
            .select_from(ContactTag)
            .where(ContactTag.contact_id == Contact.id, ContactTag.tag.in_(wanted))
            .scalar_subquery()
        )
        conditions.append(held == len(wanted))
    if filters.tags_any:
        conditions.append(_has_tag(filters.tags_any))
    if filters.tags_none:
        conditions.append(not_(_has_tag(filters.tags_none)))
    return conditions


def _has_tag(tags: Sequence[str]) -> ColumnElement[bool]:
    return exists().where(
        ContactTag.contact_id == Contact.id, ContactTag.tag.in_(sorted(set(tags)))
    )


def _reachable(
    which_channels: ColumnElement[bool], kinds: Iterable[ChannelKind] | None = None
) -> ColumnElement[bool]:
    """Has an identity that one of the chosen channels replies to, and is neither opted
    out nor blocked on that channel. One subquery per channel kind (of `kinds`, or every
    kind that replies), each reading only the identities of the kind it replies to."""
    parts: list[ColumnElement[bool]] = []
    for kind, spec in REGISTRY.items():
        if spec.recipient_kind is None or (kinds is not None and kind not in kinds):
            continue
        refused = exists().where(
            ContactReachability.channel_id == Channel.id,
            ContactReachability.contact_id == Identity.contact_id,
            or_(ContactReachability.opted_out, ContactReachability.blocked),
        )
        # Uncorrelated, so PostgreSQL hashes it once instead of probing per contact.
        reachable = (
            select(Identity.contact_id)
            .join(Channel, Channel.kind == kind.value)
            .where(Identity.kind == spec.recipient_kind.value, which_channels, not_(refused))
        )
        parts.append(Contact.id.in_(reachable))
    return or_(*parts) if parts else false()


def _has_conversation(*predicates: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(Conversation.contact_id == Contact.id, *predicates)


def _time_conditions(filters: SegmentFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    # The contact's last inbound (outbound) time is the latest over its conversations;
    # a contact never written by (to) matches neither "after" nor "before". Said with
    # EXISTS rather than max() per contact, which PostgreSQL runs as a subplan per row.
    for column, after, before in (
        (Conversation.last_inbound_at, filters.last_inbound_after, filters.last_inbound_before),
        (Conversation.last_outbound_at, filters.last_outbound_after, filters.last_outbound_before),
    ):
        if after is not None:
            conditions.append(_has_conversation(column > after))
        if before is not None:
            conditions.append(_has_conversation(column.is_not(None)))
            conditions.append(not_(_has_conversation(column >= before)))
    if filters.created_after is not None:
        conditions.append(Contact.created_at > filters.created_after)
    if filters.created_before is not None:
        conditions.append(Contact.created_at < filters.created_before)
    return conditions


def _attribute_conditions(
    conditions: Sequence[AttributeCondition], definitions: Mapping[str, AttributeDefinition]
) -> list[ColumnElement[bool]]:
    errors: dict[str, str] = {}
    clauses: list[_Holds] = []
    for index, condition in enumerate(conditions):
        path = f"attributes.{index}"
        definition = definitions.get(condition.key)
        if definition is None:
            errors[f"{path}.key"] = f"no attribute is defined with the key {condition.key!r}"
            continue
        try:
            clauses.append(_attribute_clause(condition, definition))
        except _BadOp as err:
            errors[f"{path}.op"] = str(err)
        except ValueError as err:
            errors[f"{path}.value"] = str(err)
    if errors:
        raise FilterError(errors)
    # A contact has at most one value per attribute, so the positive conditions on one key
    # are one EXISTS: "employees 50..500" probes each contact's row once, where two
    # EXISTS are misestimated by PostgreSQL into tens of thousands of index probes.
    merged: dict[str, list[ColumnElement[bool]]] = {}
    for clause in clauses:
        if not clause.negated:
            merged.setdefault(clause.key, []).extend(clause.predicates)
    return [_exists_value(key, predicates) for key, predicates in merged.items()] + [
        not_(_exists_value(clause.key, clause.predicates)) for clause in clauses if clause.negated
    ]


@dataclass(frozen=True, slots=True)
class _Holds:
    """ "The contact has a value of attribute `key` meeting every predicate" (or, negated,
    has none)."""

    key: str
    predicates: tuple[ColumnElement[bool], ...]
    negated: bool = False

    def negate(self) -> _Holds:
        return dataclasses.replace(self, negated=not self.negated)


def _exists_value(key: str, predicates: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    return exists().where(
        ContactAttribute.contact_id == Contact.id, ContactAttribute.key == key, *predicates
    )


class _BadOp(ValueError):
    """The operator does not fit the attribute's type (reported on `op`, not `value`)."""


# Builds "the contact has a value of this attribute meeting every predicate".
Holds = Callable[..., _Holds]


def _attribute_clause(condition: AttributeCondition, definition: AttributeDefinition) -> _Holds:
    kind, op, value = definition.type, condition.op, condition.value
    allowed = OPS_BY_TYPE.get(kind, frozenset()) | PRESENCE_OPS
    if op not in allowed:
        raise _BadOp(f"{op!r} does not fit a {kind} attribute; use one of {sorted(allowed)}")
    column = _VALUE_COLUMN.get(kind)
    if column is None:
        raise _BadOp(f"attributes of type {kind!r} cannot be filtered on")

    def holds(*predicates: ColumnElement[bool]) -> _Holds:
        return _Holds(definition.key, (column.is_not(None), *predicates))

    if op in PRESENCE_OPS:
        if value is not None:
            raise ValueError(f"{op} takes no value")
        return holds() if op == "is_set" else holds().negate()
    if kind in ("text", "select"):
        return _text_clause(op, value, definition, holds)
    if kind == "number":
        number = _number(value)
        return holds(_compare(ContactAttribute.number_value, op, number))
    if kind == "money":
        if not isinstance(value, MoneyValue):
            raise ValueError('must be {"amount": "12.50", "currency": "EUR"}')
        money = value.money
        return holds(
            ContactAttribute.currency == money.currency,
            _compare(ContactAttribute.money_minor, op, money.minor),
        )
    if kind == "date":
        return _date_clause(op, value, holds)
    if not isinstance(value, bool):  # boolean
        raise ValueError("must be true or false")
    return holds(ContactAttribute.bool_value == value)


_VALUE_COLUMN: dict[str, Any] = {
    "text": ContactAttribute.text_value,
    "select": ContactAttribute.text_value,
    "number": ContactAttribute.number_value,
    "money": ContactAttribute.money_minor,
    "date": ContactAttribute.date_value,
    "boolean": ContactAttribute.bool_value,
}


def _text_clause(op: str, value: object, definition: AttributeDefinition, holds: Holds) -> _Holds:
    column = ContactAttribute.text_value
    options = definition.options if definition.type == "select" else None
    if op == "in":
        if not isinstance(value, list):
            raise ValueError("must be a list of values")
        _check_options(value, options)
        return holds(column.in_(sorted(set(value))))
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if op == "contains":
        if not value:
            raise ValueError("must not be empty")
        return holds(column.ilike(_contains(value), escape="\\"))
    _check_options([value], options)
    has_it = holds(column == value)
    return has_it if op == "eq" else has_it.negate()


def _check_options(values: Sequence[str], options: Sequence[str] | None) -> None:
    if options is None:
        return
    unknown = [value for value in values if value not in options]
    if unknown:
        raise ValueError(f"not an option of this attribute: {', '.join(map(repr, unknown[:5]))}")


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _compare(column: Any, op: str, value: object) -> ColumnElement[bool]:
    comparisons: dict[str, ColumnElement[bool]] = {
        "eq": column == value,
        "gt": column > value,
        "gte": column >= value,
        "lt": column < value,
        "lte": column <= value,
    }
    return comparisons[op]


def _date_clause(op: str, value: object, holds: Holds) -> _Holds:
    if not isinstance(value, str):
        raise ValueError("must be a date, YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError as err:
        raise ValueError("must be a date, YYYY-MM-DD") from err
    if len(value) != 10:  # fromisoformat also takes 20240501 and 2024-W18-3
        raise ValueError("must be a date, YYYY-MM-DD")
    column = ContactAttribute.date_value
    start = datetime.combine(day, time(), tzinfo=UTC)
    # Dates are UTC days; the day after 9999-12-31 does not exist, so it has no end.
    end = None if day == date.max else start + timedelta(days=1)
    if op == "before":
        return holds(column < start)
    if op == "after":
        return holds(column >= end if end is not None else false())
    on = column >= start if end is None else and_(column >= start, column < end)
    return holds(on)
