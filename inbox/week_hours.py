"""Weekly opening ranges as people write them: {"mon": [["09:00", "12:30"], ...], ...}.

Shared by business hours (inbox/business_hours.py) and a contact's reachable hours
(inbox/preferences.py). Times are "HH:MM", a range may end at "24:00", and ranges of a
day must not overlap (touching is fine).
"""

from __future__ import annotations

import itertools
import re

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
MAX_RANGES_PER_DAY = 12

_TIME = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")


class RangeError(ValueError):
    """A day's ranges cannot be used; the message says why (without the day's name)."""


def day_spans(ranges: object, *, sort: bool) -> list[tuple[int, int]]:
    """A day's ranges as (start, end) minutes since midnight, checked. With `sort`,
    ranges given out of order are put in order; without, that is refused too."""
    if not isinstance(ranges, list):
        raise RangeError('must be a list of ["HH:MM", "HH:MM"] ranges')
    if len(ranges) > MAX_RANGES_PER_DAY:
        raise RangeError(f"at most {MAX_RANGES_PER_DAY} ranges a day")
    spans = [span(item) for item in ranges]
    if sort:
        spans.sort()
    for (start0, end0), (start1, _) in itertools.pairwise(spans):
        if start1 < start0:
            raise RangeError("ranges must be in order of their start")
        if start1 < end0:
            raise RangeError(f"ranges overlap ({clock(start1)} < {clock(end0)})")
    return spans


def span(item: object) -> tuple[int, int]:
    """One ["HH:MM", "HH:MM"] range as minutes since midnight."""
    if (
        not isinstance(item, list)
        or len(item) != 2
        or not all(isinstance(part, str) and _TIME.fullmatch(part) for part in item)
    ):
        raise RangeError('each range is ["HH:MM", "HH:MM"] between 00:00 and 24:00')
    start, end = minutes(item[0]), minutes(item[1])
    if start >= end:
        raise RangeError(f"a range must start before it ends ({item[0]}-{item[1]})")
    return start, end


def minutes(text: str) -> int:
    """Minutes since midnight of "HH:MM"."""
    hours, mins = text.split(":")
    return int(hours) * 60 + int(mins)


def clock(mins: int) -> str:
    """ "HH:MM" of minutes since midnight."""
    return f"{mins // 60:02d}:{mins % 60:02d}"
