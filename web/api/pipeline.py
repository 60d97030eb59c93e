"""The lead pipeline: contacts by lifecycle stage with counts and lifetime value per
stage (issue 11, the pipeline board).

The board shows the contacts GET /contacts shows (not merged away; for an agent, only
those with a conversation on one of their channels), less the erased ones: a tombstone
cannot be worked or moved. A card moves with PATCH /contacts/{id} (`lifecycle_stage`),
which records the change on the contact's timeline.

Figures come from one grouped query, by stage and currency: money is summed per
currency in integer minor units (exact on both databases), never converted. Cards are
ordered by last activity, newest first, and paged by keyset within a stage.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from aiohttp import web
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.lifecycle import Stage
from inbox.models import User
from inbox.money import Money
from timeline.models import Contact, ContactTag, Conversation, Identity
from web import auth
from web.api import after, children_by_parent, cut
from web.api.pipeline_schemas import (
    BoardFilters,
    BoardOut,
    BoardQuery,
    CardOwner,
    CardQuery,
    PipelineCard,
    StageColumn,
)
from web.api.schemas import Keyset, MoneyOut, Page
from web.keys import READ_SESSIONS_KEY
from web.openapi import ApiRoutes, parse_query, respond

routes = ApiRoutes(tag="contacts")

_STAGES = [stage.value for stage in Stage]


def _shown(request: web.Request, filters: BoardFilters) -> list[ColumnElement[bool]]:
    """The conditions every query of the board shares: what the user may see, filtered."""
    conditions: list[ColumnElement[bool]] = [
        Contact.merged_into_id.is_(None),
        Contact.erased_at.is_(None),
        Contact.lifecycle_stage.in_(_STAGES),
    ]
    if (visible := auth.visible_channel_ids(request)) is not None:
        seen = select(Conversation.contact_id).where(Conversation.channel_id.in_(visible))
        conditions.append(Contact.id.in_(seen))
    if filters.owner_id is not None:
        conditions.append(Contact.owner_id == filters.owner_id)
    if filters.tag is not None:
        tagged = select(ContactTag.contact_id).where(ContactTag.tag == filters.tag)
        conditions.append(Contact.id.in_(tagged))
    return conditions


@routes.route(
    "GET",
    "/pipeline",
    summary="The pipeline board: per lifecycle stage, its count, lifetime value and first cards",
    query=BoardQuery,
    response=BoardOut,
)
async def pipeline_board(request: web.Request) -> web.Response:
    """Every stage in the pipeline's order, each with its figures and first page of cards."""
    query = parse_query(request, BoardQuery)
    conditions = _shown(request, query)
    async with request.app[READ_SESSIONS_KEY]() as session:
        counts, totals = await _figures(session, conditions)
        firsts: dict[str, list[Contact]] = defaultdict(list)
        if query.cards:
            for row in await _first_cards(session, conditions, query.cards):
                firsts[row.lifecycle_stage].append(row)
        pages = {stage: cut(rows, query.cards, _keyset) for stage, rows in firsts.items()}
        cards = await _cards(session, [row for page, _ in pages.values() for row in page])
    columns = []
    for stage in Stage:
        page, next_cursor = pages.get(stage.value, ([], None))
        columns.append(
            StageColumn(
                stage=stage,
                count=counts.get(stage.value, 0),
                totals=totals.get(stage.value, []),
                cards=[cards[row.id] for row in page],
                next_cursor=next_cursor,
            )
        )
    return respond(request, BoardOut(stages=columns))


@routes.route(
    "GET",
    "/pipeline/cards",
    summary="More cards of one pipeline stage, most recent activity first",
    query=CardQuery,
    response=Page[PipelineCard],
)
async def pipeline_cards(request: web.Request) -> web.Response:
    """The next page of a column ("load more")."""
    query = parse_query(request, CardQuery)
    statement = (
        select(Contact)
        .where(*_shown(request, query), Contact.lifecycle_stage == query.stage.value)
        .order_by(Contact.last_activity_at.desc(), Contact.id.desc())
        .limit(query.limit + 1)
    )
    position = after(Contact.last_activity_at, Contact.id, query.keyset, descending=True)
    if position is not None:
        statement = statement.where(position)
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(rows, query.limit, _keyset)
        cards = await _cards(session, page)
    items = [cards[row.id] for row in page]
    return respond(request, Page[PipelineCard](items=items, next_cursor=next_cursor))


def _keyset(row: Contact) -> Keyset:
    return Keyset(at=row.last_activity_at, id=row.id)


async def _figures(
    session: AsyncSession, conditions: Sequence[ColumnElement[bool]]
) -> tuple[dict[str, int], dict[str, list[MoneyOut]]]:
    """Count and lifetime value per stage, in one query grouped by stage and currency."""
    currency = Contact.lifetime_value_currency
    statement = (
        select(
            Contact.lifecycle_stage,
            currency,
            func.count().label("contacts"),
            func.count(Contact.lifetime_value_minor).label("valued"),
            func.sum(Contact.lifetime_value_minor).label("total"),
        )
        .where(*conditions)
        .group_by(Contact.lifecycle_stage, currency)
    )
    counts: dict[str, int] = defaultdict(int)
    sums: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for row in await session.execute(statement):
        counts[row.lifecycle_stage] += row.contacts
        if row.lifetime_value_currency is not None and row.valued:
            # PostgreSQL sums a BIGINT as NUMERIC (a Decimal here), SQLite as an integer.
            sums[row.lifecycle_stage].append(
                (row.valued, row.lifetime_value_currency, int(row.total))
            )
    totals = {
        stage: [
            MoneyOut(**Money(minor, code).as_json())
            for _, code, minor in sorted(rows, key=lambda r: (-r[0], r[1]))
        ]
        for stage, rows in sums.items()
    }
    return dict(counts), totals


async def _first_cards(
    session: AsyncSession, conditions: Sequence[ColumnElement[bool]], cards: int
) -> Sequence[Contact]:
    """Each stage's first `cards` + 1 contacts (the extra one tells that more exist), in
    one query: numbered within their stage by a window function (SQLite 3.25+, PostgreSQL)."""
    place = (
        func.row_number()
        .over(
            partition_by=Contact.lifecycle_stage,
            order_by=(Contact.last_activity_at.desc(), Contact.id.desc()),
        )
        .label("place")
    )
    numbered = select(Contact.id, place).where(*conditions).subquery()
    statement = (
        select(Contact)
        .join(numbered, and_(numbered.c.id == Contact.id, numbered.c.place <= cards + 1))
        .order_by(Contact.last_activity_at.desc(), Contact.id.desc())
    )
    return (await session.scalars(statement)).all()


async def _cards(
    session: AsyncSession, contacts: Sequence[Contact]
) -> dict[uuid.UUID, PipelineCard]:
    """Contacts as cards by id: one query per kind of child for all of them."""
    ids = [contact.id for contact in contacts]
    identities = await children_by_parent(
        session, Identity, Identity.contact_id, ids, Identity.created_at, Identity.id
    )
    tags = await children_by_parent(session, ContactTag, ContactTag.contact_id, ids, ContactTag.tag)
    owners = await _owners(session, {c.owner_id for c in contacts if c.owner_id is not None})
    cards = {}
    for contact in contacts:
        first = identities[contact.id][0] if identities[contact.id] else None
        minor, code = contact.lifetime_value_minor, contact.lifetime_value_currency
        cards[contact.id] = PipelineCard(
            id=contact.id,
            name=contact.name,
            identity=first.value if first is not None else None,
            lifecycle_stage=Stage(contact.lifecycle_stage),
            lost_reason=contact.lost_reason,
            owner=owners.get(contact.owner_id) if contact.owner_id is not None else None,
            lifetime_value=(
                None if minor is None or code is None else MoneyOut(**Money(minor, code).as_json())
            ),
            tags=[tag.tag for tag in tags[contact.id]],
            last_activity_at=contact.last_activity_at,
        )
    return cards


async def _owners(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, CardOwner]:
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids)))
    return {row.id: CardOwner(id=row.id, name=row.name or row.email) for row in rows}
