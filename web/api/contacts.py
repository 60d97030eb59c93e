"""Contacts: search by name or identity, one contact, and its timeline across all channels."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from aiohttp import web
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import IdentityKind
from timeline.identity import normalize_identity
from timeline.merge import resolve_contact_id
from timeline.models import (
    Contact,
    ContactAttribute,
    ContactTag,
    Conversation,
    Identity,
    Message,
    TimelineEvent,
    utcnow,
)
from web import auth
from web.api import after, children_by_parent, cut, path_id
from web.api.conversations import message_outs
from web.api.schemas import (
    ContactOut,
    ContactQuery,
    Keyset,
    MessageOut,
    Page,
    PageQuery,
    TimelineEventOut,
)
from web.errors import not_found, validation_failed
from web.keys import READ_SESSIONS_KEY
from web.openapi import ApiRoutes, parse_query, respond

routes = ApiRoutes(tag="contacts")

_ACTIVITY = Contact.last_activity_at  # with id, the index ix_contacts_last_activity


@routes.route(
    "GET",
    "/contacts",
    summary="List or search contacts, most recent activity first",
    query=ContactQuery,
    response=Page[ContactOut],
)
async def list_contacts(request: web.Request) -> web.Response:
    """Contacts, optionally searched (`q`) or found by one identity (`identity`)."""
    query = parse_query(request, ContactQuery)
    statement = (
        select(Contact)
        .where(Contact.merged_into_id.is_(None))  # a merged record is its survivor now
        .order_by(_ACTIVITY.desc(), Contact.id.desc())
        .limit(query.limit + 1)
    )
    if (position := after(_ACTIVITY, Contact.id, query.keyset, descending=True)) is not None:
        statement = statement.where(position)
    if query.q is not None:
        pattern = "%" + _escape_like(query.q) + "%"
        by_identity = select(Identity.contact_id).where(Identity.value.ilike(pattern, escape="\\"))
        statement = statement.where(
            or_(Contact.name.ilike(pattern, escape="\\"), Contact.id.in_(by_identity))
        )
    if query.identity is not None:
        try:
            kind, value = parse_identity(query.identity)
        except ValueError as err:
            raise validation_failed({"identity": str(err)}) from err
        owner = select(Identity.contact_id).where(
            Identity.kind == kind.value, Identity.value == value
        )
        statement = statement.where(Contact.id.in_(owner))
    if (visible := auth.visible_channel_ids(request)) is not None:
        seen = select(Conversation.contact_id).where(Conversation.channel_id.in_(visible))
        statement = statement.where(Contact.id.in_(seen))
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(
            rows,
            query.limit,
            lambda row: Keyset(at=row.last_activity_at, id=row.id),
        )
        items = await _contact_outs(session, page)
    return respond(request, Page[ContactOut](items=items, next_cursor=next_cursor))


@routes.route("GET", "/contacts/{id}", summary="Get a contact", response=ContactOut, errors=[404])
async def get_contact(request: web.Request) -> web.Response:
    """One contact with its identities."""
    contact_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        # A merged contact's id still resolves: to the contact it was merged into.
        contact_id = await resolve_contact_id(session, contact_id) or contact_id
        contact = await visible_contact(session, request, contact_id)
        [item] = await _contact_outs(session, [contact])
    return respond(request, item)


@routes.route(
    "GET",
    "/contacts/{id}/timeline",
    summary="A contact's timeline across every channel, newest first",
    query=PageQuery,
    response=Page[TimelineEventOut],
    errors=[404],
)
async def contact_timeline(request: web.Request) -> web.Response:
    """Timeline events of a contact, each with its message when it is about one."""
    query = parse_query(request, PageQuery)
    async with request.app[READ_SESSIONS_KEY]() as session:
        contact_id = await resolve_contact_id(session, path_id(request)) or path_id(request)
    event = TimelineEvent
    statement = (
        select(event)
        .where(event.contact_id == contact_id)
        .order_by(event.occurred_at.desc(), event.id.desc())
        .limit(query.limit + 1)
    )
    if (position := after(event.occurred_at, event.id, query.keyset, descending=True)) is not None:
        statement = statement.where(position)
    if (visible := auth.visible_channel_ids(request)) is not None:
        shown = select(Conversation.id).where(Conversation.channel_id.in_(visible))
        statement = statement.where(
            or_(event.conversation_id.is_(None), event.conversation_id.in_(shown))
        )
    async with request.app[READ_SESSIONS_KEY]() as session:
        await visible_contact(session, request, contact_id)
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(
            rows, query.limit, lambda row: Keyset(at=row.occurred_at, id=row.id)
        )
        messages = await _messages_by_id(
            session, [row.message_id for row in page if row.message_id]
        )
    items = [
        TimelineEventOut.of(row, messages.get(row.message_id) if row.message_id else None)
        for row in page
    ]
    return respond(request, Page[TimelineEventOut](items=items, next_cursor=next_cursor))


def parse_identity(raw: str) -> tuple[IdentityKind, str]:
    """`KIND:VALUE` as the identity it names, normalized as ingestion stores it."""
    kind_text, colon, value = raw.partition(":")
    if not colon or not value.strip():
        raise ValueError("use KIND:VALUE, e.g. email:ann@example.com or phone:+14155550100")
    try:
        kind = IdentityKind(kind_text.strip().lower())
    except ValueError as err:
        known = ", ".join(kind.value for kind in IdentityKind)
        raise ValueError(f"unknown identity kind {kind_text!r}; known kinds: {known}") from err
    if kind is IdentityKind.PHONE:
        if value.startswith(" "):
            # An unencoded "+" in a query string arrives as a space (form encoding).
            value = "+" + value.lstrip()
        if not value.startswith("+"):
            # No channel to lend a default region here: the country code must be given.
            raise ValueError("give the number with its country code, e.g. +14155550100")
    # IdentityError is a ValueError: its message says what is wrong with the value.
    return kind, normalize_identity(kind, value, region=None)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def visible_contact(
    session: AsyncSession, request: web.Request, contact_id: uuid.UUID
) -> Contact:
    """The contact, if it exists and the user sees one of its conversations; else 404."""
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise not_found("no such contact")
    if (visible := auth.visible_channel_ids(request)) is not None:
        seen = select(Conversation.id).where(
            Conversation.contact_id == contact_id, Conversation.channel_id.in_(visible)
        )
        if (await session.scalars(seen.limit(1))).first() is None:
            raise not_found("no such contact")
    return contact


async def _contact_outs(session: AsyncSession, contacts: Sequence[Contact]) -> list[ContactOut]:
    """Contacts as the API shows them: one query per kind of child for the whole page."""
    ids = [contact.id for contact in contacts]
    identities = await children_by_parent(
        session, Identity, Identity.contact_id, ids, Identity.created_at, Identity.id
    )
    tags = await children_by_parent(session, ContactTag, ContactTag.contact_id, ids, ContactTag.tag)
    attributes = await children_by_parent(
        session, ContactAttribute, ContactAttribute.contact_id, ids, ContactAttribute.key
    )
    now = utcnow()
    return [
        ContactOut.of(
            contact, identities[contact.id], tags[contact.id], attributes[contact.id], now
        )
        for contact in contacts
    ]


async def _messages_by_id(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, MessageOut]:
    if not ids:
        return {}
    rows = (await session.scalars(select(Message).where(Message.id.in_(ids)))).all()
    return {message.id: message for message in await message_outs(session, rows)}
