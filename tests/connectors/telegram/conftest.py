"""Fixtures for the Telegram connector tests: the Bot API stand-in, a recording context,
and the shared Telegram corpus."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from connectors.telegram.config import TelegramConfig
from connectors.telegram.connector import TelegramConnector, build
from connectors.types import ChannelId
from tests.connectors.telegram.bot_api_standin import TOKEN, BotApiStandIn, running
from tests.connectors.telegram.recording import Recorder

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / "telegram"
CHANNEL = ChannelId("tg-1")
SECRET = "s3cret-token_value"


def corpus_updates(name: str) -> list[dict[str, Any]]:
    """The updates of one corpus file; a bare Message is wrapped as the Update it would
    arrive in (`channel_post` when the corpus says so)."""
    data = json.loads((CORPUS / name).read_text(encoding="utf-8"))
    payload = data["payload"]
    if isinstance(payload, dict) and "result" in payload:
        return list(payload["result"])
    if "update_id" in payload:
        return [payload]
    kind = data["_corpus"]["expected"].get("update_kind") or "message"
    return [{"update_id": 1, kind: payload}]


def corpus_expected(name: str) -> dict[str, Any]:
    """The `_corpus.expected` block of one corpus file."""
    data = json.loads((CORPUS / name).read_text(encoding="utf-8"))
    expected: dict[str, Any] = data["_corpus"]["expected"]
    return expected


@pytest.fixture
async def standin() -> AsyncIterator[BotApiStandIn]:
    async with running() as server:
        yield server


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def make_config(standin: BotApiStandIn, **overrides: Any) -> TelegramConfig:
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "api_base_url": standin.base_url,
        "secret_token": SECRET,
        "poll_timeout": 2,
    }
    values.update(overrides)
    return TelegramConfig(**values)


@pytest.fixture
async def connector(standin: BotApiStandIn, recorder: Recorder) -> AsyncIterator[TelegramConnector]:
    instance = build(CHANNEL, make_config(standin), recorder.context())
    try:
        yield instance
    finally:
        await instance.close()
