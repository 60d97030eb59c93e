"""A message arriving from a contact while that contact is being merged lands on the
survivor, never on the merged contact (PostgreSQL, where the two interleave)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.types import IdentityKind
from tests.timeline.conftest import MakeChannel, wait_for_lock_waiters
from tests.timeline.test_ingest import inbound
from timeline.db import SessionFactory
from timeline.ingest import Ingestor
from timeline.merge import merge_contacts
from timeline.models import Conversation, Message

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_message_during_a_merge_lands_on_the_survivor(
    engine: AsyncEngine, ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("sms")
    ann = await ingestor.ingest(inbound(channel, "a1", IdentityKind.PHONE, "+14155550100"))
    bob = await ingestor.ingest(inbound(channel, "b1", IdentityKind.PHONE, "+14155550111"))
    assert ann.contact_id != bob.contact_id
    assert ann.contact_id is not None and bob.contact_id is not None

    async with sessions() as merging:
        async with merging.begin():
            # The merge has moved Bob's identity and rows but has not committed...
            await merge_contacts(merging, ann.contact_id, bob.contact_id, None, NOW)
            # ...when Bob writes again. Ingestion reads his identity under a share lock,
            # so it waits for the merge instead of reading the identity's old owner.
            pending = asyncio.create_task(
                ingestor.ingest(inbound(channel, "b2", IdentityKind.PHONE, "+14155550111"))
            )
            assert await wait_for_lock_waiters(engine) == 1
        result = await pending

    assert result.status == "created"
    assert result.contact_id == ann.contact_id
    async with sessions() as session:
        left_on_bob = await session.scalar(
            select(func.count()).select_from(Message).where(Message.contact_id == bob.contact_id)
        )
        conversations_of_bob = await session.scalar(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.contact_id == bob.contact_id)
        )
        message = await session.get(Message, result.message_id)
    assert left_on_bob == 0
    assert conversations_of_bob == 0
    assert message is not None and message.contact_id == ann.contact_id
