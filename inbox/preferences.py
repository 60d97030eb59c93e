"""The customer's own choices: preferred channel, language, timezone, reachable hours and
currency; and what follows from them (their local time, whether now is a good time).

Reachable hours are wall-clock ranges in the contact's timezone, per weekday:
`{"mon": [["09:00", "17:00"], ["19:00", "21:00"]], "sat": []}`. A day that is absent or
empty is a day they are not reachable. Ranges run from 00:00 to at most 24:00, start
before they end and do not overlap (touching is fine); a range cannot cross midnight,
so 22:00-02:00 is written as two ranges on two days.
"""

from __future__ import annotations

import functools
import re
import uuid
import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from inbox.money import MoneyError, check_currency
from inbox.week_hours import DAYS, RangeError, clock, day_spans, minutes
from timeline.models import Channel, Contact

MAX_LANGUAGE_LENGTH = 35  # contacts.language
# BCP 47 (RFC 5646 section 2.1) as people use it: language, optional extlang, script,
# region, variants; and private-use ("x-...") subtags. Grandfathered tags are not taken.
_LANGUAGE_TAG = re.compile(
    r"(?P<language>[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})"
    r"(?:-(?P<script>[a-z]{4}))?"
    r"(?:-(?P<region>[a-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*)"
    r"(?P<private>-x(?:-[a-z0-9]{1,8})+)?",
)


class PreferenceError(ValueError):
    """A preference that cannot be kept; the message says why."""


def check_language(tag: str) -> str:
    """A BCP 47 language tag in its conventional case ("pt-BR", "zh-Hant-TW", "fa")."""
    lowered = tag.strip().replace("_", "-").lower()
    match = _LANGUAGE_TAG.fullmatch(lowered)
    if match is None or len(lowered) > MAX_LANGUAGE_LENGTH:
        raise PreferenceError('must be a BCP 47 language tag such as "fa", "en" or "pt-BR"')
    parts = [match["language"]]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    normalized = "-".join(parts) + match["variants"] + (match["private"] or "")
    return normalized


@functools.cache
def _zones() -> dict[str, str]:
    # IANA names by their lower-cased form, so "europe/berlin" finds "Europe/Berlin".
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def check_timezone(name: str) -> str:
    """The canonical spelling of an IANA timezone name ("Europe/Berlin")."""
    found = _zones().get(name.strip().lower())
    if found is None:
        raise PreferenceError('must be an IANA timezone name such as "Europe/Berlin"')
    return found


def check_reachable_hours(value: Mapping[str, Any]) -> dict[str, list[list[str]]]:
    """Reachable hours checked and sorted (see the module docstring for the shape)."""
    unknown = [day for day in value if day not in DAYS]
    if unknown:
        raise PreferenceError(f"unknown day {str(unknown[0])[:20]!r}; days are {', '.join(DAYS)}")
    checked: dict[str, list[list[str]]] = {}
    for day in DAYS:
        if day not in value:
            continue
        try:
            spans = day_spans(value[day], sort=True)
        except RangeError as err:
            raise PreferenceError(f"{day}: {err}") from err
        checked[day] = [[clock(start), clock(end)] for start, end in spans]
    return checked


def check_preferred_currency(code: str) -> str:
    """An ISO 4217 code, upper-cased."""
    try:
        return check_currency(code)
    except MoneyError as err:
        raise PreferenceError(str(err)) from err


async def check_channel(session: AsyncSession, channel_id: uuid.UUID) -> uuid.UUID:
    """The id of an existing channel."""
    if await session.get(Channel, channel_id) is None:
        raise PreferenceError("no such channel")
    return channel_id


def local_time(contact: Contact, now: datetime) -> datetime | None:
    """`now` in the contact's timezone; None when they have none."""
    if contact.timezone is None:
        return None
    try:
        zone = zoneinfo.ZoneInfo(contact.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None  # a zone the system's database has since dropped
    return now.astimezone(zone)


def reachable_now(contact: Contact, now: datetime) -> bool | None:
    """Whether `now` falls in the contact's reachable hours; None when they have no
    timezone or no hours (unknown, rather than "no")."""
    local = local_time(contact, now)
    hours = contact.reachable_hours
    if local is None or not isinstance(hours, dict):
        return None
    minute = local.hour * 60 + local.minute
    for item in hours.get(DAYS[local.weekday()], ()):
        try:
            start, end = minutes(item[0]), minutes(item[1])
        except (AttributeError, TypeError, ValueError, IndexError):
            continue  # stored before validation existed: skip what cannot be read
        if start <= minute < end:
            return True
    return False
