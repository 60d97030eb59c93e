"""Automatic acknowledgements: "we got your message" on a conversation's first message.

Never to automatic mail (auto-replies, bounces, bulk: `Inbound.auto_submitted`), so two
auto-responders cannot answer each other forever; and at most one per contact and
channel within `ACK_INTERVAL`, so a customer who opens many conversations at once (or a
sender our detection misses) gets one. The acknowledgement itself goes out marked as
automatic (email: Auto-Submitted: auto-replied) and does not count as a response.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import Inbound
from timeline.clock import database_now
from timeline.db import SessionFactory
from timeline.events import EventBus, publish_committed
from timeline.ingest_batch import IngestResult
from timeline.models import Conversation, Direction, Message
from timeline.outbox import message_created_event, queue_outbound

ACK_INTERVAL = timedelta(hours=1)


async def acknowledge(
    sessions: SessionFactory, bus: EventBus, inbound: Inbound, result: IngestResult, text: str
) -> uuid.UUID | None:
    """Queue the acknowledgement `text` when `inbound` just opened a conversation; returns
    the queued message's id, or None when none is due."""
    if result.status != "created" or inbound.auto_submitted or not text.strip():
        return None
    if result.conversation_id is None or result.message_id is None:
        return None
    async with sessions() as session, session.begin():
        conversation = await session.get(Conversation, result.conversation_id)
        if conversation is None:
            return None
        first = await session.scalar(
            select(Message.id)
            .where(Message.conversation_id == conversation.id)
            .order_by(Message.seq, Message.id)
            .limit(1)
        )
        if first != result.message_id:
            return None  # not the conversation's first message
        if await acknowledged_lately(session, conversation.contact_id, conversation.channel_id):
            return None
        message = await queue_outbound(
            session, conversation_id=conversation.id, text=text, automatic=True
        )
    await publish_committed(bus, [message_created_event(message)])
    return message.id


async def acknowledged_lately(
    session: AsyncSession, contact_id: uuid.UUID, channel_id: uuid.UUID
) -> bool:
    """Whether the contact got an automatic message on the channel within ACK_INTERVAL."""
    since = await database_now(session) - ACK_INTERVAL
    recent = await session.scalar(
        select(Message.id)
        .where(
            Message.contact_id == contact_id,
            Message.channel_id == channel_id,
            Message.direction == Direction.OUT.value,
            Message.auto_submitted.is_(True),
            Message.created_at >= since,
        )
        .limit(1)
    )
    return recent is not None
