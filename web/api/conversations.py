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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy import Select, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.registry import spec_for
from inbox import canned
from inbox import conversation_changes as changing
from inbox.canned_models import NotificationKind
from inbox.mentions import (
    MAX_MENTIONS,
    MalformedMention,
    has_mention_markup,
    mention_refusals,
    merge,
    parse_mentions,
)
from inbox.models import User
from inbox.notifications import created_events, notify
from inbox.reply_channels import NO_CHANNEL, check_reply_channel, reply_channels
from inbox.workflow_models import ConversationLabel, ConversationParticipant, ConversationRead
from timeline.events import Event
from timeline.files import store_blob
from timeline.models import (
    Attachment,
    Channel,
    Conversation,
    Message,
    TimelineEvent,
    UTCDateTime,
    utcnow,
)
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
from web.api.reply_schemas import TEXT_MAX, MessageCreate, ReplyChannelsOut
from web.api.schemas import (
    AttachmentIn,
    ConversationOut,
    ConversationQuery,
    Keyset,
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

# Longest waiting first: conversations nobody has to answer (no `waiting_since`) sort
# after every waiting one, as if they had started waiting at the end of time.
NOT_WAITING = datetime(9999, 1, 1, tzinfo=UTC)
_WAITING = func.coalesce(Conversation.waiting_since, literal(NOT_WAITING, UTCDateTime()))


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
    waiting = query.sort == "waiting"
    at = _WAITING if waiting else Conversation.last_activity_at
    if waiting:
        statement = statement.order_by(at.asc(), Conversation.id.asc())
    else:
        statement = statement.order_by(at.desc(), Conversation.id.desc())
    statement = statement.limit(query.limit + 1)
    position = after(at, Conversation.id, query.keyset, descending=not waiting)
    if position is not None:
        statement = statement.where(position)
    if (visible := auth.visible_channel_ids(request)) is not None:
        statement = statement.where(Conversation.channel_id.in_(visible))
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(
            rows,
            query.limit,
            lambda row: Keyset(
                at=(row.waiting_since or NOT_WAITING) if waiting else row.last_activity_at,
                id=row.id,
            ),
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
    web/api/idempotency.py), and notifies nobody again.

    `canned_response_id` instead of `text` sends a canned response rendered for this
    conversation with the requester as agent. A private note mentions users with
    `@[Name](user:<id>)` in its text (inbox/mentions.py) or in `mentions`: each must be
    active and see the conversation's channel (else 422 naming `mentions.<id>`, nothing
    stored); they follow the conversation and, the author excepted, get one
    `notification.created` each. A public reply with mention markup is 422: the customer
    would receive it.
    """
    user = auth.current_user(request)
    conversation_id = path_id(request)
    body = await parse_body(request, MessageCreate)
    if shape := body.shape_errors():
        raise validation_failed(shape)
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
        text = body.text
        if text is None:
            text = await _canned_text(session, body, conversation, user)
        mentioned = await _mentioned(session, body, text, conversation)
        channel = (
            await session.get(Channel, conversation.channel_id)
            if body.private
            else await _reply_channel(session, request, conversation, body)
        )
    if channel is None:  # deleted since we looked
        raise not_found("no such conversation")
    check_reply(body, channel, text)
    files = await _store_files(request.app[SETTINGS_KEY].data_dir, body.attachments)
    switched_from = None if channel.id == conversation.channel_id else conversation.channel_id
    reply = _Reply(body, text, mentioned, files, channel.id, switched_from)
    try:
        message, answer, followers = await _queue_reply(request, reply, conversation_id, claim)
    except UnknownConversation as err:  # deleted since we looked
        raise not_found("no such conversation") from err
    except idempotency.KeyTaken as taken:
        async with request.app[READ_SESSIONS_KEY]() as session:
            return await idempotency.winner_answer(session, taken.claim, utcnow())
    switched = () if switched_from is None else (_switched_event(message, switched_from),)
    await publish(request, message_created_event(message), *switched, *followers)
    if not body.private and (dispatcher := request.app.get(DISPATCHER_KEY)) is not None:
        dispatcher.wake()  # send now rather than at the dispatcher's next idle poll
    return respond(request, answer)


async def _canned_text(
    session: AsyncSession, body: MessageCreate, conversation: Conversation, user: User
) -> str:
    """The text of `canned_response_id` rendered for the conversation, `user` replying;
    422 naming canned_response_id when it is not one the user may use, or renders to
    nothing (every placeholder empty, no fallback)."""
    assert body.canned_response_id is not None
    field = "canned_response_id"
    reader = await canned.reader_of(session, user)
    response = await canned.usable(session, reader, body.canned_response_id)
    if response is None:
        raise validation_failed({field: "no such canned response"})
    try:
        text = await canned.render_for(session, response, conversation.id, user)
    except LookupError as err:  # deleted since we looked
        raise not_found("no such conversation") from err
    if not text.strip():
        raise validation_failed({field: "renders to nothing for this conversation"})
    if len(text) > TEXT_MAX:
        raise validation_failed({field: f"renders to more than {TEXT_MAX:,} characters"})
    return text


async def _mentioned(
    session: AsyncSession, body: MessageCreate, text: str, conversation: Conversation
) -> list[uuid.UUID]:
    """The users a private note mentions (marked in its text, or listed in `mentions`),
    each checked: 422 naming each one who cannot be notified, and 422 for a public reply
    with mention markup (the customer would receive it)."""
    field = "text" if body.text is not None else "canned_response_id"
    if not body.private:
        if has_mention_markup(text):
            raise validation_failed(
                {field: "a public reply cannot mention users: mention them in a private note"}
            )
        return []
    try:
        user_ids = merge(parse_mentions(text), body.mentions)
    except MalformedMention as err:
        raise validation_failed({field: str(err)}) from err
    if len(user_ids) > MAX_MENTIONS:
        raise validation_failed({"mentions": f"at most {MAX_MENTIONS} users per note"})
    refusals = await mention_refusals(session, user_ids, conversation.channel_id)
    if refusals:
        raise validation_failed(
            {f"mentions.{user_id}": reason for user_id, reason in refusals.items()},
            message="some mentioned users cannot be notified",
        )
    return user_ids


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


def check_reply(body: MessageCreate, channel: Channel, text: str) -> None:
    """422 naming each field the channel the reply goes out on cannot carry (notes are
    never sent: nothing to check). `text` is the body's, or its canned response's."""
    if body.private:
        return
    capabilities = spec_for(channel.kind).capabilities
    fields = reply_refusals(capabilities, text, body.attachments)
    if body.text is None and "text" in fields:
        fields["canned_response_id"] = fields.pop("text")
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


@dataclass(frozen=True, slots=True)
class _Reply:
    """A checked reply or note, ready to store."""

    body: MessageCreate
    text: str
    mentioned: list[uuid.UUID]
    files: list[OutboundFile]
    channel_id: uuid.UUID
    switched_from: uuid.UUID | None


async def _queue_reply(
    request: web.Request,
    reply: _Reply,
    conversation_id: uuid.UUID,
    claim: idempotency.Claim | None,
) -> tuple[Message, MessageOut, list[Event]]:
    """The message, its job, the switch of channel, the mentions and the idempotency key
    in one transaction; nothing published (the events of the mentions are returned)."""
    body = reply.body
    author_id = auth.current_user(request).id
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        key = None if claim is None else await idempotency.take(session, claim, utcnow())
        message = await queue_outbound(
            session,
            conversation_id=conversation_id,
            text=reply.text,
            author_id=author_id,
            private=body.private,
            attachments=reply.files,
            reply_to_id=body.reply_to_id,
            channel_id=None if body.private else reply.channel_id,
        )
        if reply.switched_from is not None:
            session.add(
                TimelineEvent(
                    contact_id=message.contact_id,
                    conversation_id=message.conversation_id,
                    message_id=message.id,
                    kind=SWITCHED,
                    data=_switch_data(message, reply.switched_from),
                    occurred_at=message.created_at,
                )
            )
        followers = await _mention(session, request, message, reply.mentioned, author_id)
        [answer] = await message_outs(session, [message])
        if key is not None:
            idempotency.record(key, 201, answer, message.id)
    return message, answer, followers


async def _mention(
    session: AsyncSession,
    request: web.Request,
    note: Message,
    user_ids: Sequence[uuid.UUID],
    author_id: uuid.UUID,
) -> list[Event]:
    """Mentioned users follow the conversation and get one notification each (the author
    neither); the bus events to publish after the commit."""
    if not user_ids:
        return []
    followed: list[Event] = []
    for user_id in user_ids:
        if user_id == author_id:
            continue
        try:
            outcome = await changing.add_participant(
                session,
                note.conversation_id,
                user_id,
                actor_id=author_id,
                visible=auth.visible_channel_ids(request),
                now=note.created_at,
            )
        except (changing.UnknownUser, changing.InvalidChange) as err:
            # Deleted or deactivated since the check: nothing of the note is stored.
            raise validation_failed(
                {f"mentions.{user_id}": "this user is deactivated"},
                message="some mentioned users cannot be notified",
            ) from err
        followed = outcome.bus_events() or followed  # one update says it all
    notified = notify(
        session,
        NotificationKind.MENTION,
        user_ids,
        conversation_id=note.conversation_id,
        message_id=note.id,
        actor_id=author_id,
        now=note.created_at,
    )
    await session.flush()
    return followed + created_events(notified)


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
