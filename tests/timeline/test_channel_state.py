"""Connectors' durable cursors and channel health, on both databases."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from connectors.types import ChannelHealth, ChannelId
from tests.timeline.conftest import MakeChannel
from timeline.channel_state import DatabaseCursorStore, record_health
from timeline.db import SessionFactory
from timeline.models import Channel, ChannelCursor


async def test_cursor_round_trip_and_overwrite(
    sessions: SessionFactory, make_channel: MakeChannel
) -> None:
    store = DatabaseCursorStore(sessions)
    channel = ChannelId(str(await make_channel("email")))
    other = ChannelId(str(await make_channel("email")))
    assert await store.load(channel, "INBOX") is None
    await store.save(channel, "INBOX", "uidvalidity=7;uid=41")
    await store.save(channel, "INBOX", "uidvalidity=7;uid=42")
    await store.save(other, "INBOX", "uidvalidity=1;uid=1")
    assert await store.load(channel, "INBOX") == "uidvalidity=7;uid=42"
    assert await store.load(other, "INBOX") == "uidvalidity=1;uid=1"
    assert await store.load(channel, "Archive") is None


async def test_concurrent_saves_leave_one_row_with_a_saved_value(
    sessions: SessionFactory, make_channel: MakeChannel
) -> None:
    store = DatabaseCursorStore(sessions)
    channel = ChannelId(str(await make_channel("telegram")))
    await asyncio.gather(*(store.save(channel, "offset", str(n)) for n in range(10)))
    assert await store.load(channel, "offset") in {str(n) for n in range(10)}
    async with sessions() as session:
        rows = await session.scalar(select(func.count()).select_from(ChannelCursor))
    assert rows == 1


async def test_health_is_recorded_and_a_good_sync_is_stamped(
    sessions: SessionFactory, make_channel: MakeChannel
) -> None:
    channel_id = await make_channel("sms")
    await record_health(
        sessions, ChannelId(str(channel_id)), ChannelHealth.BAD_CREDENTIALS, "401 from provider"
    )
    async with sessions() as session:
        channel = await session.get(Channel, channel_id)
    assert channel is not None
    assert (channel.health, channel.health_reason) == ("bad_credentials", "401 from provider")
    assert channel.last_sync_at is None
    await record_health(sessions, ChannelId(str(channel_id)), ChannelHealth.CONNECTED, None)
    async with sessions() as session:
        channel = await session.get(Channel, channel_id)
    assert channel is not None and channel.health == "connected"
    assert channel.last_sync_at is not None
