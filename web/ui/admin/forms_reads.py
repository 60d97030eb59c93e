"""What the forms pages read from the database: the form list with submission counts,
the choices the builder offers (web form channels, custom attributes, teams) and a page
of a form's submissions with the text and contact each made.

The pages are for admins only, who see every channel, so nothing here filters by
channel membership (the JSON API does, for the managers it also serves).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import ChannelKind
from inbox.account_models import Team
from inbox.models import AttributeDefinition
from timeline.models import Channel, Contact, Form, FormSubmission, Message
from web.api import after, cut
from web.api.schemas import Keyset

SUBMISSIONS_PER_PAGE = 25


@dataclass(frozen=True, slots=True)
class FormSummary:
    """One row of the form list."""

    id: uuid.UUID
    name: str
    channel_name: str
    active: bool
    submissions: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Choice:
    """Something the builder offers in a select: its value and what it is called."""

    value: str
    label: str
    detail: str | None = None  # a channel's "paused", an attribute's type


@dataclass(frozen=True, slots=True)
class SubmissionRow:
    """One submission as the list shows it."""

    id: uuid.UUID
    created_at: datetime
    text: str | None  # the message it made: null once that message was deleted
    contact_id: uuid.UUID | None
    contact_name: str | None
    conversation_id: uuid.UUID | None
    page_url: str | None  # where the visitor was, as the embed script reported it


async def form_summaries(session: AsyncSession) -> list[FormSummary]:
    """Every form, newest first, with its channel's name and how many submissions it has
    (one grouped count over the form_id index, not a query per form)."""
    counts = (
        select(FormSubmission.form_id, func.count().label("n"))
        .group_by(FormSubmission.form_id)
        .subquery()
    )
    statement = (
        select(Form, Channel.name, func.coalesce(counts.c.n, 0))
        .join(Channel, Channel.id == Form.channel_id)
        .outerjoin(counts, counts.c.form_id == Form.id)
        .order_by(Form.created_at.desc(), Form.id.desc())
    )
    rows = (await session.execute(statement)).all()
    return [
        FormSummary(form.id, form.name, channel, form.active, int(count), form.created_at)
        for form, channel, count in rows
    ]


async def webform_channels(session: AsyncSession) -> list[Choice]:
    """The channels a form may belong to."""
    statement = (
        select(Channel)
        .where(Channel.kind == ChannelKind.WEBFORM.value)
        .order_by(Channel.name, Channel.id)
    )
    return [
        Choice(str(channel.id), channel.name, "paused" if channel.paused else None)
        for channel in await session.scalars(statement)
    ]


async def attribute_choices(session: AsyncSession) -> list[Choice]:
    """The custom attributes a field may feed (the API refuses undefined ones)."""
    statement = select(AttributeDefinition).order_by(AttributeDefinition.label)
    return [Choice(row.key, row.label, row.type) for row in await session.scalars(statement)]


async def team_choices(session: AsyncSession) -> list[Choice]:
    """The teams a form's conversations may go to."""
    return [
        Choice(str(team.id), team.name)
        for team in await session.scalars(select(Team).order_by(Team.name))
    ]


async def submission_count(session: AsyncSession, form_id: uuid.UUID) -> int:
    """How many submissions a form has."""
    statement = (
        select(func.count()).select_from(FormSubmission).where(FormSubmission.form_id == form_id)
    )
    return int(await session.scalar(statement) or 0)


async def submissions_page(
    session: AsyncSession,
    form_id: uuid.UUID,
    keyset: Keyset | None,
    limit: int = SUBMISSIONS_PER_PAGE,
) -> tuple[list[SubmissionRow], str | None]:
    """A form's submissions, newest first, after `keyset`; and the cursor of the next
    page, if there is one. Ordered like GET /api/v1/forms/{id}/submissions."""
    statement = (
        select(FormSubmission, Message.text, Message.conversation_id, Contact.name)
        .outerjoin(Message, Message.id == FormSubmission.message_id)
        .outerjoin(Contact, Contact.id == FormSubmission.contact_id)
        .where(FormSubmission.form_id == form_id)
        .order_by(FormSubmission.created_at.desc(), FormSubmission.id.desc())
        .limit(limit + 1)
    )
    position = after(FormSubmission.created_at, FormSubmission.id, keyset, descending=True)
    if position is not None:
        statement = statement.where(position)
    rows = (await session.execute(statement)).all()
    page, cursor = cut(rows, limit, lambda row: Keyset(at=row[0].created_at, id=row[0].id))
    return [
        SubmissionRow(
            id=submission.id,
            created_at=submission.created_at,
            text=text,
            contact_id=submission.contact_id,
            contact_name=contact_name,
            conversation_id=conversation_id,
            page_url=_page_url(submission.attribution),
        )
        for submission, text, conversation_id, contact_name in page
    ], cursor


def _page_url(attribution: dict[str, object]) -> str | None:
    value = attribution.get("page_url")
    return value if isinstance(value, str) and value else None
