"""Business hours and holidays, SLA policies, canned responses.

A placeholder until the section is built: each page says it is coming."""

from __future__ import annotations

from aiohttp import web

from web.ui.admin.shell import admin_page, render_admin


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/settings/hours", hours_page)
    router.add_get("/settings/sla", sla_page)
    router.add_get("/settings/canned", canned_page)


@admin_page("hours")
async def hours_page(request: web.Request) -> web.StreamResponse:
    return render_admin(request, "admin/placeholder.html", "hours")


@admin_page("sla")
async def sla_page(request: web.Request) -> web.StreamResponse:
    return render_admin(request, "admin/placeholder.html", "sla")


@admin_page("canned")
async def canned_page(request: web.Request) -> web.StreamResponse:
    return render_admin(request, "admin/placeholder.html", "canned")
