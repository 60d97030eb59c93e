"""The span of time a report covers: whole days of the reader's timezone.

A report from 2024-03-30 to 2024-03-31 in Europe/Berlin runs from 00:00 local time on the
30th to 24:00 local time on the 31st. Those are different UTC offsets (summer time starts
on the 31st), so the span is 47 hours, not 48: the bounds are computed per day edge,
never as a day count times 24 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from inbox import business_hours

MAX_DAYS = 400


class PeriodError(ValueError):
    """A report period that cannot be used; `field` names the query parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Period:
    """Days `first`..`last` (inclusive) of `zone`, and the UTC instants they span."""

    first: date
    last: date
    zone: ZoneInfo
    start: datetime  # UTC, inclusive: 00:00 local of `first`
    end: datetime  # UTC, exclusive: 24:00 local of `last`

    @property
    def timezone(self) -> str:
        """The IANA name of the zone."""
        return self.zone.key


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local day begins.

    Where clocks jump over midnight (America/Santiago, some years), 00:00 does not exist;
    zoneinfo then reads it with the offset in force before the jump, which lands on the
    first instant of the day (01:00 in the new offset), which is what a day's start means.
    """
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def period(first: date, last: date, timezone: str) -> Period:
    """The period of a report; PeriodError for an unknown zone, reversed or overlong range."""
    try:
        zone = business_hours.check_timezone(timezone)
    except business_hours.CalendarError as err:
        raise PeriodError("timezone", err.message) from err
    if first > last:
        raise PeriodError("to", "must not be before 'from'")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise PeriodError("to", f"a report covers at most {MAX_DAYS} days (this is {days})")
    # date.max + 1 day would overflow; MAX_DAYS keeps `last` well inside in practice, but
    # a far-future `to` still must not crash.
    try:
        end = local_midnight(last + timedelta(days=1), zone)
        start = local_midnight(first, zone)
    except OverflowError as err:
        raise PeriodError("to", "is out of range") from err
    return Period(first=first, last=last, zone=zone, start=start, end=end)
