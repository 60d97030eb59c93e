"""Query and response models of the report series and the live overview
(web/api/report_series.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inbox.report_period import Period
from inbox.reports import Summary
from web.api.report_schemas import FiguresOut, GroupOut, PeriodOut, VolumeQuery
from web.api.schemas import Input

Interval = Literal["auto", "day", "week"]
SeriesTable = Literal["times", "channels"]


class SeriesQuery(VolumeQuery):
    """A period, and the buckets to cut it into."""

    interval: Interval = Field(
        default="auto",
        description="day or week buckets of local days; auto: days up to 92 of them, "
        "else weeks (Monday to Sunday, cut at the period's edges)",
    )


class SeriesExportQuery(SeriesQuery):
    """A series as CSV: the totals per bucket (`times`) or each channel per bucket."""

    table: SeriesTable = Field(default="times", description="times or channels")


class OverviewQuery(Input):
    """What the overview is narrowed to."""

    channel_id: uuid.UUID | None = Field(default=None, description="only this channel")
    team_id: uuid.UUID | None = Field(default=None, description="only this team's")


def period_out(p: Period) -> PeriodOut:
    """The shape the reports API gives a period."""
    return PeriodOut(from_=p.first, to=p.last, timezone=p.timezone, start=p.start, end=p.end)


class BucketOut(BaseModel):
    """One bucket: its local days, its totals (response times included), and each
    channel's figures (every channel the report covers, zeros included)."""

    model_config = ConfigDict(serialize_by_alias=True)

    from_: date = Field(serialization_alias="from")
    to: date
    start: datetime
    end: datetime
    totals: FiguresOut
    channels: list[GroupOut]

    @classmethod
    def of(cls, report: Summary) -> BucketOut:
        p = report.period
        return cls(
            from_=p.first,
            to=p.last,
            start=p.start,
            end=p.end,
            totals=FiguresOut.of(report.totals),
            # The figures' fields as they are (models, not dumped to dicts and validated
            # again): a 90-day series by day has 720 of them.
            channels=[
                GroupOut(key=g.key, name=g.name, **dict(FiguresOut.of(g.figures)))
                for g in report.groups
            ],
        )


class SeriesOut(BaseModel):
    """A period cut into day or week buckets, oldest first."""

    period: PeriodOut
    interval: Literal["day", "week"]
    buckets: list[BucketOut]


class OverviewOut(BaseModel):
    """How things stand now. `open`: conversations with the status open; `unassigned`:
    open ones nobody is assigned; `waiting`: unresolved ones whose customer awaits a
    reply, the longest since `waiting_since`; `sla_at_risk`: unresolved conversations
    with an SLA target of the current cycle under a fifth of its time left, not yet
    overdue; `sla_breached`: those with a target overdue and not met."""

    at: datetime
    open: int
    unassigned: int
    pending: int
    waiting: int
    waiting_since: datetime | None
    sla_at_risk: int
    sla_breached: int
