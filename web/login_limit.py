"""Login rate limiting: failed logins counted per client address and per account.

An address may fail `address_failures` times within a sliding `window`; then it waits
until its oldest counted failure leaves the window. An account is locked after
`account_failures` failures within the window: for `lockout_base`, doubling with each
further failure, at most `lockout_max`, counted from the last failure. Attempts refused
while locked are not failures (the password is not even checked), so a lock always
expires on time: someone guessing at a victim's account delays them at most
`lockout_max` at a stretch, and each guess costs the guesser from their own address
budget too. A successful login clears the account's failures.

Accounts are counted by the email typed, whether or not such a user exists, so the
limiter's answers reveal nothing about which accounts exist; they are stored as a
SHA-256, not as addresses. Counts live in Redis when it is configured (shared by every
web process), else in this process.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from web.settings import Settings

logger = logging.getLogger(__name__)

LOCKOUT_BASE = timedelta(minutes=1)
# The in-process limiter forgets keys with no failure in the window once it holds this
# many, so a spray of made-up emails cannot grow it without bound.
SWEEP_ABOVE = 10_000


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """The thresholds (from the settings)."""

    window: timedelta
    address_failures: int
    account_failures: int
    lockout_max: timedelta
    lockout_base: timedelta = LOCKOUT_BASE

    @classmethod
    def of(cls, settings: Settings) -> LoginLimits:
        return cls(
            window=timedelta(minutes=settings.login_window_minutes),
            address_failures=settings.login_address_failures,
            account_failures=settings.login_account_failures,
            lockout_max=timedelta(minutes=settings.login_lockout_max_minutes),
        )

    @property
    def keep(self) -> timedelta:
        """How long a failure can matter."""
        return max(self.window, self.lockout_max)


def account_key(email: str) -> str:
    """How an account is counted: the SHA-256 of the email as typed, normalized."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def wait_seconds(
    limits: LoginLimits,
    address_failures: Sequence[float],
    account_failures: Sequence[float],
    now: float,
) -> float:
    """Seconds until a login may be tried (0: now), from sorted failure times (epoch s)."""
    wait = 0.0
    window = limits.window.total_seconds()
    recent = address_failures[bisect.bisect_right(address_failures, now - window) :]
    if len(recent) >= limits.address_failures:
        # Free again when enough failures have left the window to be one under the limit.
        wait = recent[len(recent) - limits.address_failures] + window - now
    counted = account_failures[bisect.bisect_right(account_failures, now - window) :]
    if len(counted) >= limits.account_failures:
        doublings = len(counted) - limits.account_failures
        lock = min(
            limits.lockout_base.total_seconds() * 2 ** min(doublings, 32),
            limits.lockout_max.total_seconds(),
        )
        wait = max(wait, counted[-1] + lock - now)
    return max(0.0, wait)


class LoginLimiter(Protocol):
    """Counts failures and says when a login may be tried."""

    limits: LoginLimits

    async def retry_after(self, address: str, email: str, now: datetime) -> float:
        """Seconds to wait before this login may be tried; 0 when it may be tried now."""

    async def failed(self, address: str, email: str, now: datetime) -> None:
        """Count a failed login."""

    async def succeeded(self, email: str) -> None:
        """Clear the account's failures."""


class MemoryLoginLimiter:
    """Counts in this process (one web process, the embedded default)."""

    def __init__(self, limits: LoginLimits) -> None:
        self.limits = limits
        self._addresses: dict[str, list[float]] = {}
        self._accounts: dict[str, list[float]] = {}

    def _recent(self, table: dict[str, list[float]], key: str, now: float) -> list[float]:
        times = table.get(key, [])
        cut = bisect.bisect_right(times, now - self.limits.keep.total_seconds())
        if cut:
            times = times[cut:]
            if times:
                table[key] = times
            else:
                table.pop(key, None)
        return times

    async def retry_after(self, address: str, email: str, now: datetime) -> float:
        stamp = now.timestamp()
        return wait_seconds(
            self.limits,
            self._recent(self._addresses, address, stamp),
            self._recent(self._accounts, account_key(email), stamp),
            stamp,
        )

    async def failed(self, address: str, email: str, now: datetime) -> None:
        stamp = now.timestamp()
        for table, key in ((self._addresses, address), (self._accounts, account_key(email))):
            times = self._recent(table, key, stamp)
            bisect.insort(times, stamp)
            table[key] = times
            if len(table) > SWEEP_ABOVE:
                self._sweep(table, stamp)

    def _sweep(self, table: dict[str, list[float]], now: float) -> None:
        horizon = now - self.limits.keep.total_seconds()
        for key in [key for key, times in table.items() if not times or times[-1] <= horizon]:
            del table[key]

    async def succeeded(self, email: str) -> None:
        self._accounts.pop(account_key(email), None)


class RedisLoginLimiter:
    """Counts in Redis sorted sets (failure times as scores), shared by every process.

    When Redis cannot be reached, logins are let through and the failure logged: the
    argon2 hash still makes guessing slow, and refusing every login would lock out the
    whole team.
    """

    def __init__(
        self, client: aioredis.Redis, limits: LoginLimits, prefix: str = "switchboard:login:"
    ) -> None:
        self._client = client
        self.limits = limits
        self._prefix = prefix

    def _keys(self, address: str, email: str) -> tuple[str, str]:
        return f"{self._prefix}address:{address}", f"{self._prefix}account:{account_key(email)}"

    async def retry_after(self, address: str, email: str, now: datetime) -> float:
        stamp = now.timestamp()
        since = stamp - self.limits.window.total_seconds()
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key in self._keys(address, email):
                    pipe.zrangebyscore(key, f"({since}", "+inf", withscores=True)
                by_address, by_account = await pipe.execute()
        except RedisError as err:
            logger.warning("login limit not applied, Redis failed: %r", err)
            return 0.0
        return wait_seconds(
            self.limits,
            sorted(score for _, score in by_address),
            sorted(score for _, score in by_account),
            stamp,
        )

    async def failed(self, address: str, email: str, now: datetime) -> None:
        stamp = now.timestamp()
        keep = self.limits.keep.total_seconds()
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for key in self._keys(address, email):
                    # A random member: two failures in the same microsecond both count.
                    pipe.zadd(key, {f"{stamp}:{secrets.token_hex(4)}": stamp})
                    pipe.zremrangebyscore(key, "-inf", stamp - keep)
                    pipe.pexpire(key, int(keep * 1000) + 1000)
                await pipe.execute()
        except RedisError as err:
            logger.warning("failed login not counted, Redis failed: %r", err)

    async def succeeded(self, email: str) -> None:
        try:
            await self._client.delete(self._keys("", email)[1])
        except RedisError as err:
            logger.warning("account failures not cleared, Redis failed: %r", err)


LOGIN_LIMITER_KEY: web.AppKey[LoginLimiter] = web.AppKey("login_limiter")


def login_limiter(settings: Settings, client: aioredis.Redis | None) -> LoginLimiter:
    """The limiter for these settings: in Redis when a client is given."""
    limits = LoginLimits.of(settings)
    return MemoryLoginLimiter(limits) if client is None else RedisLoginLimiter(client, limits)
