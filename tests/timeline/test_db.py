"""Read-only sessions read beside a writer; they cannot write; writers keep their lock."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from timeline.db import NO_WAIT, is_busy, is_sqlite, read_session_factory, session_factory
from timeline.models import Contact

# Bounds a wait only so that a regression fails instead of hanging; never a speed check.
HANG = 20


async def count_contacts(engine: AsyncEngine) -> int:
    async with read_session_factory(engine)() as session:
        return await session.scalar(select(func.count()).select_from(Contact)) or 0


async def test_reads_answer_while_a_writer_holds_its_transaction(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as writer:
        writer.add(Contact(name="Ann"))
        await writer.flush()  # BEGIN IMMEDIATE on SQLite: the write lock is now held
        async with asyncio.timeout(HANG):
            assert await count_contacts(engine) == 0  # the committed state only
        await writer.commit()
    assert await count_contacts(engine) == 1


async def test_read_sessions_cannot_write(engine: AsyncEngine) -> None:
    async with read_session_factory(engine)() as session:
        session.add(Contact(name="Ann"))
        with pytest.raises(DBAPIError):
            await session.flush()
    # The pooled connection is a writer's again afterwards.
    async with session_factory(engine)() as session:
        session.add(Contact(name="Bob"))
        await session.commit()
    assert await count_contacts(engine) == 1


async def test_a_no_wait_writer_does_not_queue_for_the_database(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as holder:
        holder.add(Contact(name="Ann"))
        await holder.flush()
        async with session_factory(engine)() as impatient:
            if is_sqlite(engine):
                # SQLite has one write lock for the whole database: refused, not queued.
                with pytest.raises(DBAPIError) as refused:
                    await impatient.connection(execution_options={NO_WAIT: True})
                assert is_busy(refused.value)
            else:
                # PostgreSQL writers lock rows: a writer of other rows goes ahead.
                await impatient.connection(execution_options={NO_WAIT: True})
                impatient.add(Contact(name="Bob"))
                async with asyncio.timeout(HANG):
                    await impatient.commit()
        await holder.commit()
    # The pool still hands out working writers.
    async with session_factory(engine)() as session:
        session.add(Contact(name="Cy"))
        await session.commit()
    assert await count_contacts(engine) == (3 if not is_sqlite(engine) else 2)
