"""Connectors' durable cursors and channel health, on both databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from connectors.types import ChannelHealth, ChannelId
from tests.timeline.conftest import MakeChannel
from timeline.channel_state import (
    HEALTH_CHANGED,
    SYNC_NEWS_AFTER,
    DatabaseCursorStore,
    record_health,
)
from timeline.db import SessionFactory
from timeline.models import Channel, ChannelCursor, utcnow
from timeline.parking import NOT_RUNNING


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


async def test_health_news_is_told_once_and_a_healthy_sync_only_after_a_while(
    sessions: SessionFactory, make_channel: MakeChannel
) -> None:
    channel_id = await make_channel("email")
    channel = ChannelId(str(channel_id))
    refused = await record_health(sessions, channel, ChannelHealth.BAD_CREDENTIALS, "535 no")
    assert refused is not None and refused.type == HEALTH_CHANGED
    assert refused.data == {
        "channel_id": str(channel_id),
        "health": "bad_credentials",
        "health_reason": "535 no",
        "last_sync_at": None,
    }
    # The same verdict again is no news.
    assert await record_health(sessions, channel, ChannelHealth.BAD_CREDENTIALS, "535 no") is None
    connected = await record_health(sessions, channel, ChannelHealth.CONNECTED, None)
    assert connected is not None and connected.data["health"] == "connected"
    assert connected.data["last_sync_at"] is not None
    # A sync right after the one announced is stamped, not announced ...
    assert await record_health(sessions, channel, ChannelHealth.CONNECTED, None) is None
    # ... until the last one told of is older than SYNC_NEWS_AFTER.
    async with sessions() as session, session.begin():
        await session.execute(
            update(Channel)
            .where(Channel.id == channel_id)
            .values(last_sync_at=utcnow() - SYNC_NEWS_AFTER - timedelta(seconds=1))
        )
    later = await record_health(sessions, channel, ChannelHealth.CONNECTED, None)
    assert later is not None and later.data["last_sync_at"] > connected.data["last_sync_at"]
    # A channel deleted meanwhile: nothing to store, nothing to tell.
    async with sessions() as session, session.begin():
        await session.execute(delete(Channel).where(Channel.id == channel_id))
    assert await record_health(sessions, channel, ChannelHealth.CONNECTED, None) is None


async def test_a_health_written_meanwhile_is_judged_news_against_what_was_written(
    sessions: SessionFactory, make_channel: MakeChannel
) -> None:
    channel_id = await make_channel("sms")
    channel = ChannelId(str(channel_id))
    assert await record_health(sessions, channel, ChannelHealth.CONNECTED, None) is not None
    # The outbox parks the channel (its own transaction, still open) while the connector
    # reports a good sync: that sync is news again, since it undoes what was parked.
    async with sessions() as outbox, outbox.begin():
        await outbox.execute(
            update(Channel)
            .where(Channel.id == channel_id)
            .values(health="unknown", health_reason=NOT_RUNNING)
        )
        racing = asyncio.create_task(
            record_health(sessions, channel, ChannelHealth.CONNECTED, None)
        )
        await asyncio.sleep(0.2)  # let it reach the channel's row
        assert not racing.done()  # it waits for the outbox's transaction
    told = await racing
    assert told is not None and told.data["health"] == "connected"
    async with sessions() as session:
        stored = await session.get(Channel, channel_id)
    assert stored is not None and (stored.health, stored.health_reason) == ("connected", None)


async def test_a_reason_with_nul_and_broken_unicode_is_stored_and_told_clean(
    sessions: SessionFactory, make_channel: MakeChannel
) -> None:
    channel_id = await make_channel("email")
    told = await record_health(
        sessions, ChannelId(str(channel_id)), ChannelHealth.BAD_CREDENTIALS, "535 \x00no\ud800"
    )
    assert told is not None and told.data["health_reason"] == "535 no\ufffd"
    async with sessions() as session:
        stored = await session.get(Channel, channel_id)
    assert stored is not None and stored.health_reason == "535 no\ufffd"
