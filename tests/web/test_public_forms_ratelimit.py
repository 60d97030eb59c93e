"""The per-address limit on form posts: in process, and shared through the real Redis
by several web processes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.web.conftest import Client, MakeClient
from tests.web.test_public_forms_support import make_channel, make_form, stored
from web.public_forms.redis_ratelimit import RedisRateLimiter
from web.public_forms.throttle import MemoryThrottle
from web.settings import Settings

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def post(client: Client, key: str, n: int) -> int:
    response = await client.post(f"/forms/{key}", json={"email": f"v{n}@example.com"})
    return response.status


@sqlite_only
async def test_over_the_channels_hourly_limit_is_429(client: Client) -> None:
    channel = await make_channel(client, submissions_per_hour_per_ip=2)
    form = await make_form(client, channel)
    sibling = await make_form(client, channel)  # the count covers the channel's forms
    other = await make_form(client, await make_channel(client, submissions_per_hour_per_ip=2))
    assert [await post(client, form.key, 1), await post(client, sibling.key, 2)] == [200, 200]
    refused = await client.post(f"/forms/{form.key}", json={"email": "v3@example.com"})
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) == 1800  # an hour / 2 posts
    assert await post(client, other.key, 4) == 200  # another channel counts apart
    assert await stored(client, form) == (2, 1)


@sqlite_only
async def test_rate_limited_plain_post_gets_a_page(client: Client) -> None:
    form = await make_form(client, await make_channel(client, submissions_per_hour_per_ip=1))
    await post(client, form.key, 1)
    response = await client.post(
        f"/forms/{form.key}", data={"email": "a@example.com"}, headers={"Accept": "text/html"}
    )
    assert response.status == 429
    assert response.content_type == "text/html"
    assert "Too many submissions" in await response.text()


async def test_memory_throttle_refills_with_time() -> None:
    now = [0.0]
    throttle = MemoryThrottle(clock=lambda: now[0])
    channel = uuid.uuid4()
    assert (await throttle.check(channel, 2, "203.0.113.9")).allowed
    assert (await throttle.check(channel, 2, "203.0.113.9")).allowed
    refused = await throttle.check(channel, 2, "203.0.113.9")
    assert not refused.allowed and refused.retry_after == 1800
    # IPv6 addresses in one /64 share a count; another address does not.
    assert (await throttle.check(channel, 2, "2001:db8::1")).allowed
    assert (await throttle.check(channel, 2, "2001:db8::2")).allowed
    assert not (await throttle.check(channel, 2, "2001:db8::3")).allowed
    now[0] += 1800
    assert (await throttle.check(channel, 2, "203.0.113.9")).allowed


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_redis_limiter_counts_in_a_window_that_always_expires(
    redis_client: aioredis.Redis,
) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter(redis_client, 3, 3600, prefix=prefix)
    assert [await limiter.hit("ip") for _ in range(4)] == [True, True, True, False]
    refused = await limiter.check("ip")
    assert not refused.allowed and 3590 <= refused.retry_after <= 3600
    assert 0 < await redis_client.pttl(prefix + "ip") <= 3_600_000
    assert await limiter.hit("another ip")
    # A counter somehow left without expiry (a crash, an old version) gets one back.
    await redis_client.set(prefix + "stuck", 10)
    assert not await limiter.hit("stuck")
    assert await redis_client.pttl(prefix + "stuck") > 0


async def test_redis_limiter_lets_posts_through_when_redis_is_down() -> None:
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        limiter = RedisRateLimiter(client, 1, 60)
        assert await limiter.hit("ip") and await limiter.hit("ip")
    finally:
        await client.aclose()


@sqlite_only
async def test_web_processes_share_the_count_through_redis(
    make_client: MakeClient, settings: Settings, redis_url: str
) -> None:
    shared = settings.model_copy(update={"redis_url": redis_url})
    first = await make_client(shared)
    second = await make_client(shared)
    form = await make_form(first, await make_channel(first, submissions_per_hour_per_ip=2))
    assert await post(first, form.key, 1) == 200
    assert await post(second, form.key, 2) == 200
    assert await post(first, form.key, 3) == 429
    assert await post(second, form.key, 4) == 429
