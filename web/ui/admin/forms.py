"""Web forms (admins): the list of forms, the builder with its live preview and embed
snippet, and a form's submissions.

| route | what |
|---|---|
| GET /settings/forms | the forms, with their channel and submission counts |
| GET /settings/forms/new | the builder for a new form |
| GET /settings/forms/{id} | the builder of a form, its embed snippet, "Rotate key" |
| GET /settings/forms/{id}/submissions?cursor= | its submissions, newest first, paged |

The pages are server-rendered; the builder's module (static/js/admin/forms_builder.js)
keeps the definition in memory, draws the preview from it and saves it through
/api/v1/forms, so the API's validation is the only one that decides. The public form
endpoints themselves live under /forms/ (web/public_forms/), not here.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from babel.dates import format_datetime

from inbox.models import Role
from timeline.models import Form
from web.api.form_schemas import FormOut
from web.api.schemas import Keyset
from web.keys import READ_SESSIONS_KEY, SETTINGS_KEY
from web.ui.admin import forms_reads
from web.ui.admin.shell import admin_page, current_user, render_admin
from web.ui.render import language_of

SECTION = "forms"
_ID = r"{id:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}}"


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/settings/forms", forms_page)
    router.add_get("/settings/forms/new", new_form_page)
    router.add_get(f"/settings/forms/{_ID}", form_page)
    router.add_get(f"/settings/forms/{_ID}/submissions", submissions_page)


def when(value: datetime, language: str) -> str:
    """A date and time for people, in UTC (the page's script shows it in the browser's
    own time zone once it runs)."""
    text = format_datetime(value.astimezone(UTC), "short", tzinfo=UTC, locale=language)
    return f"{text} UTC"


@admin_page(SECTION)
async def forms_page(request: web.Request) -> web.StreamResponse:
    """The forms, newest first; without a web form channel, how to connect one."""
    async with request.app[READ_SESSIONS_KEY]() as session:
        forms = await forms_reads.form_summaries(session)
        channels = await forms_reads.webform_channels(session)
    return render_admin(
        request,
        "admin/forms/list.html",
        SECTION,
        {
            "forms": forms,
            "has_channels": bool(channels),
            "when": when,
            "language": language_of(request),
        },
    )


async def _builder(request: web.Request, form: dict[str, Any] | None, **extra: Any) -> web.Response:
    async with request.app[READ_SESSIONS_KEY]() as session:
        channels = await forms_reads.webform_channels(session)
        attributes = await forms_reads.attribute_choices(session)
        teams = await forms_reads.team_choices(session)
    return render_admin(
        request,
        "admin/forms/builder.html",
        SECTION,
        {
            "form": form,
            "channels": channels,
            "attributes": attributes,
            "teams": teams,
            # Giving a form a new key is the API's admin-only action; the section is for
            # admins today, but the button follows the API's rule, not the nav's.
            "can_rotate_key": current_user(request).role == Role.ADMIN,
            **extra,
        },
    )


@admin_page(SECTION)
async def new_form_page(request: web.Request) -> web.StreamResponse:
    """The builder for a new form (name, email and message fields to start from)."""
    return await _builder(request, None, created=False, submissions=0)


async def _form_row(request: web.Request) -> Form:
    form_id = uuid.UUID(request.match_info["id"])
    async with request.app[READ_SESSIONS_KEY]() as session:
        form = await session.get(Form, form_id)
    if form is None:
        raise web.HTTPNotFound()
    return form


@admin_page(SECTION)
async def form_page(request: web.Request) -> web.StreamResponse:
    """The builder of a saved form, with its embed snippet."""
    form = await _form_row(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        count = await forms_reads.submission_count(session, form.id)
    out = FormOut.of(form, request.app[SETTINGS_KEY].base_url).model_dump(mode="json")
    created = request.query.get("created") == "1"
    return await _builder(request, out, created=created, submissions=count)


@admin_page(SECTION)
async def submissions_page(request: web.Request) -> web.StreamResponse:
    """A form's submissions, newest first, a page at a time (`?cursor=`)."""
    form = await _form_row(request)
    keyset: Keyset | None = None
    if cursor := request.query.get("cursor"):
        # A cursor mangled in the address bar: the newest page, rather than an error page.
        with contextlib.suppress(ValueError):
            keyset = Keyset.decode(cursor)
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows, next_cursor = await forms_reads.submissions_page(session, form.id, keyset)
        count = await forms_reads.submission_count(session, form.id)
    return render_admin(
        request,
        "admin/forms/submissions.html",
        SECTION,
        {
            "form": form,
            "rows": rows,
            "next_cursor": next_cursor,
            "first_page": keyset is None,
            "submissions": count,
            "when": when,
            "language": language_of(request),
        },
    )
