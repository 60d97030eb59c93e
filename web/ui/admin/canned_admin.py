"""Canned responses (/settings/canned, managers and admins): the responses the user may
use, searched by short code or title and filtered by scope, and an editor with the
placeholders to insert and a live preview (js/admin/canned.js, through the API's
/api/v1/canned-responses and its /preview).

Who sees and writes which scope is inbox/canned.py's decision, the same as the API's:
staff see global and every team's responses and their own personal ones.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import canned
from inbox.canned import SHORT_CODE_MAX, TEXT_MAX, TITLE_MAX
from inbox.canned_models import CannedResponse, CannedScope
from inbox.placeholders import PLACEHOLDERS
from web.api.canned_schemas import CannedCursor
from web.keys import READ_SESSIONS_KEY
from web.ui.admin.hours import Translate, team_options
from web.ui.admin.shell import admin_page, current_user, render_admin
from web.ui.render import translator_of

PAGE_SIZE = 50
QUERY_MAX = 200


def scope_names(t: Translate) -> dict[str, str]:
    return {
        CannedScope.GLOBAL.value: t("Everyone"),
        CannedScope.TEAM.value: t("A team"),
        CannedScope.PERSONAL.value: t("Only me"),
    }


def placeholder_help(t: Translate) -> list[tuple[str, str]]:
    """Each placeholder and what it is filled with, in the order of inbox/placeholders.py."""
    described = {
        "contact.name": t("The contact's full name"),
        "contact.first_name": t("The first word of the contact's name"),
        "contact.last_name": t("The rest of the contact's name"),
        "contact.email": t("The contact's email address"),
        "contact.phone": t("The contact's phone number"),
        "agent.name": t("The name of the agent who replies"),
        "agent.first_name": t("The first word of the agent's name"),
        "agent.email": t("The agent's email address"),
        "conversation.id": t("The conversation's id"),
        "channel.name": t("The name of the conversation's channel"),
    }
    return [(name, described.get(name, english)) for name, english in PLACEHOLDERS.items()]


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the canned response pages."""
    router.add_get("/settings/canned", canned_page)
    router.add_get("/settings/canned/new", new_canned_page)
    router.add_get("/settings/canned/{id}", edit_canned_page)


def _search(request: web.Request) -> tuple[str, str | None, CannedCursor | None]:
    """The list's query: search text, scope and page, anything malformed dropped."""
    q = request.query.get("q", "").replace("\x00", "").strip()[:QUERY_MAX]
    scope = request.query.get("scope")
    if scope not in {s.value for s in CannedScope}:
        scope = None
    try:
        cursor = CannedCursor.decode(request.query["cursor"]) if "cursor" in request.query else None
    except ValueError:
        cursor = None
    return q, scope, cursor


async def _page(
    session: AsyncSession,
    reader: canned.Reader,
    q: str,
    scope: str | None,
    cursor: CannedCursor | None,
) -> tuple[list[CannedResponse], str | None]:
    statement = select(CannedResponse).where(canned.usable_by(reader))
    if q:
        statement = statement.where(
            CannedResponse.search_key.contains(q.casefold(), autoescape=True)
        )
    if scope is not None:
        statement = statement.where(CannedResponse.scope == scope)
    if cursor is not None:
        statement = statement.where(
            or_(
                CannedResponse.short_code > cursor.code,
                and_(CannedResponse.short_code == cursor.code, CannedResponse.id > cursor.id),
            )
        )
    rows = list(
        await session.scalars(
            statement.order_by(CannedResponse.short_code, CannedResponse.id).limit(PAGE_SIZE + 1)
        )
    )
    page = rows[:PAGE_SIZE]
    more = len(rows) > PAGE_SIZE
    return page, CannedCursor(code=page[-1].short_code, id=page[-1].id).encode() if more else None


@admin_page("canned")
async def canned_page(request: web.Request) -> web.StreamResponse:
    """The responses the user may use, by short code, PAGE_SIZE at a time."""
    t = translator_of(request).gettext
    q, scope, cursor = _search(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        reader = await canned.reader_of(session, current_user(request))
        rows, next_cursor = await _page(session, reader, q, scope, cursor)
        teams = {o.id: o.name for o in await team_options(session)}
    scopes = scope_names(t)
    items = [
        {
            "id": row.id,
            "short_code": row.short_code,
            "title": row.title,
            "text": row.text,
            "scope": row.scope,
            "scope_name": scopes[row.scope],
            "team": teams.get(row.team_id) if row.team_id else None,
            "updated_at": row.updated_at,
            "can_edit": canned.may_write(reader, CannedScope(row.scope), row.team_id),
        }
        for row in rows
    ]
    return render_admin(
        request,
        "admin/policies/canned_list.html",
        "canned",
        {
            "items": items,
            "q": q,
            "scope": scope,
            "scopes": list(scopes.items()),
            "next_cursor": next_cursor,
            "paged": cursor is not None,
            "saved": request.query.get("saved", ""),
        },
    )


@admin_page("canned")
async def new_canned_page(request: web.Request) -> web.StreamResponse:
    return await _editor(request, None)


@admin_page("canned")
async def edit_canned_page(request: web.Request) -> web.StreamResponse:
    try:
        canned_id = uuid.UUID(request.match_info["id"])
    except ValueError as err:
        raise web.HTTPNotFound() from err
    return await _editor(request, canned_id)


async def _editor(request: web.Request, canned_id: uuid.UUID | None) -> web.StreamResponse:
    t = translator_of(request).gettext
    async with request.app[READ_SESSIONS_KEY]() as session:
        reader = await canned.reader_of(session, current_user(request))
        row = None if canned_id is None else await canned.usable(session, reader, canned_id)
        if canned_id is not None and row is None:
            raise web.HTTPNotFound()
        teams = await team_options(session)
    if row is not None and not canned.may_write(reader, CannedScope(row.scope), row.team_id):
        raise web.HTTPForbidden()
    values: dict[str, Any] = {
        "scope": row.scope if row else CannedScope.GLOBAL.value,
        "team_id": str(row.team_id) if row and row.team_id else "",
        "short_code": row.short_code if row else "",
        "title": row.title if row else "",
        "text": row.text if row else "",
    }
    return render_admin(
        request,
        "admin/policies/canned_edit.html",
        "canned",
        {
            "response": row,
            "values": values,
            "scopes": list(scope_names(t).items()),
            "teams": teams,
            "placeholders": placeholder_help(t),
            "limits": {"short_code": SHORT_CODE_MAX, "title": TITLE_MAX, "text": TEXT_MAX},
        },
    )
