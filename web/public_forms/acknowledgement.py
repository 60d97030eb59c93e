"""The acknowledgement email of a form ("we received your message"), when the form asks
for one and the visitor gave an email address.

A web form channel cannot send, so the acknowledgement goes out on an email channel: the
one the web form channel's settings name (`acknowledgement_channel_id`), else the first
active email channel by creation. It is queued through the durable outbox in the form's
own conversation, so the inbox and the timeline show it beside the submission, sent on
the email channel (`queue_outbound(channel_id=...)`); the worker's dispatcher sends it from
there like any reply, addressed to the contact's email at send time.

Like the core's auto-acknowledgement (timeline/acknowledge.py) it is marked automatic
(Auto-Submitted: auto-replied; no first response), and a contact gets at most one
automatic message on that channel per `ACK_INTERVAL`. An opted-out or erased contact
gets nothing. The text never repeats what the visitor typed: anyone can type anyone's
address into a public form, and an acknowledgement that echoed their words would let
them send our mail with their content to a stranger.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import ChannelKind
from connectors.webform.config import WebformConfig
from connectors.webform.definition import FormDefinition
from timeline.acknowledge import acknowledged_lately
from timeline.events import Event
from timeline.models import Channel
from timeline.outbox import message_created_event, queue_outbound
from timeline.reachability import unreachable_reason
from timeline.storable import cut

logger = logging.getLogger(__name__)

DEFAULT_TEXT = (
    "Hello,\n\n"
    'thank you for contacting us through our form "{form}". We received your message '
    "and will get back to you soon.\n\n"
    "This is an automatic confirmation. You can answer this email if you want to add "
    "anything."
)
MAX_SUBJECT = 200


def acknowledgement_text(config: WebformConfig, definition: FormDefinition) -> str:
    """The text to send: the channel's own or the default, "{form}" the form's name (a
    plain replacement, not str.format: braces elsewhere in an admin's text are kept)."""
    template = config.acknowledgement_text or DEFAULT_TEXT
    return template.replace("{form}", definition.name)


def acknowledgement_subject(definition: FormDefinition) -> str:
    """The subject line: which form the acknowledgement is about."""
    return cut(f"We received your message: {definition.name}", MAX_SUBJECT) or ""


async def sending_channel(session: AsyncSession, config: WebformConfig) -> uuid.UUID | None:
    """The email channel acknowledgements go out on, or None when there is none."""
    if config.acknowledgement_channel_id is not None:
        named = await session.scalar(
            select(Channel.id).where(
                Channel.id == uuid.UUID(config.acknowledgement_channel_id),
                Channel.kind == ChannelKind.EMAIL.value,
            )
        )
        if named is not None:
            # Even while paused: the admin chose it, and the outbox waits for it.
            return named
        logger.warning(
            "acknowledgement channel %s is not an email channel; using the first active one",
            config.acknowledgement_channel_id,
        )
    return await session.scalar(
        select(Channel.id)
        .where(Channel.kind == ChannelKind.EMAIL.value, Channel.paused.is_(False))
        .order_by(Channel.created_at, Channel.id)
        .limit(1)
    )


async def queue_acknowledgement(
    session: AsyncSession,
    config: WebformConfig,
    definition: FormDefinition,
    contact_id: uuid.UUID,
    conversation_id: uuid.UUID,
) -> Event | None:
    """Queue the acknowledgement in the caller's transaction; the event to publish after
    the commit, or None when none is sent (no email channel, unreachable, sent lately)."""
    channel_id = await sending_channel(session, config)
    if channel_id is None:
        logger.info("form %r: no email channel to acknowledge through", definition.name)
        return None
    if await unreachable_reason(session, channel_id, contact_id) is not None:
        return None
    if await acknowledged_lately(session, contact_id, channel_id):
        return None
    message = await queue_outbound(
        session,
        conversation_id=conversation_id,
        text=acknowledgement_text(config, definition),
        subject=acknowledgement_subject(definition),
        automatic=True,
        channel_id=channel_id,
    )
    return message_created_event(message)
