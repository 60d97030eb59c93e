"""The routing rules page: the ordered list of rules and their editor, and the
auto-assignment policies per channel or team.

The page carries the vocabulary the editor offers (condition and action types, stages,
priorities, placeholders), translated here; the rules, channels, teams and agents come
from the API (web/api/routing.py), read and written by static/js/admin/routing.js."""

from __future__ import annotations

from aiohttp import web

from inbox.lifecycle import Stage
from inbox.placeholders import PLACEHOLDERS
from inbox.routing_rules import MAX_PATTERN, MAX_REPLY, MAX_VALUE
from inbox.workflow_models import Priority
from web.ui.admin.shell import admin_page, render_admin
from web.ui.render import translator_of


@admin_page("routing")
async def routing_page(request: web.Request) -> web.StreamResponse:
    """The rules in the order they run, the rule editor, the assignment policies."""
    t = translator_of(request).gettext
    stage_labels = {
        Stage.NEW: t("New"),
        Stage.LEAD: t("Lead"),
        Stage.QUALIFIED: t("Qualified"),
        Stage.CUSTOMER: t("Customer"),
        Stage.LOST: t("Lost"),
    }
    priority_labels = {
        Priority.NONE: t("No priority"),
        Priority.LOW: t("Low"),
        Priority.MEDIUM: t("Medium"),
        Priority.HIGH: t("High"),
        Priority.URGENT: t("Urgent"),
    }
    return render_admin(
        request,
        "admin/automation/routing.html",
        "routing",
        {
            "stages": [(stage.value, stage_labels[stage]) for stage in Stage],
            "priorities": [(p.value, priority_labels[p]) for p in Priority],
            "placeholders": sorted(PLACEHOLDERS),
            "limits": {"pattern": MAX_PATTERN, "value": MAX_VALUE, "reply": MAX_REPLY},
        },
    )
