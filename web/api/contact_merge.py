"""Contact merge and merge suggestions: merge one contact into another, list the open
suggestions, merge or dismiss one.

Merging and dismissing are for admins and managers. A merge runs in one transaction
(inbox/merge.py); on PostgreSQL a deadlock or serialization failure with some other
writer is retried from the start, since the merge then simply had not happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import merge
from inbox.models import Role
from timeline.db import is_conflict
from timeline.merge import ContactNotFound, MergeRefused, MergeResult
from timeline.models import Contact, Conversation, Identity, MergeSuggestion, utcnow
from web import auth
from web.api import after, cut, path_id, publish
from web.api.merge_schemas import (
    ContactMergeIn,
    MergeOut,
    MergeSuggestionOut,
    SuggestionMergeIn,
    SuggestionQuery,
)
from web.api.schemas import ContactOut, Keyset, Page
from web.errors import ApiError, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY
from web.openapi import ApiRoutes, parse_body, parse_query, respond

routes = ApiRoutes(tag="contacts")

_ATTEMPTS = 3  # a deadlock victim is retried; a third in a row is an error worth seeing
_MERGERS = (Role.ADMIN, Role.MANAGER)


def conflict(message: str) -> ApiError:
    """409: the request is valid but the state of things does not allow it."""
    return ApiError(409, "conflict", message)


async def _retrying(
    request: web.Request, work: Callable[[AsyncSession], Awaitable[MergeResult]]
) -> MergeResult:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with request.app[SESSIONS_KEY]() as session, session.begin():
                return await work(session)
        except DBAPIError as err:
            if not is_conflict(err) or attempt == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def _merge_out(request: web.Request, result: MergeResult) -> MergeOut:
    async with request.app[READ_SESSIONS_KEY]() as session:
        contact = await session.get(Contact, result.survivor_id)
        if contact is None:  # erased and deleted since: not possible today, but say so
            raise not_found("no such contact")
        identities = await session.scalars(
            select(Identity)
            .where(Identity.contact_id == contact.id)
            .order_by(Identity.created_at, Identity.id)
        )
        out = ContactOut.of(contact, list(identities))
    return MergeOut(
        survivor_id=result.survivor_id,
        merged_id=result.merged_id,
        moved=result.moved,
        contact=out,
    )


async def _check_visible(
    session: AsyncSession, request: web.Request, contact_ids: Sequence[uuid.UUID]
) -> bool:
    """True when the user may see every one of the contacts (see web/auth.py)."""
    visible = auth.visible_channel_ids(request)
    if visible is None:
        return True
    seen = set(
        await session.scalars(
            select(Conversation.contact_id).where(
                Conversation.contact_id.in_(contact_ids), Conversation.channel_id.in_(visible)
            )
        )
    )
    return seen >= set(contact_ids)


@routes.route(
    "POST",
    "/contacts/{id}/merge",
    summary="Merge another contact into this one",
    body=ContactMergeIn,
    response=MergeOut,
    errors=[403, 404, 409],
)
async def merge_contact(request: web.Request) -> web.Response:
    """Move everything of `other_id` (identities, conversations, messages, timeline,
    tags, attributes, notes, tasks, form submissions) to the contact in the path; the
    other id keeps resolving to it. Admins and managers."""
    user = auth.require_role(request, *_MERGERS)
    survivor_id = path_id(request)
    body = await parse_body(request, ContactMergeIn)
    if body.other_id == survivor_id:
        raise validation_failed({"other_id": "a contact cannot be merged into itself"})

    async def work(session: AsyncSession) -> MergeResult:
        if await session.get(Contact, survivor_id) is None or not await _check_visible(
            session, request, [survivor_id]
        ):
            raise not_found("no such contact")
        if await session.get(Contact, body.other_id) is None or not await _check_visible(
            session, request, [body.other_id]
        ):
            raise validation_failed({"other_id": "no such contact"})
        return await merge.merge_contacts(session, survivor_id, body.other_id, user.id, utcnow())

    try:
        result = await _retrying(request, work)
    except ContactNotFound as err:  # deleted between the look and the lock
        raise not_found("no such contact") from err
    except MergeRefused as err:
        raise conflict(str(err)) from err
    await publish(request, *result.events)
    return respond(request, await _merge_out(request, result))


@routes.route(
    "GET",
    "/merge-suggestions",
    summary="List open merge suggestions, oldest first",
    query=SuggestionQuery,
    response=Page[MergeSuggestionOut],
)
async def list_merge_suggestions(request: web.Request) -> web.Response:
    """Pairs of contacts that look like one person, waiting for someone to decide."""
    query = parse_query(request, SuggestionQuery)
    row = MergeSuggestion
    statement = (
        select(row)
        .where(row.status == "open")
        .order_by(row.created_at, row.id)
        .limit(query.limit + 1)
    )
    if (position := after(row.created_at, row.id, query.keyset, descending=False)) is not None:
        statement = statement.where(position)
    if (visible := auth.visible_channel_ids(request)) is not None:
        seen = select(Conversation.contact_id).where(Conversation.channel_id.in_(visible))
        statement = statement.where(row.contact_id.in_(seen), row.other_contact_id.in_(seen))
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(rows, query.limit, lambda r: Keyset(at=r.created_at, id=r.id))
        names = await _names(session, page)
    items = [MergeSuggestionOut.of(suggestion, names) for suggestion in page]
    return respond(request, Page[MergeSuggestionOut](items=items, next_cursor=next_cursor))


async def _names(
    session: AsyncSession, suggestions: Sequence[MergeSuggestion]
) -> dict[uuid.UUID, str | None]:
    ids = {s.contact_id for s in suggestions} | {s.other_contact_id for s in suggestions}
    if not ids:
        return {}
    rows = await session.execute(select(Contact.id, Contact.name).where(Contact.id.in_(ids)))
    return {row.id: row.name for row in rows}


@routes.route(
    "POST",
    "/merge-suggestions/{id}/dismiss",
    summary="Dismiss a merge suggestion: the two are different people",
    response=MergeSuggestionOut,
    errors=[403, 404, 409],
)
async def dismiss_merge_suggestion(request: web.Request) -> web.Response:
    """Close an open suggestion without merging. Admins and managers."""
    user = auth.require_role(request, *_MERGERS)
    suggestion_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        await _visible_suggestion(session, request, suggestion_id)
        try:
            dismissed = await merge.dismiss_suggestion(session, suggestion_id, user.id, utcnow())
        except merge.SuggestionNotFound as err:
            raise not_found("no such merge suggestion") from err
        except merge.SuggestionClosed as err:
            raise conflict(str(err)) from err
        names = await _names(session, [dismissed.suggestion])
        out = MergeSuggestionOut.of(dismissed.suggestion, names)
    await publish(request, *dismissed.events)
    return respond(request, out)


async def _visible_suggestion(
    session: AsyncSession, request: web.Request, suggestion_id: uuid.UUID
) -> MergeSuggestion:
    suggestion = await session.get(MergeSuggestion, suggestion_id)
    if suggestion is None or not await _check_visible(
        session, request, [suggestion.contact_id, suggestion.other_contact_id]
    ):
        raise not_found("no such merge suggestion")
    return suggestion


@routes.route(
    "POST",
    "/merge-suggestions/{id}/merge",
    summary="Merge the two contacts of a suggestion",
    body=SuggestionMergeIn,
    response=MergeOut,
    errors=[403, 404, 409],
)
async def merge_merge_suggestion(request: web.Request) -> web.Response:
    """Merge the suggestion's other contact into `survivor_id`. Admins and managers."""
    user = auth.require_role(request, *_MERGERS)
    suggestion_id = path_id(request)
    body = await parse_body(request, SuggestionMergeIn)

    async def work(session: AsyncSession) -> MergeResult:
        suggestion = await _visible_suggestion(session, request, suggestion_id)
        if body.survivor_id not in (suggestion.contact_id, suggestion.other_contact_id):
            raise validation_failed({"survivor_id": "must be one of the suggestion's two contacts"})
        return await merge.merge_suggestion(
            session, suggestion_id, body.survivor_id, user.id, utcnow()
        )

    try:
        result = await _retrying(request, work)
    except merge.SuggestionNotFound as err:
        raise not_found("no such merge suggestion") from err
    except ContactNotFound as err:
        raise not_found("no such contact") from err
    except MergeRefused as err:
        raise conflict(str(err)) from err
    await publish(request, *result.events)
    return respond(request, await _merge_out(request, result))
