"""Request and response models of routing rules, assignment policies and agent capacity.

A rule's conditions and actions are the models of inbox/routing_rules.py, so what the API
accepts, what the engine runs and what the OpenAPI document shows are one definition.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator, model_validator

from inbox.routing_models import AssignmentPolicy, RoutingRule
from inbox.routing_rules import MAX_ACTIONS, MAX_NAME, Action, Conditions, RuleBody
from web.api.schemas import Input, Text

MAX_POSITION = 100_000
MAX_CAPACITY = 10_000

Capacity = Annotated[int, Field(ge=0, le=MAX_CAPACITY, strict=True)]
Name = Annotated[Text, Field(min_length=1, max_length=MAX_NAME)]
Actions = Annotated[list[Action], Field(min_length=1, max_length=MAX_ACTIONS)]


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null (leave the field out to keep it unchanged)")
    return value


# --- routing rules -----------------------------------------------------------------------------


class RoutingRuleIn(Input):
    """A routing rule: when its conditions hold for an inbound message, its actions run.
    Rules run in `position` order (0 first); left out, the rule goes last."""

    name: Name
    enabled: bool = True
    position: int | None = Field(default=None, ge=0, le=MAX_POSITION)
    stop_processing: bool = Field(
        default=False, description="when this rule fires, later rules are not evaluated"
    )
    conditions: Conditions = Field(
        default_factory=Conditions,
        description="`all` must hold, and one of `any` when it has any; none: every message",
    )
    actions: Actions

    @field_validator("name")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class RoutingRulePatch(Input):
    """Changes to a rule; `position` moves it (the others shift to make room)."""

    name: Name | None = None
    enabled: bool | None = None
    position: int | None = Field(default=None, ge=0, le=MAX_POSITION)
    stop_processing: bool | None = None
    conditions: Conditions | None = None
    actions: Actions | None = None

    _present = field_validator(
        "name", "enabled", "position", "stop_processing", "conditions", "actions", mode="before"
    )(_not_null)


class RoutingRuleOut(BaseModel):
    """A routing rule; `problems` names what it refers to that no longer exists (those
    actions are skipped, and the skip recorded, when it fires)."""

    id: uuid.UUID
    name: str
    position: int
    enabled: bool
    stop_processing: bool
    conditions: Conditions
    actions: list[Action]
    problems: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: RoutingRule, problems: list[str]) -> RoutingRuleOut:
        body = RuleBody.model_validate({"conditions": row.conditions, "actions": row.actions})
        return cls(
            id=row.id,
            name=row.name,
            position=row.position,
            enabled=row.enabled,
            stop_processing=row.stop_processing,
            conditions=body.conditions,
            actions=body.actions,
            problems=problems,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


# --- assignment policies -----------------------------------------------------------------------


class AssignmentPolicyIn(Input):
    """Auto-assignment for one channel or one team (exactly one of the two)."""

    channel_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    enabled: bool = True
    default_capacity: Capacity | None = Field(
        default=None,
        description="open conversations an agent may hold unless they have their own "
        "limit; null: unlimited",
    )

    @model_validator(mode="after")
    def _one_target(self) -> AssignmentPolicyIn:
        if (self.channel_id is None) == (self.team_id is None):
            raise ValueError("give exactly one of channel_id and team_id")
        return self


class AssignmentPolicyPatch(Input):
    """Changes to a policy; `default_capacity` null means unlimited."""

    enabled: bool | None = None
    default_capacity: Capacity | None = None

    _present = field_validator("enabled", mode="before")(_not_null)


class AssignmentPolicyOut(BaseModel):
    """An assignment policy."""

    id: uuid.UUID
    channel_id: uuid.UUID | None
    team_id: uuid.UUID | None
    enabled: bool
    default_capacity: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: AssignmentPolicy) -> AssignmentPolicyOut:
        return cls(
            id=row.id,
            channel_id=row.channel_id,
            team_id=row.team_id,
            enabled=row.enabled,
            default_capacity=row.default_capacity,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class PoolAgentOut(BaseModel):
    """An agent of a policy's pool, as auto-assignment sees them now."""

    user_id: uuid.UUID
    name: str | None
    online: bool
    open_conversations: int
    capacity: int | None = Field(description="their limit under this policy; null: unlimited")
    last_assigned_at: datetime | None = Field(description="this policy's last assignment to them")


# --- agent capacity ----------------------------------------------------------------------------


class CapacityIn(Input):
    """An agent's own limit of open conversations, over every policy's default."""

    max_open: Capacity | None = Field(description="required; null: unlimited")


class CapacityOut(BaseModel):
    """An agent's capacity: their own limit when `own`, else each policy's default."""

    user_id: uuid.UUID
    own: bool
    max_open: int | None
    open_conversations: int
