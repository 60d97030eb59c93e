"""Accepting a valid form submission into the timeline, like any channel's message.

The public endpoint calls `accept` once the body is parsed, the spam checks passed and the
fields validated. The ingestor stores the message (timeline/ingest.py, group commit): the
contact is found by the email and the phone, or created as a lead in the form's language;
a conversation opens; the "form.submitted" event records the attribution; the raw body is
kept; and the `form_submissions` row is written in the same transaction, so there is
never a form message without its record. It is idempotent by external id: a browser's
double submit is "duplicate" and adds nothing.

A new submission may then need a second, short transaction: the custom attributes, the
form's team on the conversation, and the acknowledgement email. It runs only for
"created", so nothing of it happens twice; a process that dies between the two commits
loses only that follow-up (the message and its record are safe).

Custom attributes (`maps_to: "attribute:<key>"`) fill only values the contact does not
have yet: anybody can type anybody's email into a public form, so a form never overwrites
what an agent or an earlier, maybe genuine, submission recorded. Keys with no attribute
definition, and answers that do not fit the definition's type, are skipped: the message
text keeps every answer anyway ("Label: value").
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import ChannelId, RawPayload
from connectors.webform.attribution import Attribution
from connectors.webform.config import WebformConfig
from connectors.webform.definition import FormDefinition
from connectors.webform.inbound import to_inbound
from connectors.webform.submission import FALSE_WORDS, TRUE_WORDS, Submission
from inbox import attributes as attribute_defs
from inbox.models import AttributeDefinition
from timeline.crypto import SecretBox, SecretBoxError
from timeline.events import Event, publish_committed
from timeline.ingest_batch import IngestResult
from timeline.models import (
    Channel,
    ContactAttribute,
    Conversation,
    Form,
    Message,
    TimelineEvent,
    utcnow,
)
from web.keys import BUS_KEY, INGESTOR_KEY, SECRET_BOX_KEY, SESSIONS_KEY
from web.public_forms.acknowledgement import queue_acknowledgement

logger = logging.getLogger(__name__)

__all__ = ["Accepted", "accept", "channel_config"]


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    """What became of a submission: "created" (a new message), "duplicate" (already
    stored: a double submit), or "flagged" (kept raw without a message, for
    `switchboard reprocess`; the visitor is answered as for a success)."""

    status: str
    message_id: uuid.UUID | None
    conversation_id: uuid.UUID | None
    contact_id: uuid.UUID | None


FLAGGED = Accepted("flagged", None, None, None)


async def accept(
    app: web.Application,
    form: Form,
    definition: FormDefinition,
    submission: Submission,
    attribution: Attribution,
    raw: RawPayload,
    received_at: datetime,
    *,
    fallback_id: str | None = None,
    config: WebformConfig | None = None,
) -> Accepted:
    """Store a submission that passed the spam checks and validation (see the module's
    docstring). `config` is the channel's web form settings when the caller holds them
    (read here otherwise). Raises only while the database is unavailable (the visitor gets
    a 503 and may send again: nothing is doubled)."""
    if config is None:
        config = await channel_config(app, form.channel_id)
    if not config.keeps_ip and attribution.ip is not None:
        attribution = dataclasses.replace(attribution, ip=None)
    inbound = to_inbound(
        ChannelId(str(form.channel_id)),
        definition,
        submission,
        attribution,
        received_at,
        raw,
        fallback_id=fallback_id,
        form_id=str(form.id),
    )
    result = await app[INGESTOR_KEY].ingest(inbound)
    if result.status not in ("created", "duplicate") or result.message_id is None:
        logger.warning(
            "form %s: submission %s kept raw and flagged: %s",
            form.id,
            inbound.external_id,
            result.error,
        )
        return FLAGGED
    if result.status == "created" and _follows_up(definition, submission):
        async with app[SESSIONS_KEY]() as session, session.begin():
            events = await _follow_up(session, definition, submission, config, result)
        await publish_committed(app[BUS_KEY], events)
    return Accepted(
        "created" if result.status == "created" else "duplicate",
        result.message_id,
        result.conversation_id,
        result.contact_id,
    )


def _follows_up(definition: FormDefinition, submission: Submission) -> bool:
    acknowledged = definition.acknowledgement and submission.email is not None
    return bool(submission.attributes or definition.team_id or acknowledged)


async def channel_config(app: web.Application, channel_id: uuid.UUID) -> WebformConfig:
    """The web form settings of a channel. Unreadable settings keep no IP address and send
    no acknowledgement through a named channel: the safe side of every option."""
    async with app[SESSIONS_KEY]() as session:
        stored = await session.scalar(
            select(Channel.config_encrypted).where(Channel.id == channel_id)
        )
    return read_config(app[SECRET_BOX_KEY], stored, channel_id)


def read_config(box: SecretBox, stored: str | None, channel_id: uuid.UUID) -> WebformConfig:
    """A stored (encrypted) web form configuration; the safe defaults when unreadable."""
    if stored is not None:
        try:
            return WebformConfig.model_validate(box.decrypt(stored))
        except (SecretBoxError, ValidationError) as err:
            logger.warning("channel %s: web form settings unreadable: %s", channel_id, err)
    return WebformConfig(keep_ip_address=False)


async def _follow_up(
    session: AsyncSession,
    definition: FormDefinition,
    submission: Submission,
    config: WebformConfig,
    result: IngestResult,
) -> list[Event]:
    """Attributes, team and acknowledgement of a newly stored submission."""
    message = (
        await session.execute(
            select(Message.contact_id, Message.conversation_id).where(
                Message.id == result.message_id
            )
        )
    ).first()
    if message is None:
        return []  # erased meanwhile: nothing left to attach it to
    # The message's contact now, not at ingestion: a merge in between moved it.
    contact_id, conversation_id = message.contact_id, message.conversation_id
    now = utcnow()
    events: list[Event] = []
    assert result.message_id is not None  # accept() returned early otherwise
    ids = (contact_id, conversation_id, result.message_id)
    if await _fill_attributes(session, ids, submission.attributes, now):
        events.append(Event(attribute_defs.ATTRIBUTES_CHANGED, {"contact_id": str(contact_id)}))
        events.append(Event("contact.updated", {"contact_id": str(contact_id)}))
    if await _route_to_team(session, conversation_id, definition.team_id):
        events.append(Event("conversation.updated", {"conversation_id": str(conversation_id)}))
    if definition.acknowledgement and submission.email:
        queued = await queue_acknowledgement(
            session, config, definition, contact_id, conversation_id
        )
        if queued is not None:
            events.append(queued)
    return events


async def _fill_attributes(
    session: AsyncSession,
    ids: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
    answers: tuple[tuple[str, str | bool], ...],
    now: datetime,
) -> bool:
    """Set the answered attributes the contact has no value of; True when any changed."""
    if not answers:
        return False
    contact_id, conversation_id, message_id = ids
    keys = [key for key, _ in answers]
    known = {
        row.key: row
        for row in await session.scalars(
            select(AttributeDefinition).where(AttributeDefinition.key.in_(keys))
        )
    }
    held = set(
        await session.scalars(
            select(ContactAttribute.key).where(
                ContactAttribute.contact_id == contact_id, ContactAttribute.key.in_(keys)
            )
        )
    )
    changes: dict[str, Any] = {}
    for key, answer in answers:
        definition = known.get(key)
        if definition is None or key in held:
            continue
        value = attribute_value(definition, answer)
        if value is None:
            logger.info("contact %s: form answer for %r does not fit its type", contact_id, key)
            continue
        changes[key] = value
    if not changes:
        return False
    diff = await attribute_defs.set_attributes(session, contact_id, changes)
    if not diff:
        return False
    session.add(
        TimelineEvent(
            contact_id=contact_id,
            conversation_id=conversation_id,
            message_id=message_id,
            kind=attribute_defs.ATTRIBUTES_CHANGED,
            data=diff,
            occurred_at=now,
        )
    )
    return True


def attribute_value(definition: AttributeDefinition, answer: str | bool) -> Any:
    """A form answer as the JSON value of the definition's type (what the CRM API takes),
    or None when it does not fit: checked with the CRM's own conversion."""
    kind = attribute_defs.AttributeType(definition.type)
    value: Any = answer
    if kind is attribute_defs.AttributeType.BOOLEAN and isinstance(answer, str):
        word = answer.strip().lower()
        value = True if word in TRUE_WORDS else False if word in FALSE_WORDS - {""} else None
    elif kind in (attribute_defs.AttributeType.TEXT, attribute_defs.AttributeType.SELECT):
        if isinstance(answer, bool):
            value = "Yes" if answer else "No"
    elif kind is attribute_defs.AttributeType.NUMBER:
        value = _number(answer)
    elif kind is attribute_defs.AttributeType.MONEY:
        value = None  # a bare amount says no currency
    if value is None:
        return None
    try:
        attribute_defs.convert(definition, value)
    except ValueError:
        return None
    return value


def _number(answer: str | bool) -> int | float | None:
    if isinstance(answer, bool):
        return None
    text = answer.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


async def _route_to_team(
    session: AsyncSession, conversation_id: uuid.UUID, team_id: str | None
) -> bool:
    """Give the conversation the form's team unless something (a routing rule, an agent)
    already gave it one; True when it did."""
    if not team_id:
        return False
    try:
        team = uuid.UUID(team_id)
    except ValueError:
        return False
    changed = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.team_id.is_(None))
        .values(team_id=team)
    )
    return bool(getattr(changed, "rowcount", 0))
