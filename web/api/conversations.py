"""Conversations: the shared inbox's list with filters, one conversation, its messages,
the channels a reply may go out on, and replies (or private notes) queued through the
durable outbox.

Reads use read-only sessions (they never wait for SQLite's write lock). A reply is
checked against its channel's capabilities before anything is stored, and is queued in
one transaction with its `Idempotency-Key` row when the client sends one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.registry import spec_for
from inbox.reply_channels import NO_CHANNEL, check_reply_channel, reply_channels
from inbox.workflow_models import ConversationLabel, ConversationParticipant, ConversationRead
from timeline.events import Event
from timeline.files import store_blob
from timeline.models import Attachment, Channel, Conversation, Message, TimelineEvent, utcnow
from timeline.outbox import (
    OutboundFile,
    UnknownConversation,
    message_created_event,
    queue_outbound,
)
from timeline.reachability import unreachable_reason
from timeline.reply_limits import reply_refusals
from web import auth
from web.api import after, children_by_parent, cut, idempotency, path_id, publish
from web.api.conversation_views import conversation_out, conversation_outs
from web.api.reply_schemas import ReplyChannelsOut
from web.api.schemas import (
    AttachmentIn,
    ConversationOut,
    ConversationQuery,
    Keyset,
    MessageCreate,
    MessageOut,
    MessageQuery,
    Page,
)
from web.errors import not_found, validation_failed
from web.keys import DISPATCHER_KEY, READ_SESSIONS_KEY, SESSIONS_KEY, SETTINGS_KEY
from web.openapi import ApiRoutes, parse_body, parse_query, respond

routes = ApiRoutes(tag="conversations")

# The timeline event (and bus event) of a reply sent on another channel than its
# conversation's: the timeline shows the switch (issue 9 item 4).
SWITCHED = "reply.channel_switched"


@routes.route(
    "GET",
    "/conversations",
    summary="List conversations, most recent activity first",
    query=ConversationQuery,
    response=Page[ConversationOut],
)
async def list_conversations(request: web.Request) -> web.Response:
    """Conversations matching every given filter; `unread` is the requesting user's."""
    query = parse_query(request, ConversationQuery)
    user = auth.current_user(request)
    statement = _filtered(select(Conversation), query, user.id)
    statement = statement.order_by(
        Conversation.last_activity_at.desc(), Conversation.id.desc()
    ).limit(query.limit + 1)
    position = after(Conversation.last_activity_at, Conversation.id, query.keyset, descending=True)
    if position is not None:
        statement = statement.where(position)
    if (visible := auth.visible_channel_ids(request)) is not None:
        statement = statement.where(Conversation.channel_id.in_(visible))
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(
            rows, query.limit, lambda row: Keyset(at=row.last_activity_at, id=row.id)
        )
        items = await conversation_outs(session, page, user.id)
    return respond(request, Page[ConversationOut](items=items, next_cursor=next_cursor))


def _filtered(
    statement: Select[Conversation], query: ConversationQuery, user_id: uuid.UUID
) -> Select[Conversation]:
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
    if query.priority is not None:
        statement = statement.where(Conversation.priority == query.priority.value)
    # Labels and participants are rows beside the conversation: EXISTS on their indexes.
    if query.label is not None:
        statement = statement.where(
            select(ConversationLabel.conversation_id)
            .where(
                ConversationLabel.label == query.label,
                ConversationLabel.conversation_id == Conversation.id,
            )
            .exists()
        )
    if query.participant is not None:
        statement = statement.where(
            select(ConversationParticipant.conversation_id)
            .where(
                ConversationParticipant.user_id == query.participant,
                ConversationParticipant.conversation_id == Conversation.id,
            )
            .exists()
        )
    if query.unread is not None:
        read_seq = func.coalesce(
            select(ConversationRead.read_seq)
            .where(
                ConversationRead.conversation_id == Conversation.id,
                ConversationRead.user_id == user_id,
            )
            .scalar_subquery(),
            0,
        )
        statement = statement.where(
            Conversation.last_seq > read_seq if query.unread else Conversation.last_seq <= read_seq
        )
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
    user = auth.current_user(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        conversation = await visible_conversation(session, request, conversation_id)
        answer = await conversation_out(session, conversation, user.id)
    return respond(request, answer)


@routes.route(
    "GET",
    "/conversations/{id}/messages",
    summary="List a conversation's messages, oldest first",
    query=MessageQuery,
    response=Page[MessageOut],
    errors=[404],
)
async def list_messages(request: web.Request) -> web.Response:
    """Messages, notes and activities of a conversation in the order they arrived.

    Paged on `seq`, assigned in commit order: a message that arrives late with an older
    date comes after everything a client has already paged through, never behind it.
    """
    conversation_id = path_id(request)
    query = parse_query(request, MessageQuery)
    statement = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.seq, Message.id)
        .limit(query.limit + 1)
    )
    after_seq = query.after_seq
    if query.keyset is not None:
        if query.keyset.seq is None:
            raise validation_failed({"cursor": "not a cursor of this list"})
        after_seq = max(after_seq or 0, query.keyset.seq)
    if after_seq is not None:
        statement = statement.where(Message.seq > after_seq)
    async with request.app[READ_SESSIONS_KEY]() as session:
        await visible_conversation(session, request, conversation_id)
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(
            rows, query.limit, lambda row: Keyset(at=row.arrived_at, id=row.id, seq=row.seq)
        )
        items = await message_outs(session, page)
    return respond(request, Page[MessageOut](items=items, next_cursor=next_cursor))


@routes.route(
    "GET",
    "/conversations/{id}/reply-channels",
    summary="The channels a reply may go out on, and the default one",
    response=ReplyChannelsOut,
    errors=[404],
)
async def list_reply_channels(request: web.Request) -> web.Response:
    """The channels the conversation's contact can be answered on, for the reply composer.

    Each candidate says where the reply would go (`recipient`) and, when it would be
    refused now (opted out, blocked, erased, paused), why.
    """
    conversation_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        conversation = await visible_conversation(session, request, conversation_id)
        channels = await reply_channels(session, conversation, auth.visible_channel_ids(request))
    return respond(request, ReplyChannelsOut.of(channels))


@routes.route(
    "POST",
    "/conversations/{id}/messages",
    summary="Reply to the customer, or add a private note",
    status=201,
    body=MessageCreate,
    response=MessageOut,
    errors=[404, 409, 422],
    headers=[idempotency.HEADER_DOC],
)
async def create_message(request: web.Request) -> web.Response:
    """Queue a reply (sent by the outbox worker), or store a note.

    The reply goes out on `channel_id`, which may name another channel the contact can be
    answered on (GET .../reply-channels lists them); without it, on the conversation's
    channel, or on the default channel when the conversation's cannot send (a web form).
    A reply on another channel than the conversation's records `reply.channel_switched`
    on the timeline. A private note is never sent: it ignores `channel_id`. A reply the
    channel cannot carry is refused before anything is stored (422 naming the field).
    With an `Idempotency-Key`, a retry answers the first result (see
    web/api/idempotency.py).
    """
    user = auth.current_user(request)
    conversation_id = path_id(request)
    body = await parse_body(request, MessageCreate)
    claim = idempotency.claim_of(request, user.id, body)
    async with request.app[READ_SESSIONS_KEY]() as session:
        if claim is not None and (
            earlier := await idempotency.earlier_answer(session, claim, utcnow())
        ):
            return earlier
        conversation = await visible_conversation(session, request, conversation_id)
        answered = (
            None if body.reply_to_id is None else await session.get(Message, body.reply_to_id)
        )
        if body.reply_to_id is not None and (
            answered is None or answered.conversation_id != conversation.id
        ):
            raise validation_failed({"reply_to_id": "not a message of this conversation"})
        channel = (
            await session.get(Channel, conversation.channel_id)
            if body.private
            else await _reply_channel(session, request, conversation, body)
        )
    if channel is None:  # deleted since we looked
        raise not_found("no such conversation")
    check_reply(body, channel)
    files = await _store_files(request.app[SETTINGS_KEY].data_dir, body.attachments)
    switched_from = None if channel.id == conversation.channel_id else conversation.channel_id
    try:
        message, answer = await _queue_reply(
            request, body, conversation_id, files, claim, channel.id, switched_from
        )
    except UnknownConversation as err:  # deleted since we looked
        raise not_found("no such conversation") from err
    except idempotency.KeyTaken as taken:
        async with request.app[READ_SESSIONS_KEY]() as session:
            return await idempotency.winner_answer(session, taken.claim, utcnow())
    switched = () if switched_from is None else (_switched_event(message, switched_from),)
    await publish(request, message_created_event(message), *switched)
    if not body.private and (dispatcher := request.app.get(DISPATCHER_KEY)) is not None:
        dispatcher.wake()  # send now rather than at the dispatcher's next idle poll
    return respond(request, answer)


async def _reply_channel(
    session: AsyncSession, request: web.Request, conversation: Conversation, body: MessageCreate
) -> Channel | None:
    """The channel a reply goes out on; 422 naming channel_id when it cannot reach the
    contact there. None when the conversation's channel was deleted meanwhile."""
    chosen = body.channel_id
    own = await session.get(Channel, conversation.channel_id)
    if own is None:
        return None
    visible = auth.visible_channel_ids(request)
    if chosen is None and not _can_send(own):
        default = (await reply_channels(session, conversation, visible)).default
        if default is None:
            raise validation_failed(
                {"channel_id": NO_CHANNEL}, message="the contact cannot be reached"
            )
        chosen = default.channel_id
    if chosen is None or chosen == own.id:
        # The conversation's own channel, as replies always went: what it cannot carry
        # is said by `check_reply`, a missing address by the outbox when it sends.
        reason = await unreachable_reason(session, own.id, conversation.contact_id)
        if reason is not None:
            raise validation_failed({"channel_id": reason}, message="the contact cannot be reached")
        return own
    candidate = await check_reply_channel(session, conversation, chosen, visible)
    reason = candidate if isinstance(candidate, str) else candidate.reason
    if reason is not None:
        raise validation_failed(
            {"channel_id": reason}, message="the contact cannot be answered on this channel"
        )
    return await session.get(Channel, chosen)


def _can_send(channel: Channel) -> bool:
    try:
        return spec_for(channel.kind).capabilities.can_send
    except KeyError:
        return False


def check_reply(body: MessageCreate, channel: Channel) -> None:
    """422 naming each field the channel the reply goes out on cannot carry (notes are
    never sent: nothing to check)."""
    if body.private:
        return
    capabilities = spec_for(channel.kind).capabilities
    fields = reply_refusals(capabilities, body.text, body.attachments)
    if fields:
        raise validation_failed(fields, message="the channel cannot carry this reply")


def _switched_event(message: Message, from_channel_id: uuid.UUID) -> Event:
    """The `reply.channel_switched` bus event (published after commit)."""
    return Event(
        SWITCHED,
        {
            "contact_id": str(message.contact_id),
            "conversation_id": str(message.conversation_id),
            **_switch_data(message, from_channel_id),
        },
    )


def _switch_data(message: Message, from_channel_id: uuid.UUID) -> dict[str, str]:
    return {
        "from_channel_id": str(from_channel_id),
        "to_channel_id": str(message.channel_id),
        "message_id": str(message.id),
    }


async def _store_files(data_dir: Path, attachments: Sequence[AttachmentIn]) -> list[OutboundFile]:
    """Store the uploads in the blob store (off the event loop: decoding and disk writes)."""
    files = []
    for attachment in attachments:
        sha256, size = await asyncio.to_thread(store_blob, data_dir, attachment.content())
        files.append(OutboundFile(attachment.filename, attachment.content_type, sha256, size))
    return files


async def _queue_reply(
    request: web.Request,
    body: MessageCreate,
    conversation_id: uuid.UUID,
    files: Sequence[OutboundFile],
    claim: idempotency.Claim | None,
    channel_id: uuid.UUID,
    switched_from: uuid.UUID | None,
) -> tuple[Message, MessageOut]:
    """The message, its job, the switch of channel and the idempotency key in one
    transaction; nothing published."""
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        key = None if claim is None else await idempotency.take(session, claim, utcnow())
        message = await queue_outbound(
            session,
            conversation_id=conversation_id,
            text=body.text,
            author_id=auth.current_user(request).id,
            private=body.private,
            attachments=files,
            reply_to_id=body.reply_to_id,
            channel_id=None if body.private else channel_id,
        )
        if switched_from is not None:
            session.add(
                TimelineEvent(
                    contact_id=message.contact_id,
                    conversation_id=message.conversation_id,
                    message_id=message.id,
                    kind=SWITCHED,
                    data=_switch_data(message, switched_from),
                    occurred_at=message.created_at,
                )
            )
        [answer] = await message_outs(session, [message])
        if key is not None:
            idempotency.record(key, 201, answer, message.id)
    return message, answer


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
