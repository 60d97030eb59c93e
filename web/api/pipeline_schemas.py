"""Request and response models of the lead pipeline board (see web/api/pipeline.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from inbox.lifecycle import Stage
from web.api.crm_schemas import Tag
from web.api.schemas import Input, MoneyOut, PageQuery

DEFAULT_CARDS = 20  # a column's first page: enough to fill a tall screen
MAX_CARDS = 100


class BoardFilters(Input):
    """What narrows every column of the board alike."""

    owner_id: uuid.UUID | None = Field(default=None, description="only this user's contacts")
    tag: Tag | None = Field(default=None, description="only contacts with this tag")


class BoardQuery(BoardFilters):
    """The whole board: every stage's figures and its first cards."""

    cards: int = Field(
        default=DEFAULT_CARDS,
        ge=0,
        le=MAX_CARDS,
        description="cards per stage; 0 for the counts and totals alone",
    )


class CardQuery(BoardFilters, PageQuery):
    """More cards of one stage, after `cursor`."""

    stage: Stage = Field(description="the column")
    limit: int = Field(default=DEFAULT_CARDS, ge=1, le=MAX_CARDS)


class CardOwner(BaseModel):
    """The user who owns a contact's relationship."""

    id: uuid.UUID
    name: str = Field(description="their name, else their email address")


class PipelineCard(BaseModel):
    """A contact as a card of the board."""

    id: uuid.UUID
    name: str | None
    identity: str | None = Field(description="the first way to reach them, e.g. an email address")
    lifecycle_stage: Stage
    lost_reason: str | None
    owner: CardOwner | None = Field(description="null when nobody owns it (or a former user)")
    lifetime_value: MoneyOut | None
    tags: list[str]
    last_activity_at: datetime


class StageColumn(BaseModel):
    """One column: how many contacts are in the stage, what they are worth, the first cards."""

    stage: Stage
    count: int = Field(description="every contact in the stage the user may see")
    totals: list[MoneyOut] = Field(
        description="the sum of their lifetime values, one per currency, the most used first"
    )
    cards: list[PipelineCard] = Field(description="most recent activity first")
    next_cursor: str | None = Field(description="pass to GET /pipeline/cards for more")


class BoardOut(BaseModel):
    """The board: a column per lifecycle stage, in the pipeline's order."""

    stages: list[StageColumn]
