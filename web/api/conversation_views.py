"""Conversations as the API shows them to one user: with their labels, participants and
the user's unread count, loaded for a whole page in three queries (no N+1)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.workflow_models import ConversationLabel, ConversationParticipant, ConversationRead
from timeline.models import Conversation
from web.api import children_by_parent
from web.api.schemas import ConversationOut


async def conversation_outs(
    session: AsyncSession, rows: Sequence[Conversation], user_id: uuid.UUID
) -> list[ConversationOut]:
    """`rows` as `user_id` sees them, in the same order."""
    ids = [row.id for row in rows]
    labels = await children_by_parent(
        session,
        ConversationLabel,
        ConversationLabel.conversation_id,
        ids,
        ConversationLabel.label,
    )
    participants = await children_by_parent(
        session,
        ConversationParticipant,
        ConversationParticipant.conversation_id,
        ids,
        ConversationParticipant.added_at,
        ConversationParticipant.user_id,
    )
    reads: dict[uuid.UUID, int] = {}
    if ids:
        marks = await session.execute(
            select(ConversationRead.conversation_id, ConversationRead.read_seq).where(
                ConversationRead.user_id == user_id, ConversationRead.conversation_id.in_(ids)
            )
        )
        reads = {conversation_id: read_seq for conversation_id, read_seq in marks}
    return [
        ConversationOut.of(
            row,
            labels=[x.label for x in labels[row.id]],
            participants=[x.user_id for x in participants[row.id]],
            read_seq=reads.get(row.id, 0),
        )
        for row in rows
    ]


async def conversation_out(
    session: AsyncSession, row: Conversation, user_id: uuid.UUID
) -> ConversationOut:
    """One conversation as `user_id` sees it."""
    [out] = await conversation_outs(session, [row], user_id)
    return out
