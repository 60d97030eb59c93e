"""The policies section: business hours and holidays (hours.py), SLA policies (sla.py),
canned responses (canned_admin.py). Each page module registers its own routes."""

from __future__ import annotations

from aiohttp import web

from web.ui.admin import canned_admin, hours, sla


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    for module in (hours, sla, canned_admin):
        module.add_routes(router)
