"""Conversations: the shared inbox's list with filters, one conversation, its messages,
and replies (or private notes) queued through the durable outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from aiohttp import web
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from timeline.models import Attachment, Conversation, Message
from timeline.outbox import UnknownConversation, do_queue_outbound
from web import auth
from web.api import after, children_by_parent, cut, path_id
from web.api.schemas import (
    ConversationOut,
    ConversationQuery,
    Keyset,
    MessageCreate,
    MessageOut,
    MessageQuery,
    Page,
)
from web.errors import not_found, validation_failed
from web.keys import BUS_KEY, DISPATCHER_KEY, SESSIONS_KEY
from web.openapi import ApiRoutes, parse_body, parse_query, respond

routes = ApiRoutes(tag="conversations")


@routes.route(
    "GET",
    "/conversations",
    summary="List conversations, most recent activity first",
    query=ConversationQuery,
    response=Page[ConversationOut],
)
async def list_conversations(request: web.Request) -> web.Response:
    """Conversations matching every given filter."""
    if "label" in request.query:
        # Refused rather than ignored: an ignored filter would answer the wrong list.
        raise validation_failed({"label": "filtering by label is not available yet"})
    query = parse_query(request, ConversationQuery)
    statement = _filtered(select(Conversation), query)
    statement = statement.order_by(
        Conversation.last_activity_at.desc(), Conversation.id.desc()
    ).limit(query.limit + 1)
    position = after(Conversation.last_activity_at, Conversation.id, query.keyset, descending=True)
    if position is not None:
        statement = statement.where(position)
    if (visible := auth.visible_channel_ids(request)) is not None:
        statement = statement.where(Conversation.channel_id.in_(visible))
    async with request.app[SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
    page, next_cursor = cut(
        rows, query.limit, lambda row: Keyset(at=row.last_activity_at, id=row.id)
    )
    items = [ConversationOut.of(row) for row in page]
    return respond(request, Page[ConversationOut](items=items, next_cursor=next_cursor))


def _filtered(statement: Select[Conversation], query: ConversationQuery) -> Select[Conversation]:
    if query.status is not None:
        statement = statement.where(Conversation.status == query.status.value)
    if query.assignee == "none":
        statement = statement.where(Conversation.assignee_id.is_(None))
    elif query.assignee is not None:
        statement = statement.where(Conversation.assignee_id == query.assignee)
    if query.team_id is not None:
        statement = statement.where(Conversation.team_id == query.team_id)
    if query.channel_id is not None:
        statement = statement.where(Conversation.channel_id == query.channel_id)
    if query.contact_id is not None:
        statement = statement.where(Conversation.contact_id == query.contact_id)
    return statement


@routes.route(
    "GET",
    "/conversations/{id}",
    summary="Get a conversation",
    response=ConversationOut,
    errors=[404],
)
async def get_conversation(request: web.Request) -> web.Response:
    """One conversation."""
    conversation_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session:
        conversation = await visible_conversation(session, request, conversation_id)
    return respond(request, ConversationOut.of(conversation))


@routes.route(
    "GET",
    "/conversations/{id}/messages",
    summary="List a conversation's messages, oldest first",
    query=MessageQuery,
    response=Page[MessageOut],
    errors=[404],
)
async def list_messages(request: web.Request) -> web.Response:
    """Messages, notes and activities of a conversation in the order they happened."""
    conversation_id = path_id(request)
    query = parse_query(request, MessageQuery)
    statement = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.sent_at, Message.id)
        .limit(query.limit + 1)
    )
    if (position := after(Message.sent_at, Message.id, query.keyset, descending=False)) is not None:
        statement = statement.where(position)
    async with request.app[SESSIONS_KEY]() as session:
        await visible_conversation(session, request, conversation_id)
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(rows, query.limit, lambda row: Keyset(at=row.sent_at, id=row.id))
        items = await message_outs(session, page)
    return respond(request, Page[MessageOut](items=items, next_cursor=next_cursor))


@routes.route(
    "POST",
    "/conversations/{id}/messages",
    summary="Reply to the customer, or add a private note",
    status=201,
    body=MessageCreate,
    response=MessageOut,
    errors=[404],
)
async def create_message(request: web.Request) -> web.Response:
    """Queue a reply on the conversation's channel (sent by the outbox worker), or store a note."""
    user = auth.current_user(request)
    conversation_id = path_id(request)
    body = await parse_body(request, MessageCreate)
    async with request.app[SESSIONS_KEY]() as session:
        await visible_conversation(session, request, conversation_id)
    try:
        message = await do_queue_outbound(
            request.app[SESSIONS_KEY],
            request.app[BUS_KEY],
            conversation_id=conversation_id,
            text=body.text,
            author_id=user.id,
            private=body.private,
        )
    except UnknownConversation as err:  # deleted since we looked
        raise not_found("no such conversation") from err
    if not body.private and (dispatcher := request.app.get(DISPATCHER_KEY)) is not None:
        dispatcher.wake()  # send now rather than at the dispatcher's next idle poll
    return respond(request, MessageOut.of(message))


async def visible_conversation(
    session: AsyncSession, request: web.Request, conversation_id: uuid.UUID
) -> Conversation:
    """The conversation, if it exists and its channel is visible to the user; else 404."""
    conversation = await session.get(Conversation, conversation_id)
    visible = auth.visible_channel_ids(request)
    if conversation is None or (visible is not None and conversation.channel_id not in visible):
        raise not_found("no such conversation")
    return conversation


async def message_outs(session: AsyncSession, messages: Sequence[Message]) -> list[MessageOut]:
    """Messages as the API shows them, with their attachments (one query for all)."""
    files = await children_by_parent(
        session,
        Attachment,
        Attachment.message_id,
        [message.id for message in messages],
        Attachment.created_at,
        Attachment.id,
    )
    return [MessageOut.of(message, files[message.id]) for message in messages]
