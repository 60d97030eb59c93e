"""Query and response models of the reports API (web/api/reports.py)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from inbox.report_stats import Stats
from inbox.reports import WEEKDAYS, Attainment, Figures, Grouping, Summary, Volume
from web.api.schemas import Input, Text

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day(value: object) -> date:
    # Only the one spelling: pydantic alone would also take numbers (Unix times).
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise ValueError(f"{value} is not a date") from err


Day = Annotated[date, BeforeValidator(_day)]


class VolumeQuery(Input):
    """A period of whole local days: `from` and `to` inclusive, in `timezone`."""

    from_: Day = Field(alias="from", description="first day, YYYY-MM-DD (local)")
    to: Day = Field(description="last day, YYYY-MM-DD (local), at most 400 days after from")
    timezone: Text = Field(
        default="UTC", max_length=64, description="IANA timezone the days are in"
    )
    channel_id: uuid.UUID | None = Field(default=None, description="only this channel")
    team_id: uuid.UUID | None = Field(default=None, description="only this team's")


class SummaryQuery(VolumeQuery):
    """A period, and what to group the figures by."""

    group_by: Grouping = Field(default="none", description="agent, team, channel, label, none")


class StatsOut(BaseModel):
    """Durations in seconds; null figures when there are none."""

    count: int
    median: float | None
    p90: float | None
    mean: float | None

    @classmethod
    def of(cls, stats: Stats) -> StatsOut:
        return cls(count=stats.count, median=stats.median, p90=stats.p90, mean=stats.mean)


class TimesOut(BaseModel):
    """One measure in wall-clock and in business time (business: only spans measured with
    a calendar; null when none were)."""

    wall: StatsOut
    business: StatsOut | None


class AttainmentOut(BaseModel):
    """An SLA target's outcomes; `attainment` = met / (met + breached), null if neither."""

    met: int
    breached: int
    attainment: float | None

    @classmethod
    def of(cls, value: Attainment) -> AttainmentOut:
        return cls(met=value.met, breached=value.breached, attainment=value.rate)


class FiguresOut(BaseModel):
    """The figures of a group, or the totals."""

    conversations_opened: int
    conversations_resolved: int
    messages_in: int
    messages_out: int
    first_response: TimesOut
    reply: TimesOut
    resolution: TimesOut
    sla: dict[str, AttainmentOut] = Field(description="first_response, next_response, resolution")

    @classmethod
    def of(cls, figures: Figures) -> FiguresOut:
        def times(kind: str) -> TimesOut:
            clocks = figures.times[kind]
            business = clocks["business"]
            return TimesOut(
                wall=StatsOut.of(clocks["wall"]),
                business=StatsOut.of(business) if business.count else None,
            )

        return cls(
            conversations_opened=figures.conversations_opened,
            conversations_resolved=figures.conversations_resolved,
            messages_in=figures.messages_in,
            messages_out=figures.messages_out,
            first_response=times("first_response"),
            reply=times("reply"),
            resolution=times("resolution"),
            sla={target: AttainmentOut.of(value) for target, value in figures.sla.items()},
        )


class GroupOut(FiguresOut):
    """One group: `key` is the agent, team or channel id, or the label; null for
    conversations without one (unassigned, no team, no label)."""

    key: str | None
    name: str | None


class PeriodOut(BaseModel):
    """What a report covers: local days, and the UTC instants they span."""

    model_config = ConfigDict(serialize_by_alias=True)

    from_: date = Field(serialization_alias="from")
    to: date
    timezone: str
    start: datetime
    end: datetime


class SummaryOut(BaseModel):
    """A summary report."""

    period: PeriodOut
    group_by: Grouping
    groups: list[GroupOut]
    totals: FiguresOut

    @classmethod
    def of(cls, summary: Summary) -> SummaryOut:
        return cls(
            period=_period(summary),
            group_by=summary.group_by,
            groups=[
                GroupOut(key=g.key, name=g.name, **FiguresOut.of(g.figures).model_dump())
                for g in summary.groups
            ],
            totals=FiguresOut.of(summary.totals),
        )


class VolumeOut(BaseModel):
    """Customer messages per local weekday (rows, Monday first) and hour (columns 0-23)."""

    period: PeriodOut
    weekdays: list[str]
    hours: list[list[int]]
    total: int

    @classmethod
    def of(cls, volume: Volume) -> VolumeOut:
        return cls(
            period=_period(volume),
            weekdays=list(WEEKDAYS),
            hours=volume.hours,
            total=volume.total,
        )


def _period(report: Summary | Volume) -> PeriodOut:
    p = report.period
    return PeriodOut(from_=p.first, to=p.last, timezone=p.timezone, start=p.start, end=p.end)
