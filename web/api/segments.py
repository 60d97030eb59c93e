"""Segments: saved filters over contacts with live counts, their contacts, and CSV export.

Anyone signed in may read segments, count a filter and list its contacts; saving,
changing, deleting and exporting (personal data in bulk) need the admin or manager role,
and erased contacts are counted and listed only for admins (`include_erased`). Every
count and list honours the channels the user may see. The segment list counts each
segment on the page with its own query, so a page of segments costs one count query per
segment on it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import Mapping

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.contact_csv import export_csv
from inbox.models import Role, Segment
from inbox.segments import FilterError, SegmentFilters, compile_filters, count_contacts
from timeline.events import Event
from timeline.models import Contact, utcnow
from web import auth
from web.api import after, cut, path_id, publish

# The contact list's own output assembly, so a segment's contacts look exactly the same.
from web.api.contacts import _contact_outs
from web.api.schemas import ContactOut, Keyset, Page, PageQuery
from web.api.segment_schemas import (
    CountOut,
    FiltersIn,
    SegmentCreate,
    SegmentOut,
    SegmentUpdate,
)
from web.errors import ApiError, forbidden, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY
from web.openapi import ApiRoutes, parse_body, parse_query, respond

logger = logging.getLogger(__name__)

routes = ApiRoutes(tag="segments")

_EDITORS = (Role.ADMIN, Role.MANAGER)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_ACTIVITY = Contact.last_activity_at  # with id, the index ix_contacts_last_activity


def _for_user(request: web.Request, filters: SegmentFilters) -> SegmentFilters:
    """The filter as this user may evaluate it: erased contacts are for admins only."""
    if filters.include_erased and auth.current_user(request).role != Role.ADMIN:
        return filters.model_copy(update={"include_erased": False})
    return filters


def _check_allowed(request: web.Request, filters: SegmentFilters) -> None:
    # Asked for explicitly by someone who may not: refused, not silently narrowed.
    if filters.include_erased and auth.current_user(request).role != Role.ADMIN:
        raise forbidden("only admins may include erased contacts")


def _invalid(err: FilterError) -> ApiError:
    fields = {f"filters.{path}": reason for path, reason in err.fields.items()}
    return validation_failed(fields, "the filter does not fit the attribute definitions")


async def _count(
    session: AsyncSession, request: web.Request, filters: SegmentFilters
) -> tuple[int | None, dict[str, str]]:
    """The live count, or None with the reasons when the filter cannot be evaluated."""
    try:
        count = await count_contacts(
            session, _for_user(request, filters), visible=auth.visible_channel_ids(request)
        )
    except FilterError as err:
        return None, err.fields
    return count, {}


async def _segment_out(session: AsyncSession, request: web.Request, segment: Segment) -> SegmentOut:
    filters = SegmentFilters.model_validate(segment.filters)
    count, problems = await _count(session, request, filters)
    return SegmentOut.of(segment, count, problems)


async def _checked(session: AsyncSession, filters: SegmentFilters) -> None:
    """422 when the filter does not fit the attribute definitions (before it is saved)."""
    try:
        await compile_filters(session, filters)
    except FilterError as err:
        raise _invalid(err) from err


async def _segment(
    session: AsyncSession, segment_id: uuid.UUID, *, for_update: bool = False
) -> Segment:
    # Locked before a change, so a concurrent delete makes this a 404, not a lost update.
    segment = await session.get(Segment, segment_id, with_for_update=for_update)
    if segment is None:
        raise not_found("no such segment")
    return segment


def _event(kind: str, segment: Segment) -> Event:
    return Event(kind, {"segment_id": str(segment.id)})


@routes.route(
    "GET",
    "/segments",
    summary="List saved segments with their live counts, newest first",
    query=PageQuery,
    response=Page[SegmentOut],
)
async def list_segments(request: web.Request) -> web.Response:
    """Segments, each counted now (one count query per segment on the page)."""
    query = parse_query(request, PageQuery)
    statement = (
        select(Segment)
        .order_by(Segment.created_at.desc(), Segment.id.desc())
        .limit(query.limit + 1)
    )
    position = after(Segment.created_at, Segment.id, query.keyset, descending=True)
    if position is not None:
        statement = statement.where(position)
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(rows, query.limit, lambda row: Keyset(at=row.created_at, id=row.id))
        items = [await _segment_out(session, request, row) for row in page]
    return respond(request, Page[SegmentOut](items=items, next_cursor=next_cursor))


@routes.route(
    "POST",
    "/segments",
    summary="Save a segment (admins and managers)",
    status=201,
    body=SegmentCreate,
    response=SegmentOut,
    errors=[403],
)
async def create_segment(request: web.Request) -> web.Response:
    """Store a named filter; an attribute condition that does not fit its definition is 422."""
    user = auth.require_role(request, *_EDITORS)
    body = await parse_body(request, SegmentCreate)
    _check_allowed(request, body.filters)
    now = utcnow()
    segment = Segment(
        name=body.name,
        filters=body.filters.stored(),
        created_by=user.id,
        created_at=now,
        updated_at=now,
    )
    async with request.app[SESSIONS_KEY]() as session:
        await _checked(session, body.filters)
        session.add(segment)
        await session.commit()
    await publish(request, _event("segment.created", segment))
    async with request.app[READ_SESSIONS_KEY]() as session:
        out = await _segment_out(session, request, segment)
    return respond(request, out)


@routes.route(
    "POST",
    "/segments/preview",
    summary="Count the contacts a filter matches, without saving it",
    body=FiltersIn,
    response=CountOut,
    errors=[403],
)
async def preview_segment(request: web.Request) -> web.Response:
    """The live count of a filter being built."""
    body = await parse_body(request, FiltersIn)
    _check_allowed(request, body.filters)
    async with request.app[READ_SESSIONS_KEY]() as session:
        count, problems = await _count(session, request, body.filters)
    if count is None:
        raise _invalid(FilterError(problems))
    return respond(request, CountOut(count=count))


@routes.route(
    "POST",
    "/segments/preview/contacts",
    summary="The contacts a filter matches, without saving it, most recent activity first",
    query=PageQuery,
    body=FiltersIn,
    response=Page[ContactOut],
    errors=[403],
)
async def preview_contacts(request: web.Request) -> web.Response:
    """The contact list of a filter being built (the admin contacts screen); 422 when it
    does not fit the attribute definitions."""
    query = parse_query(request, PageQuery)
    body = await parse_body(request, FiltersIn)
    _check_allowed(request, body.filters)
    return respond(request, await _contacts_page(request, body.filters, query))


@routes.route("GET", "/segments/{id}", summary="Get a segment", response=SegmentOut, errors=[404])
async def get_segment(request: web.Request) -> web.Response:
    """One segment with its live count."""
    segment_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        segment = await _segment(session, segment_id)
        out = await _segment_out(session, request, segment)
    return respond(request, out)


@routes.route(
    "PATCH",
    "/segments/{id}",
    summary="Rename a segment or replace its filter (admins and managers)",
    body=SegmentUpdate,
    response=SegmentOut,
    errors=[403, 404],
)
async def update_segment(request: web.Request) -> web.Response:
    """Change the name and/or the whole filter."""
    auth.require_role(request, *_EDITORS)
    segment_id = path_id(request)
    body = await parse_body(request, SegmentUpdate)
    if body.filters is not None:
        _check_allowed(request, body.filters)
    async with request.app[SESSIONS_KEY]() as session:
        segment = await _segment(session, segment_id, for_update=True)
        if body.filters is not None:
            await _checked(session, body.filters)
            segment.filters = body.filters.stored()
        if body.name is not None:
            segment.name = body.name
        segment.updated_at = utcnow()
        await session.commit()
    await publish(request, _event("segment.updated", segment))
    async with request.app[READ_SESSIONS_KEY]() as session:
        out = await _segment_out(session, request, segment)
    return respond(request, out)


@routes.route(
    "DELETE",
    "/segments/{id}",
    summary="Delete a segment (admins and managers); its contacts stay",
    status=204,
    errors=[403, 404],
)
async def delete_segment(request: web.Request) -> web.Response:
    """Remove a saved filter."""
    auth.require_role(request, *_EDITORS)
    segment_id = path_id(request)
    async with request.app[SESSIONS_KEY]() as session:
        segment = await _segment(session, segment_id, for_update=True)
        await session.delete(segment)
        await session.commit()
    await publish(request, _event("segment.deleted", segment))
    return respond(request)


@routes.route(
    "GET",
    "/segments/{id}/contacts",
    summary="The contacts of a segment, most recent activity first",
    query=PageQuery,
    response=Page[ContactOut],
    errors=[404],
)
async def segment_contacts(request: web.Request) -> web.Response:
    """The contacts matching a segment's filter now; 422 when it no longer fits the
    attribute definitions."""
    segment_id = path_id(request)
    query = parse_query(request, PageQuery)
    async with request.app[READ_SESSIONS_KEY]() as session:
        segment = await _segment(session, segment_id)
        filters = _for_user(request, SegmentFilters.model_validate(segment.filters))
    return respond(request, await _contacts_page(request, filters, query))


async def _contacts_page(
    request: web.Request, filters: SegmentFilters, query: PageQuery
) -> Page[ContactOut]:
    """One page of the contacts `filters` match among those the user sees."""
    async with request.app[READ_SESSIONS_KEY]() as session:
        try:
            condition = await compile_filters(
                session, filters, visible=auth.visible_channel_ids(request)
            )
        except FilterError as err:
            raise _invalid(err) from err
        statement = (
            select(Contact)
            .where(condition)
            .order_by(_ACTIVITY.desc(), Contact.id.desc())
            .limit(query.limit + 1)
        )
        if (position := after(_ACTIVITY, Contact.id, query.keyset, descending=True)) is not None:
            statement = statement.where(position)
        rows = (await session.scalars(statement)).all()
        page, next_cursor = cut(
            rows, query.limit, lambda row: Keyset(at=row.last_activity_at, id=row.id)
        )
        items = await _contact_outs(session, page)
    return Page[ContactOut](items=items, next_cursor=next_cursor)


@routes.route(
    "GET",
    "/segments/{id}/export.csv",
    summary="A segment's contacts as CSV (admins and managers)",
    produces="text/csv",
    errors=[403, 404, 422],
)
async def export_segment(request: web.Request) -> web.StreamResponse:
    """Streams `text/csv` (UTF-8 with BOM), named after the segment."""
    auth.require_role(request, *_EDITORS)
    segment_id = path_id(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        segment = await _segment(session, segment_id)
        name, stored = segment.name, segment.filters
    filters = _for_user(request, SegmentFilters.model_validate(stored))
    return await _stream_csv(request, filters, _file_name(name))


@routes.route(
    "POST",
    "/contacts/export.csv",
    summary="The contacts a filter matches, as CSV (admins and managers)",
    produces="text/csv",
    body=FiltersIn,
    errors=[403],
)
async def export_contacts(request: web.Request) -> web.StreamResponse:
    """Streams `text/csv` (UTF-8 with BOM) of an unsaved filter's contacts."""
    auth.require_role(request, *_EDITORS)
    body = await parse_body(request, FiltersIn)
    _check_allowed(request, body.filters)
    return await _stream_csv(request, body.filters, "contacts.csv")


def _file_name(segment_name: str) -> str:
    """A file name any browser and file system takes: ASCII letters, digits, . _ -."""
    stem = _SAFE_NAME.sub("-", segment_name).strip("-.")[:80].strip("-.")
    return f"{stem or 'segment'}.csv"


async def _stream_csv(
    request: web.Request, filters: SegmentFilters, file_name: str
) -> web.StreamResponse:
    chunks = export_csv(
        request.app[READ_SESSIONS_KEY], filters, visible=auth.visible_channel_ids(request)
    )
    async with contextlib.aclosing(chunks):
        try:
            # The first chunk is read before the answer starts, so a filter that does not
            # fit the definitions (or a database failure) is still a proper error answer.
            first = await anext(chunks)
        except FilterError as err:
            raise _invalid(err) from err
        response = web.StreamResponse(headers=_download_headers(file_name))
        response.content_type = "text/csv"
        response.charset = "utf-8"
        await response.prepare(request)
        try:
            await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
        except ConnectionError:
            raise  # the client went away
        except Exception:
            # The status line is sent: only a transfer that never ends properly (chunked,
            # no last chunk) tells the client the file is incomplete.
            logger.exception("CSV export %s failed part way", file_name)
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
    return response


def _download_headers(file_name: str) -> Mapping[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{file_name}"',
        # Personal data: no shared cache may keep a copy.
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
