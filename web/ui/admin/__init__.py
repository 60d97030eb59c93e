"""The admin and manager screens (issue 11): channels, the team and its rules, forms,
contacts and the lead pipeline, reports. Each section is a module with `add_routes`; the
navigation they share is `nav.py`, the page guard and layout `shell.py`.

Sections (module: paths, who may open them; nav.py has the exact roles):
- contacts.py: /contacts, /contacts/{id} (everyone; the API filters what they see);
- pipeline.py: /pipeline, /contacts/merge-suggestions (everyone);
- reports.py: /reports (managers, admins);
- channels.py: /settings/channels (admins);
- team.py: /settings/team (admins);
- policies.py: /settings/hours, /settings/sla (admins), /settings/canned (managers too);
- automation.py: /settings/routing, /settings/webhooks (admins);
- forms.py: /settings/forms (admins).
"""

from __future__ import annotations

from aiohttp import web

from web.ui.admin import (
    automation,
    channels,
    contacts,
    forms,
    pipeline,
    policies,
    reports,
    team,
)


def add_admin(router: web.UrlDispatcher) -> None:
    """Registers every section's pages."""
    for section in (contacts, pipeline, reports, channels, team, policies, automation, forms):
        section.add_routes(router)
