"""The in-memory rate limiter, on a fake clock."""

from __future__ import annotations

import pytest

from connectors.webform.ratelimit import MemoryRateLimiter, RateLimiter, client_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_burst_then_refused_then_refilled() -> None:
    clock = FakeClock()
    limiter: RateLimiter = MemoryRateLimiter(3, 60.0, clock=clock)  # 3 a minute
    assert [await limiter.hit("1.2.3.4") for _ in range(4)] == [True, True, True, False]
    clock.now += 19.0  # not yet one refill (20 s each)
    assert await limiter.hit("1.2.3.4") is False
    clock.now += 1.0
    assert await limiter.hit("1.2.3.4") is True
    assert await limiter.hit("1.2.3.4") is False
    clock.now += 3600.0  # refills up to the burst, never beyond
    assert [await limiter.hit("1.2.3.4") for _ in range(4)] == [True, True, True, False]


async def test_keys_are_independent() -> None:
    limiter = MemoryRateLimiter(1, 60.0, clock=FakeClock())
    assert await limiter.hit("a")
    assert not await limiter.hit("a")
    assert await limiter.hit("b")


async def test_refused_hits_do_not_count() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(1, 10.0, clock=clock)
    assert await limiter.hit("k")
    for _ in range(50):
        assert not await limiter.hit("k")
    clock.now += 10.0
    assert await limiter.hit("k")


async def test_a_clock_going_backwards_adds_nothing() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(1, 10.0, clock=clock)
    assert await limiter.hit("k")
    clock.now -= 100.0
    assert not await limiter.hit("k")


async def test_memory_is_bounded_least_recently_used_first() -> None:
    limiter = MemoryRateLimiter(1, 60.0, clock=FakeClock(), max_keys=2)
    assert limiter.hit_now("a") and limiter.hit_now("b")
    assert not limiter.hit_now("a")  # "a" is now the most recently used
    assert limiter.hit_now("c")  # evicts "b"
    assert len(limiter) == 2
    assert not limiter.hit_now("a")
    assert limiter.hit_now("b")  # forgotten, so full again


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        MemoryRateLimiter(0, 60.0)
    with pytest.raises(ValueError):
        MemoryRateLimiter(1, 0)


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("not an ip", "not an ip"),
    ],
)
def test_client_key(ip: str, key: str) -> None:
    assert client_key(ip) == key
