"""CSV export of the contacts a segment filter matches: one row per contact, streamed page
by page (keyset on contacts.id), so memory stays constant however many contacts match.

The file opens in a spreadsheet as it should: UTF-8 with a byte order mark (Excel reads
UTF-8 only with it), RFC 4180 quoting and CRLF line ends, no NUL. Every cell a spreadsheet
could take for a formula (starting with = + - @ TAB or CR) gets a leading apostrophe
(OWASP "CSV injection"): a contact's name is whatever a stranger typed into a form.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import defaultdict
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import IdentityKind
from inbox.models import AttributeDefinition, User
from inbox.money import MoneyError, from_minor
from inbox.segments import SegmentFilters, where_clause
from timeline.db import SessionFactory
from timeline.models import Contact, ContactAttribute, ContactTag, Identity
from timeline.storable import clean

PAGE_SIZE = 500
BOM = "\ufeff"
MULTI_SEPARATOR = "; "
ATTRIBUTE_PREFIX = "attribute:"

COLUMNS_BEFORE_ATTRIBUTES = (
    "id",
    "name",
    "lifecycle_stage",
    "lost_reason",
    "owner_email",
    "emails",
    "phones",
    "telegram_ids",
    "tags",
)
COLUMNS_AFTER_ATTRIBUTES = (
    "lifetime_value",
    "language",
    "timezone",
    "created_at",
    "last_activity_at",
)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain number (or amount) cannot run as a formula; it keeps its sign unescaped.
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?( [A-Z]{3})?")


def neutralize(cell: str) -> str:
    """A cell a spreadsheet shows as text, never evaluates; NUL removed."""
    cell = clean(cell)
    if cell.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def format_money(minor: int, currency: str) -> str:
    """Minor units as an amount with its currency: 1250, "EUR" -> "12.50 EUR"."""
    try:
        amount = from_minor(minor, currency)
    except MoneyError:
        # Not a code this installation knows (stored by an older version?): the usual
        # two decimals rather than a bare count of minor units someone could misread.
        amount = f"{Decimal(minor).scaleb(-2):.2f}"
    return f"{amount} {currency}"


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, e.g. 2024-05-01T09:00:00Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number(value: float) -> str:
    # 3.0 reads as 3; beyond 2**53 a float is no longer an exact integer, so keep repr.
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


@dataclass(frozen=True, slots=True)
class _Page:
    contacts: Sequence[Contact]
    identities: dict[uuid.UUID, list[Identity]]
    tags: dict[uuid.UUID, list[str]]
    attributes: dict[uuid.UUID, dict[str, ContactAttribute]]
    owner_emails: dict[uuid.UUID, str]


def header(definitions: Sequence[AttributeDefinition]) -> list[str]:
    """The column names: the fixed ones, then one column per defined attribute."""
    return [
        *COLUMNS_BEFORE_ATTRIBUTES,
        *(ATTRIBUTE_PREFIX + definition.key for definition in definitions),
        *COLUMNS_AFTER_ATTRIBUTES,
    ]


def _attribute_cell(row: ContactAttribute | None, definition: AttributeDefinition) -> str:
    if row is None:
        return ""
    kind = definition.type
    if kind in ("text", "select"):
        return row.text_value or ""
    if kind == "number" and row.number_value is not None:
        return _number(row.number_value)
    if kind == "money" and row.money_minor is not None and row.currency:
        return format_money(row.money_minor, row.currency)
    if kind == "date" and row.date_value is not None:
        return row.date_value.astimezone(UTC).date().isoformat()
    if kind == "boolean" and row.bool_value is not None:
        return "true" if row.bool_value else "false"
    return ""


def _row(contact: Contact, page: _Page, definitions: Sequence[AttributeDefinition]) -> list[str]:
    def values(kind: IdentityKind) -> str:
        return MULTI_SEPARATOR.join(
            identity.value for identity in page.identities[contact.id] if identity.kind == kind
        )

    attributes = page.attributes[contact.id]
    lifetime = (
        format_money(contact.lifetime_value_minor, contact.lifetime_value_currency)
        if contact.lifetime_value_minor is not None and contact.lifetime_value_currency
        else ""
    )
    cells = [
        str(contact.id),
        contact.name or "",
        contact.lifecycle_stage,
        contact.lost_reason or "",
        page.owner_emails.get(contact.owner_id, "") if contact.owner_id else "",
        values(IdentityKind.EMAIL),
        values(IdentityKind.PHONE),
        values(IdentityKind.TELEGRAM),
        MULTI_SEPARATOR.join(page.tags[contact.id]),
        *(_attribute_cell(attributes.get(d.key), d) for d in definitions),
        lifetime,
        contact.language or "",
        contact.timezone or "",
        iso_utc(contact.created_at),
        iso_utc(contact.last_activity_at),
    ]
    return [neutralize(cell) for cell in cells]


def _lines(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    # RFC 4180: CRLF line ends, fields with commas, quotes or line breaks quoted.
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


async def _load_page(
    session: AsyncSession,
    condition: ColumnElement[bool],
    after_id: uuid.UUID | None,
    size: int,
    attribute_keys: Sequence[str],
) -> _Page:
    statement = select(Contact).where(condition).order_by(Contact.id).limit(size)
    if after_id is not None:
        statement = statement.where(Contact.id > after_id)
    contacts = (await session.scalars(statement)).all()
    ids = [contact.id for contact in contacts]
    identities: defaultdict[uuid.UUID, list[Identity]] = defaultdict(list)
    tags: defaultdict[uuid.UUID, list[str]] = defaultdict(list)
    attributes: defaultdict[uuid.UUID, dict[str, ContactAttribute]] = defaultdict(dict)
    owner_emails: dict[uuid.UUID, str] = {}
    if ids:
        for identity in await session.scalars(
            select(Identity)
            .where(Identity.contact_id.in_(ids))
            .order_by(Identity.created_at, Identity.id)
        ):
            identities[identity.contact_id].append(identity)
        for contact_id, tag in await session.execute(
            select(ContactTag.contact_id, ContactTag.tag)
            .where(ContactTag.contact_id.in_(ids))
            .order_by(ContactTag.tag)
        ):
            tags[contact_id].append(tag)
        if attribute_keys:
            for attribute in await session.scalars(
                select(ContactAttribute).where(
                    ContactAttribute.contact_id.in_(ids),
                    ContactAttribute.key.in_(attribute_keys),
                )
            ):
                attributes[attribute.contact_id][attribute.key] = attribute
        owner_ids = sorted({contact.owner_id for contact in contacts if contact.owner_id})
        if owner_ids:
            for user_id, email in await session.execute(
                select(User.id, User.email).where(User.id.in_(owner_ids))
            ):
                owner_emails[user_id] = email
    return _Page(contacts, identities, tags, attributes, owner_emails)


async def export_csv(
    sessions: SessionFactory,
    filters: SegmentFilters,
    *,
    visible: frozenset[uuid.UUID] | None = None,
    page_size: int = PAGE_SIZE,
) -> AsyncGenerator[bytes]:
    """The CSV file of the contacts `filters` match, in chunks: the byte order mark and
    header first, then one chunk per page. Raises FilterError on the first chunk when
    the filter does not fit the attribute definitions.

    Each page is read in its own short session, so a slow download holds no database
    connection between pages; contacts are taken in id order after the last one sent.
    """
    async with sessions() as session:
        definitions = list(
            await session.scalars(select(AttributeDefinition).order_by(AttributeDefinition.key))
        )
        by_key = {definition.key: definition for definition in definitions}
        condition = where_clause(filters, by_key, visible=visible)
    keys = [definition.key for definition in definitions]
    yield BOM.encode("utf-8") + _lines([[neutralize(name) for name in header(definitions)]])
    after_id: uuid.UUID | None = None
    while True:
        async with sessions() as session:
            page = await _load_page(session, condition, after_id, page_size, keys)
        if page.contacts:
            yield _lines(_row(contact, page, definitions) for contact in page.contacts)
        if len(page.contacts) < page_size:
            return
        after_id = page.contacts[-1].id
