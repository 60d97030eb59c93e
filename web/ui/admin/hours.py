"""Business hours (/settings/hours, admins): the schedules, each an IANA time zone, open
ranges per weekday and holidays, and the channels and teams measured by it; a list and
an editor. The editor is a server-rendered form; js/admin/hours.js sends it to the API
(/api/v1/business-hours) and shows its field errors.

The channels, teams and calendars these pages read are also what the SLA editor shows
(sla.py), so their loaders live here.
"""

from __future__ import annotations

import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from aiohttp import web
from babel.dates import format_date, get_day_names
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import Team
from inbox.metric_models import BusinessHours, ChannelBusinessHours, TeamBusinessHours
from inbox.week_hours import DAYS
from timeline.models import Channel
from web.keys import READ_SESSIONS_KEY
from web.ui.admin.shell import admin_page, render_admin
from web.ui.render import translator_of

Translate = Callable[..., str]
EN_DASH = "\u2013"  # between the ends of a range of days or times

# A new schedule starts as a common office week, to be changed rather than typed.
DEFAULT_WEEK: dict[str, list[list[str]]] = {
    day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
}


def day_names(language: str) -> dict[str, tuple[str, str]]:
    """Each weekday key's (full, short) name in `language`, Monday first as stored."""
    wide = get_day_names("wide", locale=language)
    short = get_day_names("abbreviated", locale=language)
    return {day: (str(wide[i]), str(short[i])) for i, day in enumerate(DAYS)}


@cache
def zone_names() -> tuple[str, ...]:
    """The IANA zone names this machine knows (the ones the API accepts), for the picker."""
    return tuple(sorted(zoneinfo.available_timezones()))


@dataclass(frozen=True, slots=True)
class Option:
    """A channel or a team to pick."""

    id: uuid.UUID
    name: str
    icon: str


async def channel_options(session: AsyncSession) -> list[Option]:
    rows = await session.execute(
        select(Channel.id, Channel.name, Channel.kind).order_by(Channel.name)
    )
    return [Option(id_, name, f"channel-{kind}") for id_, name, kind in rows]


async def team_options(session: AsyncSession) -> list[Option]:
    rows = await session.execute(select(Team.id, Team.name).order_by(Team.name))
    return [Option(id_, name, "users") for id_, name in rows]


@dataclass(slots=True)
class Schedule:
    """A calendar as the pages show it."""

    row: BusinessHours
    channel_ids: list[uuid.UUID] = field(default_factory=list)
    team_ids: list[uuid.UUID] = field(default_factory=list)


async def schedules(session: AsyncSession) -> list[Schedule]:
    """Every calendar by name, with the channels and teams it measures."""
    found = {
        row.id: Schedule(row)
        for row in await session.scalars(select(BusinessHours).order_by(BusinessHours.name))
    }
    for channel_id, calendar_id in await session.execute(
        select(ChannelBusinessHours.channel_id, ChannelBusinessHours.business_hours_id)
    ):
        found[calendar_id].channel_ids.append(channel_id)
    for team_id, calendar_id in await session.execute(
        select(TeamBusinessHours.team_id, TeamBusinessHours.business_hours_id)
    ):
        found[calendar_id].team_ids.append(team_id)
    return list(found.values())


def week_summary(week: dict[str, Any], language: str) -> list[tuple[str, str]]:
    """The open days, those with the same ranges folded together:
    [("Mon-Fri", "09:00-17:00"), ("Sat", "10:00-14:00")] (with en dashes); empty when never
    open."""
    names = day_names(language)
    runs: list[tuple[list[str], str]] = []
    for day in DAYS:
        ranges = week.get(day) or []
        text = ", ".join(f"{start}{EN_DASH}{end}" for start, end in ranges)
        if runs and runs[-1][1] == text and _follows(runs[-1][0][-1], day):
            runs[-1][0].append(day)
        else:
            runs.append(([day], text))
    return [(_day_span(days, names), text) for days, text in runs if text]


def _follows(previous: str, day: str) -> bool:
    return DAYS.index(day) == DAYS.index(previous) + 1


def _day_span(days: list[str], names: dict[str, tuple[str, str]]) -> str:
    first, last = names[days[0]][1], names[days[-1]][1]
    return first if len(days) == 1 else f"{first}{EN_DASH}{last}"


def upcoming_holidays(
    holidays: Iterable[dict[str, Any]], today: date, language: str
) -> list[tuple[str, str, str | None]]:
    """The holidays from today on, soonest first (stored sorted by date): (ISO date, the
    date as `language` writes it, name)."""
    return [
        (day.isoformat(), str(format_date(day, "medium", locale=language)), h.get("name"))
        for h in holidays
        if (day := date.fromisoformat(str(h["date"]))) >= today
    ]


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the business hours pages."""
    router.add_get("/settings/hours", hours_page)
    router.add_get("/settings/hours/new", new_hours_page)
    router.add_get("/settings/hours/{id}", edit_hours_page)


@admin_page("hours")
async def hours_page(request: web.Request) -> web.StreamResponse:
    """The schedules, what they measure, and their holidays to come."""
    language = translator_of(request).language
    async with request.app[READ_SESSIONS_KEY]() as session:
        found = await schedules(session)
        channels = {o.id: o for o in await channel_options(session)}
        teams = {o.id: o for o in await team_options(session)}
    today = date.today()
    items = [
        {
            "id": s.row.id,
            "name": s.row.name,
            "timezone": s.row.timezone,
            "summary": week_summary(s.row.week, language),
            "holidays": upcoming_holidays(s.row.holidays, today, language),
            "channels": [channels[c] for c in s.channel_ids if c in channels],
            "teams": [teams[c] for c in s.team_ids if c in teams],
        }
        for s in found
    ]
    return render_admin(
        request,
        "admin/policies/hours_list.html",
        "hours",
        {"items": items, "saved": request.query.get("saved", "")},
    )


@admin_page("hours")
async def new_hours_page(request: web.Request) -> web.StreamResponse:
    return await _editor(request, None)


@admin_page("hours")
async def edit_hours_page(request: web.Request) -> web.StreamResponse:
    try:
        calendar_id = uuid.UUID(request.match_info["id"])
    except ValueError as err:
        raise web.HTTPNotFound() from err
    return await _editor(request, calendar_id)


async def _editor(request: web.Request, calendar_id: uuid.UUID | None) -> web.StreamResponse:
    async with request.app[READ_SESSIONS_KEY]() as session:
        channels = await channel_options(session)
        teams = await team_options(session)
        found = {s.row.id: s for s in await schedules(session)}
    schedule = None if calendar_id is None else found.get(calendar_id)
    if calendar_id is not None and schedule is None:
        raise web.HTTPNotFound()
    # Which other schedule measures each channel and team: picking it here moves it.
    elsewhere = {
        str(member): s.row.name
        for s in found.values()
        if s is not schedule
        for member in (*s.channel_ids, *s.team_ids)
    }
    names = day_names(translator_of(request).language)
    return render_admin(
        request,
        "admin/policies/hours_edit.html",
        "hours",
        {
            "schedule": schedule,
            "name": schedule.row.name if schedule else "",
            "timezone": schedule.row.timezone if schedule else "UTC",
            "week": schedule.row.week if schedule else DEFAULT_WEEK,
            "holidays": schedule.row.holidays if schedule else [],
            "chosen": {str(i) for i in (*schedule.channel_ids, *schedule.team_ids)}
            if schedule
            else set(),
            "days": [(day, names[day][0]) for day in DAYS],
            "zones": zone_names(),
            "channels": channels,
            "teams": teams,
            "elsewhere": elsewhere,
        },
    )
