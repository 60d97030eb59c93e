"""The customer's preferences: language tags, timezones, reachable hours, local time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbox.preferences import (
    PreferenceError,
    check_language,
    check_preferred_currency,
    check_reachable_hours,
    check_timezone,
    local_time,
    reachable_now,
)
from inbox.week_hours import MAX_RANGES_PER_DAY
from timeline.models import Contact


@pytest.mark.parametrize(
    ("tag", "normalized"),
    [
        ("fa", "fa"),
        ("FA", "fa"),
        ("pt-br", "pt-BR"),
        ("PT_BR", "pt-BR"),
        (" en-us ", "en-US"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("sr-LATN", "sr-Latn"),
        ("es-419", "es-419"),
        ("de-ch-1996", "de-CH-1996"),
        ("en-x-pirate", "en-x-pirate"),
        ("yue", "yue"),
    ],
)
def test_language_tags_are_normalized(tag: str, normalized: str) -> None:
    assert check_language(tag) == normalized


@pytest.mark.parametrize(
    "tag",
    [
        "",
        "e",
        "englishes",
        "en--us",
        "en-",
        "-en",
        "en us",
        "en-USA1",
        "12",
        "en\x00",
        "fa-" + "a" * 40,
    ],
)
def test_bad_language_tags_are_refused(tag: str) -> None:
    with pytest.raises(PreferenceError, match="BCP 47"):
        check_language(tag)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("Europe/Berlin", "Europe/Berlin"), ("europe/berlin", "Europe/Berlin"), ("UTC", "UTC")],
)
def test_timezones(name: str, canonical: str) -> None:
    assert check_timezone(name) == canonical


@pytest.mark.parametrize(
    "name",
    ["Mars/Olympus", "", "../../etc/passwd", "/etc/localtime", "Europe/Berlin\x00", "+02:00"],
)
def test_unknown_timezones_are_refused(name: str) -> None:
    with pytest.raises(PreferenceError, match="IANA"):
        check_timezone(name)


def test_currency_preference() -> None:
    assert check_preferred_currency("jpy") == "JPY"
    with pytest.raises(PreferenceError):
        check_preferred_currency("YEN")


def test_reachable_hours_are_sorted_and_kept() -> None:
    hours = {
        "mon": [["19:00", "21:00"], ["09:00", "17:00"]],
        "sat": [],
        "sun": [["00:00", "24:00"]],
    }
    assert check_reachable_hours(hours) == {
        "mon": [["09:00", "17:00"], ["19:00", "21:00"]],
        "sat": [],
        "sun": [["00:00", "24:00"]],
    }


def test_touching_ranges_are_fine() -> None:
    hours = {"tue": [["09:00", "12:00"], ["12:00", "13:00"]]}
    assert check_reachable_hours(hours) == hours


@pytest.mark.parametrize(
    ("hours", "says"),
    [
        ({"monday": [["09:00", "17:00"]]}, "unknown day"),
        ({"mon": [["09:00", "17:00"], ["16:00", "18:00"]]}, "overlap"),
        ({"mon": [["09:00", "17:00"], ["09:00", "17:00"]]}, "overlap"),
        ({"mon": [["17:00", "09:00"]]}, "start before"),
        ({"mon": [["09:00", "09:00"]]}, "start before"),
        ({"mon": [["22:00", "02:00"]]}, "start before"),
        ({"mon": [["09:00", "24:01"]]}, "HH:MM"),
        ({"mon": [["24:00", "24:00"]]}, "start before"),
        ({"mon": [["9:00", "17:00"]]}, "HH:MM"),
        ({"mon": [["09:60", "17:00"]]}, "HH:MM"),
        ({"mon": [["09:00"]]}, "HH:MM"),
        ({"mon": [[9, 17]]}, "HH:MM"),
        ({"mon": "09:00-17:00"}, "list"),
        ({"mon": [["09:00", "17:00", "18:00"]]}, "HH:MM"),
        ({"mon": [["\uff10\uff19:00", "17:00"]]}, "HH:MM"),  # full-width digits
        (
            {"mon": [[f"{h:02d}:00", f"{h:02d}:30"] for h in range(MAX_RANGES_PER_DAY + 1)]},
            "at most",
        ),
    ],
)
def test_bad_reachable_hours_are_refused(hours: dict[str, Any], says: str) -> None:
    with pytest.raises(PreferenceError, match=says):
        check_reachable_hours(hours)


_minute = st.integers(min_value=0, max_value=24 * 60)


@given(st.lists(st.tuples(_minute, _minute), max_size=MAX_RANGES_PER_DAY))
def test_accepted_hours_never_overlap(pairs: list[tuple[int, int]]) -> None:
    ranges = [[f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}"] for a, b in pairs]
    try:
        checked = check_reachable_hours({"wed": ranges})
    except PreferenceError:
        return
    spans = [
        (int(s[:2]) * 60 + int(s[3:]), int(e[:2]) * 60 + int(e[3:])) for s, e in checked["wed"]
    ]
    assert all(start < end for start, end in spans)
    assert all(prev_end <= start for (_, prev_end), (start, _) in itertools.pairwise(spans))


def contact(**fields: Any) -> Contact:
    return Contact(name="Ann", **fields)


# 2024-05-06 is a Monday; Tehran is UTC+03:30 all year since 2022.
MONDAY_0600_UTC = datetime(2024, 5, 6, 6, 0, tzinfo=UTC)


def test_local_time() -> None:
    local = local_time(contact(timezone="Asia/Tehran"), MONDAY_0600_UTC)
    assert local is not None
    assert local.isoformat() == "2024-05-06T09:30:00+03:30"
    assert local_time(contact(), MONDAY_0600_UTC) is None
    # A zone the system no longer knows is "unknown", not a crash.
    assert local_time(contact(timezone="Nowhere/Gone"), MONDAY_0600_UTC) is None


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        ({"mon": [["09:00", "17:00"]]}, True),  # 09:30 local
        ({"mon": [["09:30", "09:31"]]}, True),
        ({"mon": [["09:31", "17:00"]]}, False),
        ({"mon": [["08:00", "09:30"]]}, False),  # the end is exclusive
        ({"tue": [["00:00", "24:00"]]}, False),  # 06:00 UTC Monday is Monday in Tehran
        ({}, False),
    ],
)
def test_reachable_now(hours: dict[str, Any], expected: bool) -> None:
    person = contact(timezone="Asia/Tehran", reachable_hours=hours)
    assert reachable_now(person, MONDAY_0600_UTC) is expected


def test_reachable_now_follows_the_local_day() -> None:
    # 23:00 UTC Sunday is already Monday 08:00 in Tokyo.
    person = contact(timezone="Asia/Tokyo", reachable_hours={"mon": [["08:00", "09:00"]]})
    assert reachable_now(person, datetime(2024, 5, 5, 23, 0, tzinfo=UTC)) is True


def test_reachable_now_unknown_without_timezone_or_hours() -> None:
    assert reachable_now(contact(reachable_hours={"mon": []}), MONDAY_0600_UTC) is None
    assert reachable_now(contact(timezone="UTC"), MONDAY_0600_UTC) is None


def test_reachable_now_skips_unreadable_stored_ranges() -> None:
    person = contact(timezone="UTC", reachable_hours={"mon": [[1, 2], "x", ["05:00", "07:00"]]})
    assert reachable_now(person, MONDAY_0600_UTC) is True
