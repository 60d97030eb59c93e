"""The navigation of the admin and manager screens: one entry per page, by group, shown
to the roles that may open it (the pages check the same roles: shell.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from inbox.models import Role

EVERYONE = frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT})
MANAGERS = frozenset({Role.ADMIN, Role.MANAGER})
ADMINS = frozenset({Role.ADMIN})


@dataclass(frozen=True, slots=True)
class NavItem:
    """One link of the sidebar; `key` is what a page passes as its `section`."""

    key: str
    path: str
    title: str  # the English source string, translated when shown
    icon: str
    group: str  # "customers", "reports" or "settings"
    roles: frozenset[Role]


NAV: tuple[NavItem, ...] = (
    NavItem("contacts", "/contacts", "Contacts", "users", "customers", EVERYONE),
    NavItem("pipeline", "/pipeline", "Lead pipeline", "layers", "customers", EVERYONE),
    NavItem(
        "merge", "/contacts/merge-suggestions", "Merge suggestions", "user", "customers", EVERYONE
    ),
    NavItem("reports", "/reports", "Reports", "clock", "reports", MANAGERS),
    NavItem("channels", "/settings/channels", "Channels", "message", "settings", ADMINS),
    NavItem("team", "/settings/team", "Agents and teams", "users", "settings", ADMINS),
    NavItem("hours", "/settings/hours", "Business hours", "clock", "settings", ADMINS),
    NavItem("sla", "/settings/sla", "SLA policies", "alert", "settings", ADMINS),
    NavItem("canned", "/settings/canned", "Canned responses", "send", "settings", MANAGERS),
    NavItem("routing", "/settings/routing", "Routing rules", "layers", "settings", ADMINS),
    NavItem("webhooks", "/settings/webhooks", "Outgoing webhooks", "send", "settings", ADMINS),
    NavItem("forms", "/settings/forms", "Web forms", "channel-webform", "settings", ADMINS),
)

GROUPS: tuple[tuple[str, str], ...] = (
    ("customers", "Customers"),
    ("reports", "Reports"),
    ("settings", "Settings"),
)


def item(key: str) -> NavItem:
    """The entry of a section key (a KeyError is a programming error)."""
    return next(entry for entry in NAV if entry.key == key)


def visible_nav(role: str, t: Callable[[str], str]) -> list[tuple[str, list[tuple[NavItem, str]]]]:
    """The groups and entries `role` may open, with their translated titles."""
    groups = []
    for group, title in GROUPS:
        entries = [(entry, t(entry.title)) for entry in NAV if entry.group == group]
        allowed = [(entry, text) for entry, text in entries if role in entry.roles]
        if allowed:
            groups.append((t(title), allowed))
    return groups
