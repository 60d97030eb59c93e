"""Fixtures for timeline tests: sessions, channels and a running ingestor on the test database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import timeline.ingest
from connectors.registry import spec_for
from timeline.crypto import SecretBox
from timeline.db import SessionFactory, session_factory
from timeline.events import InProcessBus
from timeline.ingest import Ingestor
from timeline.models import Channel

SECRET = "timeline-tests-secret-key-0123456789abcdef"

CONFIGS: dict[str, dict[str, object]] = {
    "email": {
        "imap_host": "127.0.0.1",
        "imap_username": "u",
        "imap_password": "p",
        "smtp_host": "127.0.0.1",
        "from_address": "support@example.com",
    },
    "sms": {
        "account_sid": "AC" + "0" * 32,
        "auth_token": "t",
        "phone_number": "+14155550199",
        "default_region": "US",
    },
    "telegram": {"bot_token": "123456:" + "A" * 35},
    "webform": {},
}

MakeChannel = Callable[[str], Awaitable[uuid.UUID]]


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(SECRET)


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


@pytest.fixture
def make_channel(sessions: SessionFactory, box: SecretBox) -> MakeChannel:
    async def make(kind: str) -> uuid.UUID:
        config = spec_for(kind).config.model_validate(CONFIGS[kind])
        channel = Channel(
            kind=kind,
            name=f"{kind} test",
            config_encrypted=box.encrypt(config.model_dump(mode="json")),
        )
        async with sessions() as session, session.begin():
            session.add(channel)
        return channel.id

    return make


@pytest.fixture
async def ingestor(
    sessions: SessionFactory, box: SecretBox, tmp_path: Path
) -> AsyncIterator[Ingestor]:
    ing = Ingestor(
        sessions,
        InProcessBus(),
        reopen_window=timedelta(days=7),
        data_dir=tmp_path / "data",
        secret_box=box,
    )
    await ing.start()
    yield ing
    await ing.close()


async def wait_for_lock_waiters(engine: AsyncEngine, expected: int = 1) -> int:
    """How many sessions of this database wait on a lock, once `expected` do (or after 60 s).

    Each look is its own transaction: PostgreSQL keeps one snapshot of pg_stat_activity
    per transaction, so polling inside one would see the first answer forever. The bound
    only turns a hang into a failure on a loaded machine; it asserts no timing.
    """
    waiting = 0
    async with engine.connect() as probe:
        for _ in range(3000):
            waiting = int(
                await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                )
                or 0
            )
            await probe.rollback()
            if waiting >= expected:
                break
            await asyncio.sleep(0.02)
    return waiting


def refuse_batches_with(monkeypatch: pytest.MonkeyPatch, text: str, error: Exception) -> None:
    """Make every ingestion batch holding a message whose text is `text` raise `error`."""
    real = timeline.ingest.ingest_batch

    async def refuse(conn: Any, items: Any, **kwargs: Any) -> Any:
        if any(item.inbound.text == text for item in items):
            raise error
        return await real(conn, items, **kwargs)

    monkeypatch.setattr(timeline.ingest, "ingest_batch", refuse)
