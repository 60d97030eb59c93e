"""The per-address limit on form posts, per channel, in memory or shared through Redis.

Each web form channel sets its own `submissions_per_hour_per_ip` (connectors/webform/
config.py); the count covers every form of the channel. With SWITCHBOARD_REDIS_URL set
the counts are shared by every web process (redis_ratelimit.py); otherwise they are
token buckets in this process (connectors/webform/ratelimit.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

from connectors.webform.ratelimit import MemoryRateLimiter, client_key
from web.public_forms.redis_ratelimit import Hit, RedisRateLimiter

WINDOW_SECONDS = 3600.0


class Throttle(Protocol):
    """Counts one post from `ip` to a form of `channel_id` allowed `per_hour` posts."""

    async def check(self, channel_id: uuid.UUID, per_hour: int, ip: str) -> Hit: ...


class MemoryThrottle:
    """Token buckets in this process, one set per channel and hourly allowance."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._limiters: dict[tuple[uuid.UUID, int], MemoryRateLimiter] = {}

    def _limiter(self, channel_id: uuid.UUID, per_hour: int) -> MemoryRateLimiter:
        limiter = self._limiters.get((channel_id, per_hour))
        if limiter is None:
            # A changed allowance starts a fresh set of buckets; the old one is dropped.
            for stale in [k for k in self._limiters if k[0] == channel_id]:
                del self._limiters[stale]
            limiter = MemoryRateLimiter(
                per_hour, WINDOW_SECONDS, clock=self._clock, max_keys=self._max_keys
            )
            self._limiters[(channel_id, per_hour)] = limiter
        return limiter

    async def check(self, channel_id: uuid.UUID, per_hour: int, ip: str) -> Hit:
        limiter = self._limiter(channel_id, per_hour)
        if await limiter.hit(client_key(ip)):
            return Hit(True, 0.0)
        # A bucket refills one post every hour / allowance.
        return Hit(False, WINDOW_SECONDS / per_hour)


class RedisThrottle:
    """Fixed hourly windows in Redis, shared by every web process."""

    def __init__(self, client: aioredis.Redis, prefix: str = "switchboard:forms:rate:") -> None:
        self._client = client
        self._prefix = prefix
        self._limiters: dict[int, RedisRateLimiter] = {}

    async def check(self, channel_id: uuid.UUID, per_hour: int, ip: str) -> Hit:
        limiter = self._limiters.get(per_hour)
        if limiter is None:
            limiter = RedisRateLimiter(self._client, per_hour, WINDOW_SECONDS, prefix=self._prefix)
            self._limiters[per_hour] = limiter
        return await limiter.check(f"{channel_id}:{client_key(ip)}")
