"""API reads and `/healthz` answer while a long write holds the database (a channel delete)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from inbox.models import ApiToken
from tests.web.conftest import ApiUser, Client, Rows
from timeline.db import NO_WAIT, create_engine, is_busy
from timeline.models import Channel
from web.keys import SESSIONS_KEY


@pytest.fixture
def rows(agent_rows: Rows) -> Rows:
    """The `agent` works every channel made here (membership: test_api_accounts.py)."""
    return agent_rows


# Bounds the reads only so that a regression fails instead of hanging; never a speed check.
HANG = 20


async def assert_write_held(connection: AsyncConnection, channel_id: object) -> None:
    """Proves the writer really holds what a second writer would wait for."""
    engine = connection.engine
    async with engine.connect() as probe:
        if engine.dialect.name == "sqlite":
            await probe.execution_options(**{NO_WAIT: True})
            try:
                await probe.execute(select(1))
            except DBAPIError as err:
                assert is_busy(err)
            else:
                raise AssertionError("the write lock was free")
        else:
            locked = select(Channel.id).where(Channel.id == channel_id).with_for_update(nowait=True)
            try:
                await probe.execute(locked)
            except DBAPIError as err:
                assert "lock" in str(err.orig).lower()
            else:
                raise AssertionError("the channel row was not locked")


async def test_reads_and_healthz_answer_during_a_channel_delete(
    client: Client, agent: ApiUser, rows: Rows, database_url: str
) -> None:
    mail, doomed = await rows.channel("email"), await rows.channel("sms")
    ann = await rows.contact("Ann")
    conversation = await rows.conversation(ann, mail)
    await rows.message(conversation)
    await rows.conversation(await rows.contact("Bob"), doomed)
    reads = [
        "/api/v1/conversations",
        f"/api/v1/conversations/{conversation.id}",
        f"/api/v1/conversations/{conversation.id}/messages",
        "/api/v1/channels",
        f"/api/v1/channels/{mail.id}",
        "/api/v1/contacts",
        f"/api/v1/contacts/{ann.id}",
        f"/api/v1/contacts/{ann.id}/timeline",
        "/healthz",
    ]

    writer = create_engine(database_url)
    try:
        async with writer.connect() as connection:
            # Not committed: the delete (and its cascade) holds the write lock on SQLite.
            await connection.execute(delete(Channel).where(Channel.id == doomed.id))
            await assert_write_held(connection, doomed.id)
            async with asyncio.timeout(HANG):
                for path in reads:
                    response = await client.get(path, headers=agent.headers)
                    assert response.status == 200, (path, await response.text())
            await assert_write_held(connection, doomed.id)  # still held after every read
            await connection.rollback()
    finally:
        await writer.dispose()

    # Once the writer is gone, the token's use (skipped while it held the lock) is recorded.
    response = await client.get("/api/v1/channels", headers=agent.headers)
    assert response.status == 200
    async with client.app[SESSIONS_KEY]() as session:
        token = await session.scalar(select(ApiToken).where(ApiToken.user_id == agent.user.id))
    assert token is not None and token.last_used_at is not None
