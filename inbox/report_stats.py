"""Exact order statistics of durations, the same on SQLite and PostgreSQL.

The database ranks the values of each group (`row_number()` over the group, ordered by
value) and returns only the rows a percentile needs, with the group's size and the sum
of its values in whole microseconds (an integer sum is exact on both databases; a float
sum is not, since SQLite sums with compensation and PostgreSQL does not). Percentiles
interpolate linearly between the two nearest ranks, as PostgreSQL's `percentile_cont`
and Python's `statistics.quantiles(method="inclusive")` do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

MEDIAN = Fraction(1, 2)
P90 = Fraction(9, 10)
PERCENTILES = (MEDIAN, P90)
MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Stats:
    """Count, median, 90th percentile and mean of some durations, in seconds."""

    count: int = 0
    median: float | None = None
    p90: float | None = None
    mean: float | None = None


def lower_rank(n: int, p: Fraction) -> int:
    """The 1-based rank at or below the p-quantile of n sorted values (n >= 1)."""
    return (n - 1) * p.numerator // p.denominator + 1


def percentile(n: int, ranked: dict[int, float], p: Fraction) -> float:
    """The p-quantile of n sorted values, given at least the two ranks around it."""
    low_rank = lower_rank(n, p)
    fraction = (n - 1) * p - (low_rank - 1)  # exact: how far past the lower rank
    low = ranked[low_rank]
    if fraction == 0:
        return low
    high = ranked[low_rank + 1]
    return low + (high - low) * float(fraction)


@dataclass(slots=True)
class Ranked:
    """What the database returned for one group: its size, microsecond sum and the
    values at the ranks the percentiles need."""

    count: int = 0
    micros: int = 0
    values: dict[int, float] = field(default_factory=dict)

    def stats(self) -> Stats:
        """The group's figures (all None but the count when it is empty)."""
        if self.count == 0:
            return Stats()
        return Stats(
            count=self.count,
            median=percentile(self.count, self.values, MEDIAN),
            p90=percentile(self.count, self.values, P90),
            # One correctly rounded division of exact integers.
            mean=self.micros / (self.count * MICROS),
        )
