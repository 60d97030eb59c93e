"""Search over contacts and messages, the sidebar's counts and the list rows' previews,
for the agent app's inbox (issue 10).

Everything here is limited to the channels the user may see (`auth.visible_channel_ids`).
Text is matched with LIKE, its wildcards escaped, case-insensitively (ILIKE on
PostgreSQL; on SQLite, LIKE folds ASCII letters only).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from inbox.models import User
from inbox.workflow_models import ConversationLabel
from timeline.models import Channel, Contact, Conversation, Identity, Message, MessageKind
from web import auth
from web.api import children_by_parent
from web.api.search_schemas import (
    PREVIEW_CHARS,
    ContactHit,
    CountsOut,
    CountsQuery,
    LastMessage,
    MessageHit,
    PreviewOut,
    PreviewQuery,
    PreviewsOut,
    SearchOut,
    SearchQuery,
)
from web.keys import READ_SESSIONS_KEY
from web.openapi import ApiRoutes, parse_query, respond

routes = ApiRoutes("search")

MAX_IDENTITIES = 5  # of a contact hit
# What a list row or a search hit previews: what people wrote, not activity lines.
_WRITTEN = (MessageKind.MESSAGE.value, MessageKind.NOTE.value)


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's own characters escaped (by backslash): `50%_off` is literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def snippet(text: str, needle: str, size: int = PREVIEW_CHARS) -> str:
    """At most `size` characters of `text` (whitespace collapsed) around the first match
    of `needle`, with an ellipsis where it was cut."""
    flat = " ".join(text.split())
    if len(flat) <= size:
        return flat
    at = flat.casefold().find(needle.casefold())
    start = max(0, min(at - size // 4, len(flat) - size)) if at >= 0 else 0
    cut = flat[start : start + size - 2].strip()
    return ("…" if start > 0 else "") + cut + ("…" if start + size - 2 < len(flat) else "")


@routes.route(
    "GET",
    "/search",
    summary="Search contacts (name, identities) and messages (text)",
    query=SearchQuery,
    response=SearchOut,
)
async def search(request: web.Request) -> web.Response:
    """Contacts whose name or an identity value contains `q`, most recently active first,
    and messages or notes whose text contains it, newest first: at most `limit` of each,
    only of conversations on channels the user may see."""
    query = parse_query(request, SearchQuery)
    visible = auth.visible_channel_ids(request)
    pattern = like_pattern(query.q)
    async with request.app[READ_SESSIONS_KEY]() as session:
        contacts = await _contact_hits(session, pattern, visible, query.limit + 1)
        messages = await _message_hits(session, pattern, query.q, visible, query.limit + 1)
    return respond(
        request,
        SearchOut(
            contacts=contacts[: query.limit],
            messages=messages[: query.limit],
            more_contacts=len(contacts) > query.limit,
            more_messages=len(messages) > query.limit,
        ),
    )


def _matches(
    column: QueryableAttribute[str] | QueryableAttribute[str | None], pattern: str
) -> ColumnElement[bool]:
    return column.ilike(pattern, escape="\\")


def _visible_conversations(visible: frozenset[uuid.UUID] | None) -> Select[uuid.UUID]:
    statement = select(Conversation.contact_id)
    if visible is not None:
        statement = statement.where(Conversation.channel_id.in_(visible))
    return statement


async def _contact_hits(
    session: AsyncSession, pattern: str, visible: frozenset[uuid.UUID] | None, limit: int
) -> list[ContactHit]:
    by_identity = select(Identity.contact_id).where(_matches(Identity.value, pattern))
    statement = (
        select(Contact)
        .where(
            Contact.merged_into_id.is_(None),
            Contact.erased_at.is_(None),
            (_matches(Contact.name, pattern)) | Contact.id.in_(by_identity),
            Contact.id.in_(_visible_conversations(visible)),
        )
        .order_by(Contact.last_activity_at.desc(), Contact.id.desc())
        .limit(limit)
    )
    contacts = (await session.scalars(statement)).all()
    ids = [contact.id for contact in contacts]
    identities = await children_by_parent(
        session, Identity, Identity.contact_id, ids, Identity.created_at, Identity.id
    )
    latest: dict[uuid.UUID, uuid.UUID] = {}
    if ids:
        conversations = (
            select(Conversation.contact_id, Conversation.id)
            .where(Conversation.contact_id.in_(ids))
            .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        )
        if visible is not None:
            conversations = conversations.where(Conversation.channel_id.in_(visible))
        for contact_id, conversation_id in await session.execute(conversations):
            latest.setdefault(contact_id, conversation_id)
    return [
        ContactHit(
            id=contact.id,
            name=contact.name,
            identities=[f"{i.kind}:{i.value}" for i in identities[contact.id][:MAX_IDENTITIES]],
            conversation_id=latest.get(contact.id),
        )
        for contact in contacts
    ]


async def _message_hits(
    session: AsyncSession,
    pattern: str,
    needle: str,
    visible: frozenset[uuid.UUID] | None,
    limit: int,
) -> list[MessageHit]:
    statement = (
        select(Message, Contact.name, Channel.kind)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Contact, Contact.id == Message.contact_id)
        .join(Channel, Channel.id == Message.channel_id)
        .where(Message.kind.in_(_WRITTEN), _matches(Message.text, pattern))
        .order_by(Message.arrived_at.desc(), Message.id.desc())
        .limit(limit)
    )
    if visible is not None:
        statement = statement.where(Conversation.channel_id.in_(visible))
    return [
        MessageHit(
            id=message.id,
            conversation_id=message.conversation_id,
            contact_id=message.contact_id,
            contact_name=contact_name,
            channel_kind=channel_kind,
            direction=message.direction,
            private=message.private,
            text=snippet(message.text, needle),
            arrived_at=message.arrived_at,
        )
        for message, contact_name, channel_kind in await session.execute(statement)
    ]


@routes.route(
    "GET",
    "/conversations/counts",
    summary="Conversations of one status per sidebar view",
    query=CountsQuery,
    response=CountsOut,
)
async def counts(request: web.Request) -> web.Response:
    """How many conversations of `status` (default open) each view of the sidebar holds,
    in four queries whatever the number of views: mine, unassigned and all together, then
    per team, per channel and per label. Only conversations the user may see count."""
    query = parse_query(request, CountsQuery)
    user = auth.current_user(request)
    visible = auth.visible_channel_ids(request)
    where = [Conversation.status == query.status.value]
    if visible is not None:
        where.append(Conversation.channel_id.in_(visible))
    result: dict[str, int] = {}
    async with request.app[READ_SESSIONS_KEY]() as session:
        total, mine, unassigned = (
            await session.execute(
                select(
                    func.count(),
                    func.coalesce(
                        func.sum(case((Conversation.assignee_id == user.id, 1), else_=0)), 0
                    ),
                    func.coalesce(
                        func.sum(case((Conversation.assignee_id.is_(None), 1), else_=0)), 0
                    ),
                ).where(*where)
            )
        ).one()
        result.update(all=int(total), mine=int(mine), unassigned=int(unassigned))
        groups: Sequence[tuple[str, Select[Any, int]]] = [
            (
                "team",
                select(Conversation.team_id, func.count())
                .where(*where, Conversation.team_id.is_not(None))
                .group_by(Conversation.team_id),
            ),
            (
                "channel",
                select(Conversation.channel_id, func.count())
                .where(*where)
                .group_by(Conversation.channel_id),
            ),
            (
                "label",
                select(ConversationLabel.label, func.count())
                .join(Conversation, Conversation.id == ConversationLabel.conversation_id)
                .where(*where)
                .group_by(ConversationLabel.label),
            ),
        ]
        for prefix, statement in groups:
            for key, number in await session.execute(statement):
                result[f"{prefix}:{key}"] = int(number)
    return respond(request, CountsOut(status=query.status, counts=result))


@routes.route(
    "GET",
    "/conversations/previews",
    summary="What the conversation list shows of each conversation: contact, channel, "
    "assignee, last message",
    query=PreviewQuery,
    response=PreviewsOut,
)
async def previews(request: web.Request) -> web.Response:
    """For each named conversation the user may see (others are left out, as unknown ones
    are): the contact's name (or an identity), the channel, the assignee's name and the
    newest message or note, cut to one line."""
    query = parse_query(request, PreviewQuery)
    ids = query.id_list
    statement = (
        select(Conversation, Contact.name, Channel.kind, Channel.name, User.name, User.email)
        .join(Contact, Contact.id == Conversation.contact_id)
        .join(Channel, Channel.id == Conversation.channel_id)
        .outerjoin(User, User.id == Conversation.assignee_id)
        .where(Conversation.id.in_(ids))
    )
    if (visible := auth.visible_channel_ids(request)) is not None:
        statement = statement.where(Conversation.channel_id.in_(visible))
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.execute(statement)).all()
        found = [row[0].id for row in rows]
        last = await _last_messages(session, found)
        unnamed = [row[0].contact_id for row in rows if not row[1]]
        identities = await children_by_parent(
            session, Identity, Identity.contact_id, unnamed, Identity.created_at, Identity.id
        )
    items = []
    for conversation, contact_name, kind, channel_name, user_name, user_email in rows:
        message = last.get(conversation.id)
        first = identities.get(conversation.contact_id)
        items.append(
            PreviewOut(
                id=conversation.id,
                contact_name=contact_name,
                contact_identity=first[0].value if first else None,
                channel_kind=kind,
                channel_name=channel_name,
                assignee_name=user_name or (user_email.split("@")[0] if user_email else None),
                last_message=None
                if message is None
                else LastMessage(
                    text=snippet(message.text or message.subject or "", ""),
                    direction=message.direction,
                    private=message.private,
                    arrived_at=message.arrived_at,
                    author_id=message.author_id,
                ),
            )
        )
    order = {conversation_id: n for n, conversation_id in enumerate(ids)}
    items.sort(key=lambda item: order[item.id])
    return respond(request, PreviewsOut(items=items))


async def _last_messages(
    session: AsyncSession, conversation_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Message]:
    """The newest message or note of each conversation, by `seq` (ix_messages_conversation_seq)."""
    if not conversation_ids:
        return {}
    newest = (
        select(Message.conversation_id, func.max(Message.seq).label("seq"))
        .where(Message.conversation_id.in_(conversation_ids), Message.kind.in_(_WRITTEN))
        .group_by(Message.conversation_id)
        .subquery()
    )
    statement = select(Message).join(
        newest,
        and_(Message.conversation_id == newest.c.conversation_id, Message.seq == newest.c.seq),
    )
    return {message.conversation_id: message for message in await session.scalars(statement)}
