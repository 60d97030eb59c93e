"""Business hours: open time between instants, across DST, holidays and years (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inbox.business_hours import (
    Calendar,
    CalendarError,
    add_business_seconds,
    add_business_time,
    business_seconds,
    business_time,
    calendar,
    check_holidays,
    check_week,
)

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_9_17 = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
OFFICE = calendar("Europe/Berlin", WEEKDAYS_9_17, [{"date": "2024-05-01", "name": "Labour Day"}])
HOUR = 3600.0


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def test_worked_examples() -> None:
    # Tue 2024-04-30 16:00 → Thu 2024-05-02 10:00: 1 h Tuesday, Wednesday is a holiday,
    # 1 h Thursday = 2 h.
    assert business_seconds(OFFICE, berlin(2024, 4, 30, 16), berlin(2024, 5, 2, 10)) == 2 * HOUR
    # Fri 16:30 → Mon 09:30 across a weekend: 30 min + 30 min.
    assert business_seconds(OFFICE, berlin(2024, 5, 3, 16, 30), berlin(2024, 5, 6, 9, 30)) == HOUR
    # Inside a holiday, and before opening: nothing.
    assert business_seconds(OFFICE, berlin(2024, 5, 1, 8), berlin(2024, 5, 1, 18)) == 0
    assert business_seconds(OFFICE, berlin(2024, 5, 2, 7), berlin(2024, 5, 2, 8)) == 0
    # Without a calendar: wall time.
    assert business_seconds(None, berlin(2024, 5, 2, 7), berlin(2024, 5, 2, 8)) == HOUR
    # Two ranges a day (lunch) and a range to midnight.
    split = calendar("UTC", {"mon": [["09:00", "12:30"], ["13:30", "24:00"]]})
    monday = datetime(2024, 5, 6, tzinfo=UTC)
    assert business_seconds(split, monday, monday + timedelta(days=1)) == 3.5 * HOUR + 10.5 * HOUR
    # Due times: 4 business hours from Tuesday 15:00 is Thursday 11:00 (Wednesday closed).
    assert add_business_seconds(OFFICE, berlin(2024, 4, 30, 15), 4 * HOUR) == berlin(2024, 5, 2, 11)
    # Started outside hours: the clock starts at the next opening (Mon 09:00 + 1 h).
    assert add_business_seconds(OFFICE, berlin(2024, 5, 4, 12), HOUR) == berlin(2024, 5, 6, 10)
    assert add_business_seconds(None, berlin(2024, 5, 4, 12), HOUR) == berlin(2024, 5, 4, 13)


def test_dst_days() -> None:
    # 2024-03-31 and 2024-10-27 are Sundays in Berlin; open every day 09-17 and 00-24.
    sunday = calendar("Europe/Berlin", {"sun": [["00:00", "24:00"]]})
    nights = calendar("Europe/Berlin", {"sun": [["02:30", "03:30"]]})
    lateish = calendar("Europe/Berlin", {"sun": [["00:00", "02:30"], ["02:30", "04:00"]]})
    spring = calendar("Europe/Berlin", {"sun": [["09:00", "17:00"]]})
    week = (berlin(2024, 3, 25), berlin(2024, 4, 1))
    assert business_seconds(spring, *week) == 8 * HOUR  # 8 h even on the DST day
    autumn = (berlin(2024, 10, 21), berlin(2024, 10, 28))
    assert business_seconds(spring, *autumn) == 8 * HOUR
    # A whole day is 23 h in spring and 25 h in autumn: real elapsed time.
    assert business_seconds(sunday, *week) == 23 * HOUR
    assert business_seconds(sunday, *autumn) == 25 * HOUR
    # 02:30-03:30 in spring: 02:00-03:00 does not exist, so 03:00-03:30 is open.
    assert business_seconds(nights, *week) == 0.5 * HOUR
    # In autumn 02:00-03:00 happens twice: from the first 02:30 to 03:30 is 2 h.
    assert business_seconds(nights, *autumn) == 2 * HOUR
    # Ranges touching at the repeated 02:30 are not counted twice: 00:00-04:00 is 5 h.
    assert business_seconds(lateish, *autumn) == 5 * HOUR
    assert add_business_time(nights, week[0], timedelta(minutes=10)) == datetime(
        2024, 3, 31, 1, 10, tzinfo=UTC
    )


def test_long_spans_are_fast_and_exact() -> None:
    # 2020-01-01 .. 2030-01-01 is 3653 days; weekdays in it: 2609; no holidays but one.
    start, end = berlin(2020, 1, 1), berlin(2030, 1, 1)
    assert business_seconds(OFFICE, start, end) == (2609 - 1) * 8 * HOUR  # 2024-05-01 is Wed
    assert add_business_seconds(OFFICE, start, (2609 - 1) * 8 * HOUR) == berlin(2029, 12, 31, 17)


def test_invalid_calendars_are_refused_with_the_field() -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "Europe/Berlin\x00"}, "timezone"),
        ({"week": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "week.mon"),  # overlap
        ({"week": {"tue": [["13:00", "14:00"], ["09:00", "10:00"]]}}, "week.tue"),  # unsorted
        ({"week": {"wed": [["17:00", "09:00"]]}}, "week.wed"),
        ({"week": {"thu": [["9:00", "17:00"]]}}, "week.thu"),
        ({"week": {"fri": [["09:00", "24:01"]]}}, "week.fri"),
        ({"week": {"funday": []}}, "week"),
        ({"week": {"mon": "09:00-17:00"}}, "week.mon"),
        ({"week": []}, "week"),
        ({"holidays": [{"date": "2024-02-30"}]}, "holidays.0.date"),
        ({"holidays": [{"date": "2024-12-25"}, {"date": "2024-12-25"}]}, "holidays.1.date"),
        ({"holidays": [{"date": "2024-12-25", "name": "x" * 201}]}, "holidays.0.name"),
        ({"holidays": [{"date": "2024-12-25", "extra": 1}]}, "holidays.0"),
        ({"holidays": "2024-12-25"}, "holidays"),
    ]
    for given_parts, field in cases:
        parts: dict[str, object] = {"timezone": "UTC", "week": {}, "holidays": []} | given_parts
        with pytest.raises(CalendarError) as caught:
            calendar(parts["timezone"], parts["week"], parts["holidays"])
        assert caught.value.field == field, (given_parts, caught.value)
    assert check_week({"mon": [["09:00", "12:00"], ["12:00", "24:00"]], "sun": []}) == {
        "mon": [["09:00", "12:00"], ["12:00", "24:00"]],
        "sun": [],
    }
    assert check_holidays([{"date": "2024-12-26"}, {"date": "2024-12-25", "name": "Xmas"}]) == [
        {"date": "2024-12-25", "name": "Xmas"},
        {"date": "2024-12-26", "name": None},
    ]
    never = calendar("UTC", {})
    assert business_seconds(never, berlin(2024, 1, 1), berlin(2025, 1, 1)) == 0
    with pytest.raises(ValueError, match="not open"):
        add_business_seconds(never, berlin(2024, 1, 1), 1)
    with pytest.raises(ValueError, match="naive"):
        business_seconds(OFFICE, datetime(2024, 1, 1), berlin(2024, 1, 2))


# --- properties ---------------------------------------------------------------------------------

_times = st.sampled_from(["00:00", "02:00", "02:30", "03:00", "09:00", "12:30", "17:00", "24:00"])


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    zone = draw(
        st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"])
    )
    week: dict[str, list[list[str]]] = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        points = sorted(set(draw(st.lists(_times, max_size=4))))
        week[day] = [list(pair) for pair in zip(points[::2], points[1::2], strict=False)]
    holidays = [
        {"date": d.isoformat()}
        for d in draw(st.sets(st.dates(date(2023, 12, 1), date(2025, 2, 1)), max_size=20))
    ]
    return calendar(zone, week, holidays)


_instants = st.datetimes(
    min_value=datetime(2023, 12, 1), max_value=datetime(2025, 2, 1), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(calendars(), _instants, _instants, _instants)
def test_properties(cal: Calendar, a: datetime, b: datetime, c: datetime) -> None:
    start, middle, end = sorted((a, b, c))
    whole = business_time(cal, start, end)
    assert business_time(cal, start, middle) + business_time(cal, middle, end) == whole
    assert timedelta(0) <= whole <= end - start
    assert business_time(cal, end, start) == timedelta(0)
    if not cal.is_never_open:
        due = add_business_time(cal, start, whole)
        assert due <= end
        assert business_time(cal, start, due) == whole
    for day in cal.holidays:
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=cal.zone)
        next_midnight = datetime.combine(
            day + timedelta(days=1), datetime.min.time(), tzinfo=cal.zone
        )
        assert business_time(cal, midnight, next_midnight) == timedelta(0)
        break
