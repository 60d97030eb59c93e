"""Routing rules (conditions and actions) and outgoing webhooks with their delivery log.

A placeholder until the section is built: each page says it is coming."""

from __future__ import annotations

from aiohttp import web

from web.ui.admin.shell import admin_page, render_admin


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/settings/routing", routing_page)
    router.add_get("/settings/webhooks", webhooks_page)


@admin_page("routing")
async def routing_page(request: web.Request) -> web.StreamResponse:
    return render_admin(request, "admin/placeholder.html", "routing")


@admin_page("webhooks")
async def webhooks_page(request: web.Request) -> web.StreamResponse:
    return render_admin(request, "admin/placeholder.html", "webhooks")
