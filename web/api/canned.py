"""Canned responses over the REST API (issue 9): list (what the user may use), create,
get, change, delete, render for a conversation, and preview text being written (the admin
editor's live preview, filled from a sample contact unless a conversation is named).

Who may use and write which scope is decided in inbox/canned.py. A response the user
may not use is a 404, as if it did not exist (personal responses are nobody else's
business); one they may use but not change is a 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import canned
from inbox.canned import CannedError, CannedForbidden, Reader, ShortCodeTaken
from inbox.canned_models import CannedResponse, CannedScope
from inbox.models import User
from inbox.placeholders import placeholder_values, render
from timeline.models import utcnow
from web import auth
from web.api import path_id
from web.api.canned_schemas import (
    CannedCursor,
    CannedIn,
    CannedOut,
    CannedPage,
    CannedPatch,
    CannedPreviewIn,
    CannedPreviewOut,
    CannedQuery,
    RenderIn,
    RenderOut,
)
from web.api.conversations import visible_conversation
from web.errors import ApiError, forbidden, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY
from web.openapi import ApiRoutes, parse_body, parse_query, respond

routes = ApiRoutes("canned")


def _out(reader: Reader, row: CannedResponse) -> CannedOut:
    return CannedOut.of(row, canned.may_write(reader, CannedScope(row.scope), row.team_id))


@routes.route(
    "GET",
    "/canned-responses",
    summary="List the canned responses you may use, by short code",
    query=CannedQuery,
    response=CannedPage,
)
async def list_canned(request: web.Request) -> web.Response:
    """Global ones, your teams' (every team's for admins and managers) and your own
    personal ones; `q` matches a substring of the short code or title, ignoring case."""
    query = parse_query(request, CannedQuery)
    statement = select(CannedResponse)
    if query.q is not None and query.q.strip():
        needle = query.q.strip().casefold()
        statement = statement.where(CannedResponse.search_key.contains(needle, autoescape=True))
    if query.scope is not None:
        statement = statement.where(CannedResponse.scope == query.scope.value)
    if query.team_id is not None:
        statement = statement.where(CannedResponse.team_id == query.team_id)
    if (position := query.position) is not None:
        statement = statement.where(
            or_(
                CannedResponse.short_code > position.code,
                and_(CannedResponse.short_code == position.code, CannedResponse.id > position.id),
            )
        )
    statement = statement.order_by(CannedResponse.short_code, CannedResponse.id).limit(
        query.limit + 1
    )
    async with request.app[READ_SESSIONS_KEY]() as session:
        reader = await canned.reader_of(session, auth.current_user(request))
        rows = list(await session.scalars(statement.where(canned.usable_by(reader))))
    page = rows[: query.limit]
    next_cursor = (
        CannedCursor(code=page[-1].short_code, id=page[-1].id).encode()
        if len(rows) > query.limit
        else None
    )
    return respond(
        request, CannedPage(items=[_out(reader, r) for r in page], next_cursor=next_cursor)
    )


@routes.route(
    "POST",
    "/canned-responses",
    summary="Create a canned response",
    status=201,
    body=CannedIn,
    response=CannedOut,
    errors=[403, 409],
)
async def create_canned(request: web.Request) -> web.Response:
    """403 when you may not write this scope; 409 when the short code is taken in it; 422
    for an unknown placeholder (naming it)."""
    body = await parse_body(request, CannedIn)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        reader = await canned.reader_of(session, auth.current_user(request))
        with _refusals():
            row = await canned.create(
                session,
                reader,
                scope=body.scope,
                team_id=body.team_id,
                short_code=body.short_code,
                title=body.title,
                text=body.text,
                now=utcnow(),
            )
        answer = _out(reader, row)
    return respond(request, answer)


@routes.route(
    "GET",
    "/canned-responses/{id}",
    summary="Get a canned response",
    response=CannedOut,
    errors=[404],
)
async def get_canned(request: web.Request) -> web.Response:
    """One response you may use."""
    canned_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        reader, row = await _usable(session, request, canned_id)
        answer = _out(reader, row)
    return respond(request, answer)


@routes.route(
    "PATCH",
    "/canned-responses/{id}",
    summary="Change a canned response",
    body=CannedPatch,
    response=CannedOut,
    errors=[403, 404, 409],
)
async def patch_canned(request: web.Request) -> web.Response:
    """Change what is given; moving it to another scope needs the right to write both."""
    canned_id = path_id(request)
    body = await parse_body(request, CannedPatch)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        reader, row = await _usable(session, request, canned_id)
        with _refusals():
            await canned.update(session, reader, row, body.changes(), utcnow())
        answer = _out(reader, row)
    return respond(request, answer)


@routes.route(
    "DELETE",
    "/canned-responses/{id}",
    summary="Delete a canned response",
    status=204,
    errors=[403, 404],
)
async def delete_canned(request: web.Request) -> web.Response:
    """Gone for everyone who could use it."""
    canned_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        reader, row = await _usable(session, request, canned_id)
        with _refusals():
            canned.check_delete(reader, row)
        await session.delete(row)
    return respond(request)


@routes.route(
    "POST",
    "/canned-responses/{id}/render",
    summary="A canned response's text for a conversation, placeholders filled",
    body=RenderIn,
    response=RenderOut,
    errors=[404],
)
async def render_canned(request: web.Request) -> web.Response:
    """The text the composer inserts, with you as the agent; 404 when the response or
    the conversation is not one you may use or see."""
    canned_id = path_id(request)
    body = await parse_body(request, RenderIn)
    user = auth.current_user(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        _, row = await _usable(session, request, canned_id)
        conversation = await visible_conversation(session, request, body.conversation_id)
        try:
            text = await canned.render_for(session, row, conversation.id, user)
        except LookupError as err:  # deleted since we looked
            raise not_found("no such conversation") from err
    return respond(request, RenderOut(text=text))


# Who fills the placeholders of a preview that names no conversation: made up, plainly so.
_SAMPLE_CONTACT: dict[str, str | None] = {
    "contact.name": "Ann Lee",
    "contact.first_name": "Ann",
    "contact.last_name": "Lee",
    "contact.email": "ann.lee@example.com",
    "contact.phone": "+14155550100",
    "conversation.id": "00000000-0000-4000-8000-000000000001",
    "channel.name": "Support",
}


def _sample_values(agent: User) -> dict[str, str | None]:
    first = agent.name.strip().partition(" ")[0] if agent.name else None
    return {
        **_SAMPLE_CONTACT,
        "agent.name": agent.name,
        "agent.first_name": first or None,
        "agent.email": agent.email,
    }


@routes.route(
    "POST",
    "/canned-responses/preview",
    summary="Text not saved yet with its placeholders filled (a sample contact by default)",
    body=CannedPreviewIn,
    response=CannedPreviewOut,
    errors=[404],
)
async def preview_canned(request: web.Request) -> web.Response:
    """What an editor shows while a response is written: 422 naming `text` for an unknown
    placeholder, as saving would; 404 for a conversation you do not see."""
    body = await parse_body(request, CannedPreviewIn)
    user = auth.current_user(request)
    if body.conversation_id is None:
        return respond(
            request, CannedPreviewOut(text=render(body.text, _sample_values(user)), sample=True)
        )
    async with request.app[READ_SESSIONS_KEY]() as session:
        conversation = await visible_conversation(session, request, body.conversation_id)
        try:
            values = await placeholder_values(session, conversation.id, user)
        except LookupError as err:  # deleted since we looked
            raise not_found("no such conversation") from err
    return respond(request, CannedPreviewOut(text=render(body.text, values), sample=False))


async def _usable(
    session: AsyncSession, request: web.Request, canned_id: uuid.UUID
) -> tuple[Reader, CannedResponse]:
    reader = await canned.reader_of(session, auth.current_user(request))
    row = await canned.usable(session, reader, canned_id)
    if row is None:
        raise not_found("no such canned response")
    return reader, row


@contextmanager
def _refusals() -> Iterator[None]:
    """Maps inbox/canned.py's refusals to HTTP answers."""
    try:
        yield
    except CannedError as err:
        raise validation_failed(err.fields) from err
    except CannedForbidden as err:
        raise forbidden(str(err)) from err
    except ShortCodeTaken as err:
        raise ApiError(409, "conflict", str(err), {"short_code": str(err)}) from err
