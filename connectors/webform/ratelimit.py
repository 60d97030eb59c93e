"""Per-key rate limiting of public form posts (per client IP), in memory.

A token bucket per key: `burst` posts at once, then one more every `per` / `burst`. The
interface is one coroutine, `hit(key) -> bool`, so the Redis-backed limiter for several web
processes (a later change) can replace this one without touching the endpoint.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class RateLimiter(Protocol):
    """Answers whether one more request under `key` is allowed now (and counts it)."""

    async def hit(self, key: str) -> bool: ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class MemoryRateLimiter:
    """Token buckets in one process. `clock` returns seconds (monotonic); tests pass a
    fake. At most `max_keys` buckets are kept: beyond that the least recently used one is
    forgotten (that key starts full again), which bounds memory under an address-spraying
    flood at the price of some leniency to it."""

    def __init__(
        self,
        burst: int,
        per_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if burst < 1 or per_seconds <= 0 or max_keys < 1:
            raise ValueError("burst and max_keys must be at least 1, per_seconds positive")
        self.burst = burst
        self.refill_per_second = burst / per_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    async def hit(self, key: str) -> bool:
        """Count one request under `key`; False when its bucket is empty (answer 429)."""
        return self.hit_now(key)

    def hit_now(self, key: str) -> bool:
        """`hit` for synchronous callers."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.refill_per_second)
            bucket.updated = now
        self._buckets[key] = bucket  # most recently used last
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def __len__(self) -> int:
        return len(self._buckets)


def client_key(ip: str) -> str:
    """The rate-limit key of a client address: the address for IPv4, its /64 network for
    IPv6 (one subscriber usually holds a whole /64). Unparsable input is used as is."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip.strip()
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
