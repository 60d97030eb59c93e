"""Automation: routing rules (routing_admin.py) and outgoing webhooks with their delivery
log (webhooks_admin.py). Both pages are admins' only (nav.py) and drive the JSON API from
small modules (static/js/admin/routing.js, webhooks.js)."""

from __future__ import annotations

from aiohttp import web

from web.ui.admin import routing_admin, webhooks_admin


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/settings/routing", routing_admin.routing_page)
    router.add_get("/settings/webhooks", webhooks_admin.webhooks_page)
