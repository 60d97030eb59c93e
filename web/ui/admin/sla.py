"""SLA policies (/settings/sla, admins): the policies in the order they are tried, and an
editor for their targets (first response, next response, resolution), the conversations
they apply to (channels, teams, priorities) and their order. js/admin/sla.js sends the
form to the API (/api/v1/sla-policies) and shows its field errors.

A policy's targets count the open time of the conversation's business hours (its
team's schedule, else its channel's; inbox/response_metrics.py `calendar_for`), and wall
time where neither has one; the editor shows which schedules that means for the chosen
channels and teams.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from sqlalchemy import select

from inbox.metric_models import SlaPolicy
from inbox.workflow_models import Priority
from web.keys import READ_SESSIONS_KEY
from web.ui.admin.hours import Translate, channel_options, schedules, team_options
from web.ui.admin.shell import admin_page, render_admin
from web.ui.render import translator_of

TARGETS = ("first_response_seconds", "next_response_seconds", "resolution_seconds")
UNITS = (("days", 86_400), ("hours", 3_600), ("minutes", 60))


def priority_names(t: Translate) -> list[tuple[str, str]]:
    """The priorities a policy may name, most urgent first."""
    return [
        (Priority.URGENT.value, t("Urgent")),
        (Priority.HIGH.value, t("High")),
        (Priority.MEDIUM.value, t("Medium")),
        (Priority.LOW.value, t("Low")),
        (Priority.NONE.value, t("No priority")),
    ]


def target_titles(t: Translate) -> dict[str, tuple[str, str]]:
    """Each target's title and what it measures."""
    return {
        "first_response_seconds": (
            t("First response"),
            t("From the customer's first message to the first reply."),
        ),
        "next_response_seconds": (
            t("Next response"),
            t("From each later customer message to the reply to it."),
        ),
        "resolution_seconds": (
            t("Resolution"),
            t("From the conversation's opening to its resolution."),
        ),
    }


def as_amount(seconds: int | None) -> tuple[int | None, str]:
    """A target as the editor shows it: a whole number of the largest unit that fits."""
    if seconds is None:
        return None, "hours"
    for unit, size in UNITS:
        if seconds % size == 0:
            return seconds // size, unit
    return max(1, round(seconds / 60)), "minutes"


def duration(seconds: int | None, t: Translate) -> str:
    """A target in days, hours and minutes ("1 d 4 h"); a dash when unset."""
    if seconds is None:
        return "—"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    parts = [
        text
        for amount, text in (
            (days, t("{n} d", n=days)),
            (hours, t("{n} h", n=hours)),
            (minutes, t("{n} min", n=minutes)),
        )
        if amount
    ]
    return " ".join(parts) or t("{n} min", n=0)


def _after(last: int | None) -> int:
    """A new policy's position: last, so the ones already there keep applying first."""
    return 0 if last is None else last + 10


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the SLA policy pages."""
    router.add_get("/settings/sla", sla_page)
    router.add_get("/settings/sla/new", new_sla_page)
    router.add_get("/settings/sla/{id}", edit_sla_page)


@admin_page("sla")
async def sla_page(request: web.Request) -> web.StreamResponse:
    """The policies in the order they are tried, with their targets and conditions."""
    t = translator_of(request).gettext
    async with request.app[READ_SESSIONS_KEY]() as session:
        policies = list(
            await session.scalars(
                select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.created_at, SlaPolicy.id)
            )
        )
        channels = {str(o.id): o for o in await channel_options(session)}
        teams = {str(o.id): o for o in await team_options(session)}
    priorities = dict(priority_names(t))
    items = [
        {
            "id": p.id,
            "name": p.name,
            "position": p.position,
            "enabled": p.enabled,
            "targets": [duration(getattr(p, name), t) for name in TARGETS],
            "channels": [channels[c].name for c in p.channel_ids if c in channels],
            "teams": [teams[c].name for c in p.team_ids if c in teams],
            "priorities": [priorities.get(v, v) for v in p.priorities],
        }
        for p in policies
    ]
    titles = target_titles(t)
    return render_admin(
        request,
        "admin/policies/sla_list.html",
        "sla",
        {
            "items": items,
            "target_titles": [titles[name][0] for name in TARGETS],
            "saved": request.query.get("saved", ""),
        },
    )


@admin_page("sla")
async def new_sla_page(request: web.Request) -> web.StreamResponse:
    return await _editor(request, None)


@admin_page("sla")
async def edit_sla_page(request: web.Request) -> web.StreamResponse:
    try:
        policy_id = uuid.UUID(request.match_info["id"])
    except ValueError as err:
        raise web.HTTPNotFound() from err
    return await _editor(request, policy_id)


async def _editor(request: web.Request, policy_id: uuid.UUID | None) -> web.StreamResponse:
    t = translator_of(request).gettext
    async with request.app[READ_SESSIONS_KEY]() as session:
        policy = None if policy_id is None else await session.get(SlaPolicy, policy_id)
        if policy_id is not None and policy is None:
            raise web.HTTPNotFound()
        channels = await channel_options(session)
        teams = await team_options(session)
        calendars = await schedules(session)
        last = await session.scalar(select(SlaPolicy.position).order_by(SlaPolicy.position.desc()))
    titles = target_titles(t)
    targets: list[dict[str, Any]] = []
    for name in TARGETS:
        amount, unit = as_amount(getattr(policy, name) if policy else None)
        title, hint = titles[name]
        targets.append({"name": name, "title": title, "hint": hint, "amount": amount, "unit": unit})
    chosen = set(policy.channel_ids + policy.team_ids + policy.priorities) if policy else set()
    return render_admin(
        request,
        "admin/policies/sla_edit.html",
        "sla",
        {
            "policy": policy,
            "position": policy.position if policy else _after(last),
            "targets": targets,
            "units": [("minutes", t("Minutes")), ("hours", t("Hours")), ("days", t("Days"))],
            "channels": channels,
            "teams": teams,
            "priorities": priority_names(t),
            "chosen": chosen,
            "calendars": [
                {
                    "name": c.row.name,
                    "timezone": c.row.timezone,
                    "members": " ".join(str(i) for i in (*c.channel_ids, *c.team_ids)),
                    "channels": [o.name for o in channels if o.id in c.channel_ids],
                    "teams": [o.name for o in teams if o.id in c.team_ids],
                }
                for c in calendars
            ],
        },
    )
