"""Changing conversations: status, snooze, assignment, team, priority and labels (one or
up to 100 at once), participants, and each user's read mark (issue 9).

Every user who can see a conversation (its channel is visible to them) may change it,
agents included: agents hand conversations over, so they may assign them to someone
else (an agent assignee must work the conversation's channel). The logic is in
inbox/conversation_changes.py; this module maps its outcomes to HTTP answers and
publishes `conversation.updated` after each commit.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from inbox import conversation_changes as changing
from inbox.conversation_changes import (
    ChangeConflict,
    Changes,
    ConversationMoved,
    InvalidChange,
    UnknownConversation,
    UnknownUser,
)
from timeline.events import Event
from timeline.models import utcnow
from web import auth
from web.api import path_id, publish
from web.api.conversation_views import conversation_out
from web.api.schemas import ConversationOut
from web.api.workflow_schemas import BulkChange, BulkItemOut, BulkOut, ConversationPatch
from web.errors import ApiError, ErrorDetail, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY
from web.openapi import ApiRoutes, parse_body, respond

routes = ApiRoutes(tag="conversations")

READ = "conversation.read"  # bus only: a user's read mark moved (their other tabs follow)


@routes.route(
    "PATCH",
    "/conversations/{id}",
    summary="Change a conversation's status, assignment, team, priority or labels",
    body=ConversationPatch,
    response=ConversationOut,
    errors=[404, 409],
)
async def patch_conversation(request: web.Request) -> web.Response:
    """Change what is given; answer the conversation as it is now.

    Each change is a timeline event saying who made it and when
    (`conversation.status_changed` {from, to, by}, `conversation.assigned`,
    `conversation.team_changed`, `conversation.priority_changed`,
    `conversation.labels_changed` {added, removed}); a PATCH that changes nothing records
    nothing. Reopening a resolved conversation counts a reopen. 409 when `seen_seq` is
    older than the newest message, or when the conversation cannot be reopened because
    another of its thread is open.
    """
    conversation_id = path_id(request)
    body = await parse_body(request, ConversationPatch)
    answer, events = await _change_one(request, conversation_id, body.to_changes())
    await publish(request, *events)
    return respond(request, answer)


@routes.route(
    "POST",
    "/conversations/bulk",
    summary="Change up to 100 conversations at once",
    body=BulkChange,
    response=BulkOut,
)
async def bulk_change(request: web.Request) -> web.Response:
    """Apply one change to each conversation in its own transaction: each result is
    200 (changed, or already so), 404 (unknown or not visible), 409 or 422 (this
    conversation cannot take it, e.g. one label too many). A change no conversation could
    take (a past snooze time, an inactive assignee) is refused as a whole with 422."""
    body = await parse_body(request, BulkChange)
    changes = body.changes.changes()
    await _check(request, changes)
    results = []
    for conversation_id in body.ids:
        try:
            answer, events = await _change_one(request, conversation_id, changes, checked=True)
        except ApiError as err:
            detail = ErrorDetail(code=err.code, message=err.message, fields=err.fields)
            results.append(
                BulkItemOut(id=conversation_id, status=err.status, conversation=None, error=detail)
            )
            continue
        await publish(request, *events)
        results.append(BulkItemOut(id=conversation_id, status=200, conversation=answer, error=None))
    return respond(request, BulkOut(results=results))


@routes.route(
    "POST",
    "/conversations/{id}/participants/{user_id}",
    summary="Make a user follow a conversation",
    response=ConversationOut,
    errors=[404, 422],
)
async def add_participant(request: web.Request) -> web.Response:
    """The user follows the conversation (assignees do already); 404 for an unknown user,
    422 for a deactivated one. Recorded as `conversation.participant_added`."""
    user_id = path_id(request, "user_id")
    return await _participants(request, user_id, add=True)


@routes.route(
    "DELETE",
    "/conversations/{id}/participants/{user_id}",
    summary="Stop a user following a conversation",
    response=ConversationOut,
    errors=[404],
)
async def remove_participant(request: web.Request) -> web.Response:
    """Recorded as `conversation.participant_removed` (nothing, if they did not follow)."""
    user_id = path_id(request, "user_id")
    return await _participants(request, user_id, add=False)


@routes.route(
    "POST",
    "/conversations/{id}/read",
    summary="Mark a conversation read up to its newest message",
    response=ConversationOut,
    errors=[404],
)
async def mark_read(request: web.Request) -> web.Response:
    """For the requesting user only: their `unread` becomes 0."""
    return await _read_mark(request, read=True)


@routes.route(
    "POST",
    "/conversations/{id}/unread",
    summary="Mark a conversation's newest message unread",
    response=ConversationOut,
    errors=[404],
)
async def mark_unread(request: web.Request) -> web.Response:
    """For the requesting user only: the newest message counts as unread again."""
    return await _read_mark(request, read=False)


# --- shared -------------------------------------------------------------------------------------


async def _check(request: web.Request, changes: Changes) -> None:
    async with request.app[READ_SESSIONS_KEY]() as session:
        try:
            await changing.check_changes(session, changes, utcnow())
        except InvalidChange as err:
            raise validation_failed(err.fields) from err


async def _change_one(
    request: web.Request, conversation_id: uuid.UUID, changes: Changes, *, checked: bool = False
) -> tuple[ConversationOut, list[Event]]:
    """One conversation changed in one transaction; the answer and the events to publish."""
    user = auth.current_user(request)
    if not checked:
        await _check(request, changes)
    try:
        async with request.app[SESSIONS_KEY]() as session, session.begin():
            outcome = await changing.apply_changes(
                session,
                conversation_id,
                changes,
                actor_id=user.id,
                visible=auth.visible_channel_ids(request),
            )
            answer = await conversation_out(session, outcome.conversation, user.id)
    except UnknownConversation as err:
        raise not_found("no such conversation") from err
    except ConversationMoved as err:
        raise ApiError(
            409, "conflict", str(err), {"seen_seq": f"newest is {err.last_seq}"}
        ) from err
    except ChangeConflict as err:
        raise ApiError(409, "conflict", str(err), {"status": str(err)}) from err
    except InvalidChange as err:
        raise validation_failed(err.fields) from err
    return answer, outcome.bus_events()


async def _participants(request: web.Request, user_id: uuid.UUID, *, add: bool) -> web.Response:
    user = auth.current_user(request)
    conversation_id = path_id(request)
    change = changing.add_participant if add else changing.remove_participant
    try:
        async with request.app[SESSIONS_KEY]() as session, session.begin():
            outcome = await change(
                session,
                conversation_id,
                user_id,
                actor_id=user.id,
                visible=auth.visible_channel_ids(request),
            )
            answer = await conversation_out(session, outcome.conversation, user.id)
    except UnknownConversation as err:
        raise not_found("no such conversation") from err
    except UnknownUser as err:
        raise not_found("no such user") from err
    except InvalidChange as err:
        raise validation_failed(err.fields) from err
    await publish(request, *outcome.bus_events())
    return respond(request, answer)


async def _read_mark(request: web.Request, *, read: bool) -> web.Response:
    user = auth.current_user(request)
    conversation_id = path_id(request)
    mark = changing.mark_read if read else changing.mark_unread
    try:
        async with request.app[SESSIONS_KEY]() as session, session.begin():
            conversation = await mark(
                session, conversation_id, user.id, visible=auth.visible_channel_ids(request)
            )
            answer = await conversation_out(session, conversation, user.id)
    except UnknownConversation as err:
        raise not_found("no such conversation") from err
    data = {
        "conversation_id": str(conversation_id),
        "user_id": str(user.id),
        "unread": answer.unread,
    }
    await publish(request, Event(READ, data))
    return respond(request, answer)
