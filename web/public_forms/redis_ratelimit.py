"""A rate limiter whose counts live in Redis, so every web process shares them.

A fixed window per key: INCR, and the window's expiry set on its first hit, in one Lua
script so no key is ever left without an expiry (a crash between INCR and EXPIRE would
otherwise block an address for good). A fixed window lets up to twice the limit through
around a window's edge; for a per-hour cap on form posts that is an acceptable price for
one round trip and one key per address.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# KEYS[1]: the counter; ARGV[1]: the window in milliseconds. Returns {count, ms left}.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


@dataclass(frozen=True, slots=True)
class Hit:
    """The outcome of counting one request: allowed, or when to try again."""

    allowed: bool
    retry_after: float  # seconds until the window resets (0 when allowed)


class RedisRateLimiter:
    """At most `limit` hits per key in each window of `window_seconds`.

    When Redis cannot be reached the request is let through and the failure logged:
    refusing every visitor because a counter is unavailable would lose real submissions,
    which the other spam defences still screen."""

    def __init__(
        self,
        client: aioredis.Redis,
        limit: int,
        window_seconds: float,
        *,
        prefix: str = "switchboard:ratelimit:",
    ) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be at least 1 and window_seconds positive")
        self.limit = limit
        self._window_ms = max(1, math.ceil(window_seconds * 1000))
        self._prefix = prefix
        self._client = client
        self._script = client.register_script(_HIT_SCRIPT)

    async def hit(self, key: str) -> bool:
        """Count one request under `key`; False when over the limit (answer 429)."""
        return (await self.check(key)).allowed

    async def check(self, key: str) -> Hit:
        """Count one request under `key` and say when the caller may try again."""
        try:
            count, left = await self._script(keys=[self._prefix + key], args=[self._window_ms])
        except RedisError as err:
            logger.warning("rate limit not applied, Redis failed: %r", err)
            return Hit(True, 0.0)
        if int(count) <= self.limit:
            return Hit(True, 0.0)
        return Hit(False, max(1.0, int(left) / 1000))
