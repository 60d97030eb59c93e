"""The inbox benchmark's generator (bench/inbox_data.py) on a tiny size: the rows it
writes are what the inbox itself would have written, so the benchmark measures real
shapes. PostgreSQL only: the generator writes by COPY."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import select

from bench.inbox_data import HEAVY_SIZE, Size, generate
from inbox.membership import visible_channels
from inbox.metric_models import ConversationMetric
from inbox.response_metrics import load
from timeline.crypto import SecretBox
from timeline.db import create_engine, session_factory
from timeline.models import Conversation

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_generated_history_is_consistent(database_url: str) -> None:
    size = Size(conversations=80, messages=900, agents=10)
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        box = SecretBox("bench-inbox-test-secret-0123456789abcdef")
        people, sizes = await generate(connection, size, NOW, box.encrypt)
        assert sizes["conversations"] == 80 and sizes["messages"] == 900
        # seq is 1..n in every conversation, and the conversation's counters say n.
        broken = await connection.fetchval(
            """SELECT count(*) FROM conversations c JOIN (
                 SELECT conversation_id, count(*) n, min(seq) lo, max(seq) hi,
                        count(DISTINCT seq) d, max(created_at) latest
                 FROM messages GROUP BY conversation_id) m ON m.conversation_id = c.id
               WHERE m.lo <> 1 OR m.hi <> m.n OR m.d <> m.n OR c.last_seq <> m.n
                  OR c.message_count <> m.n OR c.last_activity_at < m.latest"""
        )
        assert broken == 0
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM conversations WHERE message_count = $1", HEAVY_SIZE
            )
            == size.heavy
        )
        # Nothing in the future; response times match the messages.
        assert not await connection.fetchval(
            "SELECT count(*) FROM messages WHERE created_at > $1", NOW
        )
        wrong_times = await connection.fetchval(
            """SELECT count(*) FROM conversations c WHERE first_inbound_at IS DISTINCT FROM
                 (SELECT min(created_at) FROM messages WHERE conversation_id = c.id
                  AND direction = 'in')
               OR first_response_at IS DISTINCT FROM
                 (SELECT min(created_at) FROM messages WHERE conversation_id = c.id
                  AND direction = 'out' AND NOT private)"""
        )
        assert wrong_times == 0
        statuses = dict(
            await connection.fetch("SELECT status, count(*) FROM conversations GROUP BY status")
        )
        assert statuses.get("open", 0) >= size.heavy and statuses.get("resolved", 0) > 0
    finally:
        await connection.close()
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            # Every assignee sees the channel of what is assigned to them, and every agent
            # sees the channel the fan-out uses.
            for agent in people.agent_ids:
                seen = await visible_channels(session, agent)
                assert people.shared_channel_id in seen
                assigned = await session.scalars(
                    select(Conversation.channel_id).where(Conversation.assignee_id == agent)
                )
                assert set(assigned) <= seen
            # The stored spans are exactly what the metrics worker derives.
            for conversation in (await session.scalars(select(Conversation))).all():
                derived = {
                    (s.kind.value, s.cycle, s.started_at, s.ended_at, s.agent_id)
                    for s in (await load(session, conversation)).derivation.spans
                }
                stored = {
                    (m.kind, m.cycle, m.started_at, m.ended_at, m.agent_id)
                    for m in await session.scalars(
                        select(ConversationMetric).where(
                            ConversationMetric.conversation_id == conversation.id
                        )
                    )
                }
                assert stored == derived, conversation.id
    finally:
        await engine.dispose()
    assert isinstance(people.admin_id, uuid.UUID)
