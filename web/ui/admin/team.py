"""Agents (invitations, roles, channel membership, capacity) and teams.

A placeholder until the section is built: each page says it is coming."""

from __future__ import annotations

from aiohttp import web

from web.ui.admin.shell import admin_page, render_admin


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/settings/team", team_page)


@admin_page("team")
async def team_page(request: web.Request) -> web.StreamResponse:
    return render_admin(request, "admin/placeholder.html", "team")
