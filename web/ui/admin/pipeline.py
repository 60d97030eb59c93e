"""The lead pipeline board (a column per lifecycle stage) and the queue of merge
suggestions.

A placeholder until the section is built: each page says it is coming."""

from __future__ import annotations

from aiohttp import web

from web.ui.admin.shell import admin_page, render_admin


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/pipeline", pipeline_page)
    router.add_get("/contacts/merge-suggestions", merge_page)


@admin_page("pipeline")
async def pipeline_page(request: web.Request) -> web.StreamResponse:
    return render_admin(request, "admin/placeholder.html", "pipeline")


@admin_page("merge")
async def merge_page(request: web.Request) -> web.StreamResponse:
    return render_admin(request, "admin/placeholder.html", "merge")
