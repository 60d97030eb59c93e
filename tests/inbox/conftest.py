"""Fixtures the inbox tests share: sessions on the test database, the real ingestor, and
an SMS channel to ingest on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.registry import spec_for
from timeline.crypto import SecretBox
from timeline.db import SessionFactory, session_factory
from timeline.events import InProcessBus
from timeline.ingest import Ingestor
from timeline.models import Channel

SECRET = "inbox-tests-secret-key-0123456789abcdef0123"


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


@pytest.fixture
async def ingestor(sessions: SessionFactory, tmp_path: Path) -> AsyncIterator[Ingestor]:
    ing = Ingestor(
        sessions,
        InProcessBus(),
        reopen_window=timedelta(days=7),
        data_dir=tmp_path / "data",
        secret_box=SecretBox(SECRET),
    )
    await ing.start()
    yield ing
    await ing.close()


@pytest.fixture
async def channel_id(sessions: SessionFactory) -> uuid.UUID:
    """An SMS channel (its credentials are never used: nothing is sent)."""
    config = spec_for("sms").config.model_validate(
        {
            "account_sid": "AC" + "0" * 32,
            "auth_token": "t",
            "phone_number": "+14155550199",
            "default_region": "US",
        }
    )
    channel = Channel(
        kind="sms",
        name="sms",
        config_encrypted=SecretBox(SECRET).encrypt(config.model_dump(mode="json")),
    )
    async with sessions() as session, session.begin():
        session.add(channel)
    return channel.id
