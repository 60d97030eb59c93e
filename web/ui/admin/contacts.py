"""Contacts: the list with segment filters, saved segments and CSV export (/contacts), and
one contact's page with its details, notes, tasks, conversations and timeline, the
export of their personal data and its erasure (/contacts/{id}).

The pages render the frame, the labels and what the scripts need to know (what this
user may do, the users, channels and attribute definitions); js/admin/contacts_*.js
fill them from the JSON API, which filters what each user may see and checks every
action's role again.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from timeline.merge import resolve_contact_id
from web.api.contacts import visible_contact
from web.errors import ApiError
from web.keys import READ_SESSIONS_KEY
from web.ui.admin.contacts_data import labels, page_data
from web.ui.admin.shell import admin_page, render_admin
from web.ui.render import translator_of

SECTION = "contacts"
# A UUID only, so that /contacts/merge-suggestions (pipeline.py) stays its own page.
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/contacts", contacts_page)
    router.add_get("/contacts/{id:" + _UUID + "}", contact_page)


@admin_page(SECTION)
async def contacts_page(request: web.Request) -> web.StreamResponse:
    """The contact list, its filter builder and the saved segments."""
    async with request.app[READ_SESSIONS_KEY]() as session:
        data = await page_data(session, request)
    return render_admin(request, "admin/contacts/list.html", SECTION, _context(request, data))


@admin_page(SECTION)
async def contact_page(request: web.Request) -> web.StreamResponse:
    """One contact; a merged contact's old address leads to the contact it became."""
    asked = uuid.UUID(request.match_info["id"])
    async with request.app[READ_SESSIONS_KEY]() as session:
        contact_id = await resolve_contact_id(session, asked)
        if contact_id is None:
            raise web.HTTPNotFound()
        try:
            contact = await visible_contact(session, request, contact_id)
        except ApiError as err:  # the same 404 for a contact this user may not see
            raise web.HTTPNotFound() from err
        if contact_id != asked:
            raise web.HTTPFound(f"/contacts/{contact_id}")
        data = await page_data(session, request)
    data["contact_id"] = str(contact.id)
    return render_admin(
        request,
        "admin/contacts/contact.html",
        SECTION,
        {
            **_context(request, data),
            # The first paint's heading; the script keeps it current.
            "contact_name": contact.name,
        },
    )


def _context(request: web.Request, data: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "can": data["can"], "labels": labels(translator_of(request).gettext)}
