"""Status changes of a conversation made by people (resolve, snooze, pending, open).

An inbound message wakes its conversation under the row's lock (timeline/ingest_batch.py).
A change made here is one guarded UPDATE: given `seen_seq`, the last message sequence
number the agent saw, it applies only while no message arrived after it, so an agent
never resolves a conversation over a customer message they have not seen. The UPDATE
waits on the row lock of an ingestion in progress and then re-checks the guard.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from timeline.models import Conversation, ConversationStatus, TimelineEvent, utcnow
from timeline.outbox import UnknownConversation


class ConversationMoved(Exception):
    """Messages arrived after the ones the agent saw; nothing was changed."""

    def __init__(self, last_seq: int) -> None:
        super().__init__(f"new messages arrived (up to #{last_seq}); look again before changing")
        self.last_seq = last_seq


async def set_status(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    status: ConversationStatus,
    *,
    seen_seq: int | None = None,
    snoozed_until: datetime | None = None,
    actor_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Conversation:
    """Change a conversation's status (the caller commits); records a timeline event.

    Raises ConversationMoved when `seen_seq` is given and a later message exists, and
    UnknownConversation when there is no such conversation.
    """
    if status is ConversationStatus.SNOOZED and snoozed_until is None:
        raise ValueError("snoozing needs snoozed_until")
    now = now or utcnow()
    statement = (
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(
            status=status.value,
            resolved_at=now if status is ConversationStatus.RESOLVED else None,
            snoozed_until=snoozed_until if status is ConversationStatus.SNOOZED else None,
        )
        .returning(Conversation.id)
        .execution_options(synchronize_session=False)
    )
    if seen_seq is not None:
        statement = statement.where(Conversation.last_seq <= seen_seq)
    if await session.scalar(statement) is None:
        last_seq = await session.scalar(
            select(Conversation.last_seq).where(Conversation.id == conversation_id)
        )
        if last_seq is None:
            raise UnknownConversation(f"conversation {conversation_id} not found")
        raise ConversationMoved(last_seq)
    conversation = await session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .execution_options(populate_existing=True)
    )
    assert conversation is not None
    session.add(
        TimelineEvent(
            contact_id=conversation.contact_id,
            conversation_id=conversation.id,
            kind="conversation.status_changed",
            data={"status": status.value, "actor_id": None if actor_id is None else str(actor_id)},
            occurred_at=now,
        )
    )
    await session.flush()
    return conversation
