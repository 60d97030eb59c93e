"""Agents (invitations, roles, channel membership, capacity) and teams: /settings/team.

The page is rendered on the server from the database (team_rows.py); its script
(static/js/admin/team.js) changes things through the JSON API (users, invitations,
capacity, teams) and reloads the page, so what is shown is always what is stored.
The invitee's set-password page, /invitations/{token}, is public: invitation_pages.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from babel.dates import format_date

from inbox.models import Role
from timeline.models import utcnow
from web.keys import READ_SESSIONS_KEY
from web.ui.admin.shell import admin_page, render_admin
from web.ui.admin.team_rows import ROLES, team_screen
from web.ui.invitation_pages import add_invitation_routes
from web.ui.render import language_of, translator_of


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages, and the public set-password page of invitations."""
    router.add_get("/settings/team", team_page)
    add_invitation_routes(router)


@admin_page("team")
async def team_page(request: web.Request) -> web.StreamResponse:
    """The agents table and the teams list."""
    t = translator_of(request).gettext
    language = language_of(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        screen = await team_screen(session)
    role_names = {Role.ADMIN: t("Admin"), Role.MANAGER: t("Manager"), Role.AGENT: t("Agent")}

    def day(value: datetime) -> str:
        return format_date(value.astimezone(UTC).date(), "medium", locale=language)

    notices = {"saved": t("Saved."), "deleted": t("The team was deleted.")}
    return render_admin(
        request,
        "admin/team/index.html",
        "team",
        {
            "screen": screen,
            "roles": [(role.value, role_names[role]) for role in ROLES],
            "role_names": {role.value: name for role, name in role_names.items()},
            "now": utcnow(),
            "day": day,
            "notice": notices.get(request.query.get("done", "")),
            "strings": {
                "failed": t("That did not work: {reason}"),
                "check": t("It could not be saved. Check the fields marked."),
                "copied": t("Copied."),
            },
        },
    )
