"""Business hours: when a team is open, and how much open time lies between two instants.

A calendar is an IANA timezone, ranges of local time per weekday ("09:00"-"12:30",
"13:30"-"18:00"; "24:00" ends a range at midnight) and holidays (whole local days,
closed). Everything here is pure: no database, no clock.

Open time is computed day by day, in real elapsed time: each range of a local day is
turned into the UTC instants it starts and ends with zoneinfo, so a 09:00-17:00 day is
8 hours on a DST day too, while a range across the missing hour is an hour shorter and
one across the repeated hour an hour longer. A range time that does not exist (inside
the spring-forward gap) means the instant the clocks jump; an ambiguous one (inside the
repeated hour) means its first occurrence for a start and its last for an end, so a
range covers the whole span between them. Cost is O(days * ranges), never per minute.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from inbox.week_hours import DAYS, RangeError, clock, day_spans, minutes

MAX_HOLIDAYS = 1000
MAX_HOLIDAY_NAME = 200
MINUTES_PER_DAY = 24 * 60
# add_business_time gives up after this many local days without enough open time
# (a calendar whose week is empty, or a target of centuries).
MAX_SEARCH_DAYS = 366 * 50


class CalendarError(ValueError):
    """An invalid calendar: `field` names the part at fault ("timezone", "week.mon"…)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Holiday:
    """A closed local day."""

    day: date
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Calendar:
    """Business hours: `week[i]` are the open (start, end) minutes of weekday i (Monday 0)."""

    zone: ZoneInfo
    week: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date] = frozenset()

    @property
    def is_never_open(self) -> bool:
        """True when no weekday has a range."""
        return not any(self.week)


# --- parsing ----------------------------------------------------------------------------------


def check_timezone(name: object) -> ZoneInfo:
    """The zone of an IANA name; CalendarError otherwise."""
    if not isinstance(name, str) or not name or len(name) > 64 or "\x00" in name:
        raise CalendarError("timezone", "must be an IANA timezone name, e.g. Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise CalendarError("timezone", f"unknown timezone {name[:64]!r}") from err


def check_week(week: object) -> dict[str, list[list[str]]]:
    """The weekly ranges, checked: {"mon": [["09:00", "17:00"]], ...}; days may be left out.

    Ranges must be sorted and must not overlap (touching is fine): a mistake there is
    refused rather than guessed at.
    """
    if not isinstance(week, Mapping):
        raise CalendarError("week", 'must be an object like {"mon": [["09:00", "17:00"]]}')
    checked: dict[str, list[list[str]]] = {}
    for day, ranges in week.items():
        if day not in DAYS:
            raise CalendarError(
                "week", f"unknown day {str(day)[:20]!r}; days are {', '.join(DAYS)}"
            )
        field = f"week.{day}"
        try:
            spans = day_spans(ranges, sort=False)
        except RangeError as err:
            raise CalendarError(field, str(err)) from err
        checked[day] = [[clock(start), clock(end)] for start, end in spans]
    return {day: checked[day] for day in DAYS if day in checked}


def check_holidays(holidays: object) -> list[dict[str, str | None]]:
    """Holidays, checked and sorted: [{"date": "2024-12-25", "name": "Christmas" | None}]."""
    if not isinstance(holidays, list):
        raise CalendarError("holidays", 'must be a list of {"date": "YYYY-MM-DD", "name": ...}')
    if len(holidays) > MAX_HOLIDAYS:
        raise CalendarError("holidays", f"at most {MAX_HOLIDAYS} holidays")
    seen: dict[date, str | None] = {}
    for index, item in enumerate(holidays):
        field = f"holidays.{index}"
        if not isinstance(item, Mapping) or set(item) - {"date", "name"} or "date" not in item:
            raise CalendarError(field, 'must be {"date": "YYYY-MM-DD", "name": optional text}')
        raw, name = item["date"], item.get("name")
        try:
            day = date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise CalendarError(f"{field}.date", "must be a date YYYY-MM-DD")
        if name is not None and (
            not isinstance(name, str)
            or len(name) > MAX_HOLIDAY_NAME
            or any(ord(c) < 0x20 or c == "\x7f" for c in name)
        ):
            raise CalendarError(
                f"{field}.name", f"must be one line of at most {MAX_HOLIDAY_NAME} characters"
            )
        if day in seen:
            raise CalendarError(f"{field}.date", f"{day.isoformat()} is listed twice")
        seen[day] = name
    return [{"date": day.isoformat(), "name": seen[day]} for day in sorted(seen)]


def calendar(timezone: object, week: object, holidays: object = ()) -> Calendar:
    """A calendar from its stored or submitted parts (checked; CalendarError when invalid)."""
    zone = check_timezone(timezone)
    checked = check_week(week)
    days = check_holidays(list(holidays) if isinstance(holidays, tuple) else holidays)
    return Calendar(
        zone=zone,
        week=tuple(
            tuple((minutes(a), minutes(b)) for a, b in checked.get(day, [])) for day in DAYS
        ),
        holidays=frozenset(date.fromisoformat(str(h["date"])) for h in days),
    )


# --- open time ----------------------------------------------------------------------------------


def business_time(cal: Calendar, start: datetime, end: datetime) -> timedelta:
    """The open time within [start, end) (zero when end <= start); exact to the microsecond."""
    _aware(start, end)
    total = timedelta(0)
    if end <= start:
        return total
    for opens, closes in _open_spans(cal, start, end):
        total += min(closes, end) - opens
    return total


def business_seconds(cal: Calendar | None, start: datetime, end: datetime) -> float:
    """Seconds of open time within [start, end); wall-clock seconds without a calendar."""
    if cal is None:
        _aware(start, end)
        return max(end - start, timedelta(0)).total_seconds()
    return business_time(cal, start, end).total_seconds()


def add_business_time(cal: Calendar, start: datetime, amount: timedelta) -> datetime:
    """The first instant at which `amount` of open time has passed since `start`.

    `business_time(cal, start, result) == amount`. ValueError when the calendar has no
    open hours within MAX_SEARCH_DAYS.
    """
    _aware(start, start)
    if amount < timedelta(0):
        raise ValueError("amount must not be negative")
    if amount == timedelta(0):
        return start
    left = amount
    for opens, closes in _open_spans(cal, start, None):
        if closes - opens >= left:
            return opens + left
        left -= closes - opens
    raise ValueError(f"the calendar is not open for that long within {MAX_SEARCH_DAYS} days")


def add_business_seconds(cal: Calendar | None, start: datetime, seconds: float) -> datetime:
    """`start` plus `seconds` of open time (of wall time without a calendar)."""
    amount = timedelta(seconds=seconds)
    if cal is None:
        return start + amount
    return add_business_time(cal, start, amount)


def _open_spans(
    cal: Calendar, start: datetime, end: datetime | None
) -> Iterator[tuple[datetime, datetime]]:
    """The open spans (UTC) that end after `start` (and begin before `end`), in order."""
    if cal.is_never_open:
        return
    # A day's ranges may begin before its local midnight's offset suggests (DST), so
    # start a day early; spans that end before `start` are skipped.
    day = start.astimezone(cal.zone).date() - timedelta(days=1)
    last = day + timedelta(days=MAX_SEARCH_DAYS)
    if end is not None:
        last = end.astimezone(cal.zone).date()
    previous = start
    while day <= last:
        if day not in cal.holidays:
            for first, stop in cal.week[day.weekday()]:
                # Ranges touching at an ambiguous local time would overlap by the repeated
                # hour: each span starts no earlier than the previous one closed.
                opens = max(_instant(cal.zone, day, first, latest=False), previous)
                closes = _instant(cal.zone, day, stop, latest=True)
                if end is not None and opens >= end:
                    return
                if closes > opens:
                    previous = closes
                    yield opens, closes
        day += timedelta(days=1)


def _instant(zone: ZoneInfo, day: date, minute: int, *, latest: bool) -> datetime:
    """The UTC instant of a local day's minute (1440 is the next midnight); see the module
    docstring for times in the gap and in the repeated hour."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) != naive:
        # In the gap: fold=1 reads it with the later offset (an instant before the jump),
        # fold=0 with the earlier one (after it). Find the jump between them.
        return _jump(zone, min(first, second), max(first, second))
    return max(first, second) if latest else min(first, second)


def _jump(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first instant in (before, after] with after's UTC offset (to the second)."""
    offset = after.astimezone(zone).utcoffset()
    low, high = before, after
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(zone).utcoffset() == offset:
            high = middle
        else:
            low = middle
    return high


def _aware(*values: datetime) -> None:
    for value in values:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given; use timezone-aware datetimes")
