"""Custom contact attributes: their definitions, and values checked against them.

A definition (inbox.models.AttributeDefinition) names a key and a type; a contact's value
of it is one `contact_attributes` row with the value in the column of that type, so
segments can filter on any attribute with plain SQL. Values arrive as JSON:

| type    | JSON value                                | column                   |
|---------|-------------------------------------------|--------------------------|
| text    | a string (at most 10,000 characters)      | text_value               |
| number  | a finite number (integers up to 2**53)    | number_value             |
| date    | "YYYY-MM-DD"                              | date_value (UTC midnight)|
| boolean | true or false                             | bool_value               |
| select  | one of the definition's options           | text_value               |
| money   | {"amount": "12.50", "currency": "EUR"}    | money_minor + currency   |

A definition's type cannot change while values of it exist (they would be in the wrong
column); nor can a select lose an option some contact holds.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import AttributeDefinition
from inbox.money import Money, MoneyError
from timeline.models import ContactAttribute

KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_LABEL_LENGTH = 200
MAX_OPTIONS = 100
MAX_OPTION_LENGTH = 200
MAX_TEXT_LENGTH = 10_000
MAX_DEFINITIONS = 200  # the list is answered in one page
# Integers beyond this do not survive a double-precision column exactly.
MAX_EXACT_INTEGER = 2**53

ATTRIBUTES_CHANGED = "contact.attributes_changed"


class AttributeType(enum.StrEnum):
    """What kind of value an attribute holds."""

    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    SELECT = "select"  # text from a fixed list of options
    MONEY = "money"  # an amount with its currency


class AttributeInputError(ValueError):
    """Invalid input about attributes: `fields` maps field paths to what is wrong."""

    def __init__(self, fields: Mapping[str, str], message: str = "invalid attributes") -> None:
        super().__init__(message)
        self.fields = dict(fields)


class DefinitionConflict(Exception):
    """A definition change that stored values forbid, or a key that is taken."""


def check_key(key: str) -> str:
    """The key itself, or ValueError when it is not ^[a-z][a-z0-9_]{0,63}$."""
    if not KEY_PATTERN.fullmatch(key):
        raise ValueError("must start with a-z and hold only a-z, 0-9 and _ (at most 64)")
    return key


def check_options(kind: AttributeType, options: Sequence[str] | None) -> list[str] | None:
    """The options of a select (trimmed, distinct, at least one); None for other types."""
    if kind is not AttributeType.SELECT:
        if options is not None:
            raise AttributeInputError({"options": "only a select attribute has options"})
        return None
    if not options:
        raise AttributeInputError({"options": "a select attribute needs at least one option"})
    cleaned = [option.strip() for option in options]
    if len(cleaned) > MAX_OPTIONS:
        raise AttributeInputError({"options": f"at most {MAX_OPTIONS} options"})
    for option in cleaned:
        if not option or len(option) > MAX_OPTION_LENGTH or _has_control(option):
            raise AttributeInputError(
                {"options": f"options are 1 to {MAX_OPTION_LENGTH} printable characters"}
            )
    if len(set(cleaned)) != len(cleaned):
        raise AttributeInputError({"options": "options must be distinct"})
    return cleaned


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


async def create_definition(
    session: AsyncSession,
    *,
    key: str,
    label: str,
    kind: AttributeType,
    options: Sequence[str] | None,
    now: datetime,
) -> AttributeDefinition:
    """A new definition (flushed). DefinitionConflict when the key exists or too many do."""
    try:
        check_key(key)
    except ValueError as err:
        raise AttributeInputError({"key": str(err)}) from err
    checked = check_options(kind, options)
    if await session.get(AttributeDefinition, key) is not None:
        raise DefinitionConflict(f"an attribute {key!r} is already defined")
    count = await session.scalar(select(func.count()).select_from(AttributeDefinition))
    if (count or 0) >= MAX_DEFINITIONS:
        raise DefinitionConflict(f"at most {MAX_DEFINITIONS} attributes can be defined")
    definition = AttributeDefinition(
        key=key, label=label, type=kind.value, options=checked, created_at=now
    )
    session.add(definition)
    await session.flush()
    return definition


async def update_definition(
    session: AsyncSession,
    definition: AttributeDefinition,
    *,
    label: str | None = None,
    kind: AttributeType | None = None,
    options: Sequence[str] | None = None,
) -> None:
    """Change a definition's label, type or options, as far as stored values allow."""
    new_kind = AttributeType(definition.type) if kind is None else kind
    type_changes = new_kind.value != definition.type
    if type_changes and await _value_count(session, definition.key):
        raise DefinitionConflict(
            f"contacts hold values of {definition.key!r} as {definition.type}: "
            "remove them (or delete the attribute) before changing its type"
        )
    if options is None and new_kind is AttributeType.SELECT:
        options = definition.options
    checked = check_options(new_kind, options)
    if checked is not None and not type_changes:
        await _refuse_dropped_options(session, definition, checked)
    definition.type = new_kind.value
    definition.options = checked
    if label is not None:
        definition.label = label


async def _value_count(session: AsyncSession, key: str) -> int:
    statement = select(func.count()).where(ContactAttribute.key == key)
    return int(await session.scalar(statement) or 0)


async def _refuse_dropped_options(
    session: AsyncSession, definition: AttributeDefinition, options: Sequence[str]
) -> None:
    dropped = set(definition.options or ()) - set(options)
    if not dropped:
        return
    statement = (
        select(ContactAttribute.text_value)
        .where(ContactAttribute.key == definition.key, ContactAttribute.text_value.in_(dropped))
        .limit(1)
    )
    if (held := await session.scalar(statement)) is not None:
        raise DefinitionConflict(
            f"contacts hold the option {held!r} of {definition.key!r}: "
            "change their values before removing it"
        )


async def delete_definition(session: AsyncSession, key: str) -> bool:
    """Delete a definition and every contact's value of it; False when it did not exist."""
    definition = await session.get(AttributeDefinition, key)
    if definition is None:
        return False
    await session.execute(delete(ContactAttribute).where(ContactAttribute.key == key))
    await session.delete(definition)
    await session.flush()
    return True


@dataclass(frozen=True, slots=True)
class Columns:
    """A value in the columns of a contact_attributes row (every other column None)."""

    text_value: str | None = None
    number_value: float | None = None
    date_value: datetime | None = None
    bool_value: bool | None = None
    money_minor: int | None = None
    currency: str | None = None


def convert(definition: AttributeDefinition, value: Any) -> Columns:
    """A JSON value as the columns of `definition`'s type; ValueError saying what is wrong."""
    kind = AttributeType(definition.type)
    if kind in (AttributeType.TEXT, AttributeType.SELECT):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if kind is AttributeType.SELECT:
            if value not in (definition.options or ()):
                raise ValueError("must be one of: " + ", ".join(definition.options or ()))
        elif len(value) > MAX_TEXT_LENGTH:
            raise ValueError(f"at most {MAX_TEXT_LENGTH} characters")
        return Columns(text_value=value)
    if kind is AttributeType.NUMBER:
        # bool is an int in Python, but true is not a number to a client.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        if isinstance(value, int) and abs(value) > MAX_EXACT_INTEGER:
            raise ValueError("integers must be within ±2**53 to be kept exactly")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return Columns(number_value=number)
    if kind is AttributeType.DATE:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError("must be a date as YYYY-MM-DD")
        try:
            day = date.fromisoformat(value)
        except ValueError as err:
            raise ValueError("must be a date as YYYY-MM-DD") from err
        return Columns(date_value=datetime(day.year, day.month, day.day, tzinfo=UTC))
    if kind is AttributeType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return Columns(bool_value=value)
    if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
        raise ValueError('must be {"amount": "12.50", "currency": "EUR"}')
    try:
        money = Money.parse(value["amount"], value["currency"])
    except MoneyError as err:
        raise ValueError(str(err)) from err
    return Columns(money_minor=money.minor, currency=money.currency)


def render(row: ContactAttribute) -> Any:
    """A stored value as the API shows it; the filled column tells its type."""
    if row.money_minor is not None and row.currency is not None:
        return Money(row.money_minor, row.currency).as_json()
    if row.date_value is not None:
        return row.date_value.date().isoformat()
    if row.bool_value is not None:
        return row.bool_value
    if row.number_value is not None:
        return row.number_value
    return row.text_value


async def definitions(session: AsyncSession) -> list[AttributeDefinition]:
    """Every definition, oldest first."""
    statement = select(AttributeDefinition).order_by(
        AttributeDefinition.created_at, AttributeDefinition.key
    )
    return list(await session.scalars(statement))


async def set_attributes(
    session: AsyncSession, contact_id: uuid.UUID, changes: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Set (or, for None, remove) attribute values of a contact; returns {key: {from, to}}
    for what changed. Every bad value is reported at once (AttributeInputError with paths
    `attributes.KEY`), before anything is written."""
    if not changes:
        return {}
    known = {
        row.key: row
        for row in await session.scalars(
            select(AttributeDefinition).where(AttributeDefinition.key.in_(list(changes)))
        )
    }
    errors: dict[str, str] = {}
    converted: dict[str, Columns | None] = {}
    for key, value in changes.items():
        definition = known.get(key)
        if definition is None:
            errors[f"attributes.{key}"] = "no such attribute is defined"
        elif value is None:
            converted[key] = None
        else:
            try:
                converted[key] = convert(definition, value)
            except ValueError as err:
                errors[f"attributes.{key}"] = str(err)
    if errors:
        raise AttributeInputError(errors)
    current = {
        row.key: row
        for row in await session.scalars(
            select(ContactAttribute).where(
                ContactAttribute.contact_id == contact_id,
                ContactAttribute.key.in_(list(converted)),
            )
        )
    }
    diff: dict[str, dict[str, Any]] = {}
    for key, columns in converted.items():
        row = current.get(key)
        before = None if row is None else render(row)
        if columns is None:
            if row is not None:
                await session.delete(row)
                diff[key] = {"from": before, "to": None}
            continue
        if row is None:
            row = ContactAttribute(contact_id=contact_id, key=key)
            session.add(row)
        for field in dataclasses.fields(columns):
            setattr(row, field.name, getattr(columns, field.name))
        after = render(row)
        if after != before:
            diff[key] = {"from": before, "to": after}
    await session.flush()
    return diff
