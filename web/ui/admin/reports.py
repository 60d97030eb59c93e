"""Reports: the live overview, response times, tables, volume, the hour-of-week heatmap.

A placeholder until the section is built: each page says it is coming."""

from __future__ import annotations

from aiohttp import web

from web.ui.admin.shell import admin_page, render_admin


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/reports", reports_page)


@admin_page("reports")
async def reports_page(request: web.Request) -> web.StreamResponse:
    return render_admin(request, "admin/placeholder.html", "reports")
