"""Request and response models of business hours, SLA policies and conversation metrics."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel

from inbox.metric_models import BusinessHours, ConversationMetric, SlaPolicy
from inbox.sla import TargetStatus
from web.api.schemas import Input, Text

# Ten years: longer targets are a typo, not a promise.
MAX_TARGET_SECONDS = 10 * 366 * 24 * 3600
MAX_IDS = 500
Seconds = int


class BusinessHoursIn(Input):
    """A calendar; `week` and `holidays` are checked by inbox/business_hours.py. Listing
    channels or teams assigns this calendar to them (moving them from any other)."""

    name: Text = Field(min_length=1, max_length=200)
    timezone: Text = Field(min_length=1, max_length=64, examples=["Europe/Berlin"])
    week: dict[str, Any] = Field(
        default_factory=dict,
        description='local ranges per weekday: {"mon": [["09:00", "12:30"], ["13:30", "18:00"]]}',
    )
    holidays: list[Any] = Field(
        default_factory=list, description='[{"date": "2024-12-25", "name": "Christmas"}]'
    )
    channel_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_IDS)
    team_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_IDS)


class BusinessHoursPatch(Input):
    """Changes to a calendar; `channel_ids`/`team_ids` replace its assignments."""

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    timezone: Text | None = Field(default=None, min_length=1, max_length=64)
    week: dict[str, Any] | None = None
    holidays: list[Any] | None = None
    channel_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)
    team_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)


class BusinessHoursOut(BaseModel):
    """A calendar and who uses it."""

    id: uuid.UUID
    name: str
    timezone: str
    week: dict[str, Any]
    holidays: list[dict[str, Any]]
    channel_ids: list[uuid.UUID]
    team_ids: list[uuid.UUID]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(
        cls, row: BusinessHours, channel_ids: list[uuid.UUID], team_ids: list[uuid.UUID]
    ) -> BusinessHoursOut:
        return cls(
            id=row.id,
            name=row.name,
            timezone=row.timezone,
            week=row.week,
            holidays=row.holidays,
            channel_ids=channel_ids,
            team_ids=team_ids,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


_target = Field(default=None, ge=1, le=MAX_TARGET_SECONDS)


class SlaPolicyIn(Input):
    """An SLA policy: targets in (business) seconds and the conversations it applies to
    (empty lists match all). The first enabled policy by `position` that matches applies."""

    name: Text = Field(min_length=1, max_length=200)
    position: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    enabled: bool = True
    first_response_seconds: Seconds | None = _target
    next_response_seconds: Seconds | None = _target
    resolution_seconds: Seconds | None = _target
    channel_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_IDS)
    team_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_IDS)
    priorities: list[Text] = Field(default_factory=list, max_length=20)


class SlaPolicyPatch(Input):
    """Changes to a policy (a target set to null is dropped)."""

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    enabled: bool | None = None
    first_response_seconds: Seconds | None = _target
    next_response_seconds: Seconds | None = _target
    resolution_seconds: Seconds | None = _target
    channel_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)
    team_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)
    priorities: list[Text] | None = Field(default=None, max_length=20)


class SlaPolicyOut(BaseModel):
    """An SLA policy."""

    id: uuid.UUID
    name: str
    position: int
    enabled: bool
    first_response_seconds: int | None
    next_response_seconds: int | None
    resolution_seconds: int | None
    channel_ids: list[uuid.UUID]
    team_ids: list[uuid.UUID]
    priorities: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: SlaPolicy) -> SlaPolicyOut:
        return cls(
            id=row.id,
            name=row.name,
            position=row.position,
            enabled=row.enabled,
            first_response_seconds=row.first_response_seconds,
            next_response_seconds=row.next_response_seconds,
            resolution_seconds=row.resolution_seconds,
            channel_ids=[uuid.UUID(i) for i in row.channel_ids],
            team_ids=[uuid.UUID(i) for i in row.team_ids],
            priorities=row.priorities,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class SlaTargetOut(BaseModel):
    """How one target of the conversation's current cycle stands."""

    target: Literal["first_response", "next_response", "resolution"]
    state: Literal["ok", "at_risk", "breached", "met"] = Field(
        description="at_risk: under 20% of the target left; breached: due passed unmet or met late"
    )
    due_at: datetime
    remaining_seconds: float = Field(
        description="business seconds left until due (negative: overdue), at met_at if met"
    )
    started_at: datetime
    met_at: datetime | None
    cycle: int
    policy_id: uuid.UUID

    @classmethod
    def of(cls, status: TargetStatus, policy_id: uuid.UUID) -> SlaTargetOut:
        return cls(
            target=status.target.value,
            state=status.state,
            due_at=status.due_at,
            remaining_seconds=status.remaining_seconds,
            started_at=status.started_at,
            met_at=status.met_at,
            cycle=status.cycle,
            policy_id=policy_id,
        )


class ConversationSla(RootModel[list[SlaTargetOut]]):
    """The SLA targets of a conversation's current cycle (empty: no policy applies)."""


class MetricOut(BaseModel):
    """One recorded response-time span of a conversation."""

    id: uuid.UUID
    kind: Literal["first_response", "reply", "resolution"]
    cycle: int
    started_at: datetime
    ended_at: datetime
    wall_seconds: float
    business_seconds: float | None
    business_hours_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    team_id: uuid.UUID | None
    channel_id: uuid.UUID

    @classmethod
    def of(cls, row: ConversationMetric) -> MetricOut:
        return cls(
            id=row.id,
            kind=row.kind,
            cycle=row.cycle,
            started_at=row.started_at,
            ended_at=row.ended_at,
            wall_seconds=row.wall_seconds,
            business_seconds=row.business_seconds,
            business_hours_id=row.business_hours_id,
            agent_id=row.agent_id,
            team_id=row.team_id,
            channel_id=row.channel_id,
        )
