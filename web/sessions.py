"""Cookie sessions of the agent app, kept on the server: in Redis when it is configured
(every web process shares them), else in the database.

The cookie holds only a random 256-bit value; the store keys the session by its SHA-256,
so reading the store (a backup, a Redis dump) gives nothing that logs in. Ending a
session deletes it there, so a stolen cookie stops working at once. A session ends after
`idle` without a request and in any case `lifetime` after login. Whether the user is
still active is checked on every request by the caller (web/auth.py), not here.

The CSRF token of a session is derived from it with a key of its own (an HMAC of the
secret key with a label), so it needs no storage and is worthless without the cookie.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import DBAPIError

from inbox.account_models import WebSession
from inbox.users import dummy_hash
from timeline.db import NO_WAIT, SessionFactory, is_busy
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY, SETTINGS_KEY
from web.login_limit import LOGIN_LIMITER_KEY, login_limiter

logger = logging.getLogger(__name__)

COOKIE_NAME = "switchboard_session"
CSRF_HEADER = "X-CSRF-Token"
# A session's last activity is written at most this often (each write costs a request).
TOUCH_RESOLUTION = timedelta(minutes=1)
_CSRF_LABEL = b"switchboard csrf token v1"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long sessions live."""

    idle: timedelta
    lifetime: timedelta


class SessionStore(Protocol):
    """Where sessions live; `now` is passed in so tests can move time."""

    policy: SessionPolicy

    async def create(self, user_id: uuid.UUID, now: datetime) -> str:
        """A new session for the user; returns the cookie value."""

    async def user_id_of(self, cookie: str, now: datetime) -> uuid.UUID | None:
        """The session's user, recording activity; None when unknown, ended or expired."""

    async def end(self, cookie: str) -> None:
        """End one session (a no-op for an unknown cookie)."""

    async def end_all(self, user_id: uuid.UUID, keep: str | None = None) -> None:
        """End every session of a user, but `keep` (the cookie of the current one)."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def session_key(cookie: str) -> str:
    """What a session is stored under: the SHA-256 of the cookie value."""
    return hashlib.sha256(cookie.encode()).hexdigest()


def _new_cookie() -> str:
    return secrets.token_urlsafe(32)


def csrf_secret(secret_key: str) -> bytes:
    """The key CSRF tokens are made with, derived from the secret key for this use alone."""
    return hmac.new(secret_key.encode(), _CSRF_LABEL, hashlib.sha256).digest()


def csrf_token(secret: bytes, cookie: str) -> str:
    """The CSRF token bound to one session."""
    return hmac.new(secret, cookie.encode(), hashlib.sha256).hexdigest()


class DatabaseSessionStore:
    """Sessions as rows of `web_sessions`."""

    def __init__(
        self, sessions: SessionFactory, read_sessions: SessionFactory, policy: SessionPolicy
    ) -> None:
        self._sessions = sessions
        self._read = read_sessions
        self.policy = policy

    async def create(self, user_id: uuid.UUID, now: datetime) -> str:
        cookie = _new_cookie()
        async with self._sessions() as session, session.begin():
            # Expired rows go when someone logs in: no sweeper needed, the table stays small.
            await session.execute(
                delete(WebSession).where(
                    or_(
                        WebSession.expires_at <= now,
                        WebSession.last_seen_at <= now - self.policy.idle,
                    )
                )
            )
            session.add(
                WebSession(
                    id=session_key(cookie),
                    user_id=user_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.policy.lifetime,
                )
            )
        return cookie

    async def user_id_of(self, cookie: str, now: datetime) -> uuid.UUID | None:
        key = session_key(cookie)
        async with self._read() as session:
            row = (
                await session.execute(
                    select(WebSession.user_id, WebSession.last_seen_at).where(
                        WebSession.id == key,
                        WebSession.expires_at > now,
                        WebSession.last_seen_at > now - self.policy.idle,
                    )
                )
            ).first()
        if row is None:
            return None
        user_id, last_seen_at = row
        if now - last_seen_at >= TOUCH_RESOLUTION:
            await self._touch(key, now)
        return user_id

    async def _touch(self, key: str, now: datetime) -> None:
        try:
            async with self._sessions() as session:
                await session.connection(execution_options={NO_WAIT: True})
                await session.execute(
                    update(WebSession).where(WebSession.id == key).values(last_seen_at=now)
                )
                await session.commit()
        except DBAPIError as err:
            if not is_busy(err):
                raise
            # A long write holds SQLite's lock: the next request records the activity.
            logger.debug("session activity not recorded while the database is busy")

    async def end(self, cookie: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(WebSession).where(WebSession.id == session_key(cookie)))

    async def end_all(self, user_id: uuid.UUID, keep: str | None = None) -> None:
        statement = delete(WebSession).where(WebSession.user_id == user_id)
        if keep is not None:
            statement = statement.where(WebSession.id != session_key(keep))
        async with self._sessions() as session, session.begin():
            await session.execute(statement)


class RedisSessionStore:
    """Sessions as Redis hashes that expire by themselves, plus a set of each user's
    sessions so that all of them can be ended (password change, deactivation)."""

    def __init__(
        self, client: aioredis.Redis, policy: SessionPolicy, prefix: str = "switchboard:session:"
    ) -> None:
        self._client = client
        self.policy = policy
        self._prefix = prefix

    def _key(self, cookie: str) -> str:
        return self._prefix + session_key(cookie)

    def _user_key(self, user_id: uuid.UUID) -> str:
        return f"{self._prefix}user:{user_id}"

    def _ttl_ms(self, expires_at: float, now: datetime) -> int:
        left = min(expires_at - now.timestamp(), self.policy.idle.total_seconds())
        return max(1, int(left * 1000))

    async def create(self, user_id: uuid.UUID, now: datetime) -> str:
        cookie = _new_cookie()
        key = self._key(cookie)
        expires_at = (now + self.policy.lifetime).timestamp()
        user_key = self._user_key(user_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={"user": str(user_id), "seen": now.timestamp(), "expires": expires_at},
            )
            pipe.pexpire(key, self._ttl_ms(expires_at, now))
            pipe.sadd(user_key, key)
            pipe.pexpire(user_key, int(self.policy.lifetime.total_seconds() * 1000))
            await pipe.execute()
        return cookie

    async def user_id_of(self, cookie: str, now: datetime) -> uuid.UUID | None:
        key = self._key(cookie)
        raw = await self._client.hgetall(key)
        if not raw:
            return None
        try:
            user_id = uuid.UUID(_text(raw[b"user"]))
            seen = float(raw[b"seen"])
            expires_at = float(raw[b"expires"])
        except (KeyError, ValueError):
            logger.warning("a malformed session was found in Redis and ended")
            await self._client.delete(key)
            return None
        stamp = now.timestamp()
        if stamp >= expires_at or stamp - seen >= self.policy.idle.total_seconds():
            return None
        if stamp - seen >= TOUCH_RESOLUTION.total_seconds():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(key, "seen", stamp)
                pipe.pexpire(key, self._ttl_ms(expires_at, now))
                await pipe.execute()
        return user_id

    async def end(self, cookie: str) -> None:
        key = self._key(cookie)
        user = await self._client.hget(key, "user")
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if user is not None:
                pipe.srem(self._user_key(uuid.UUID(_text(user))), key)
            await pipe.execute()

    async def end_all(self, user_id: uuid.UUID, keep: str | None = None) -> None:
        user_key = self._user_key(user_id)
        kept = None if keep is None else self._key(keep)
        members = [_text(m) for m in await self._client.smembers(user_key)]
        ending = [m for m in members if m != kept]
        if ending:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(*ending)
                pipe.srem(user_key, *ending)
                await pipe.execute()


SESSION_STORE_KEY: web.AppKey[SessionStore] = web.AppKey("session_store")
CSRF_SECRET_KEY: web.AppKey[bytes] = web.AppKey("csrf_secret")
# The cookie value of the session that authenticated a request (absent for bearer tokens).
SESSION_COOKIE_KEY = web.RequestKey("session_cookie", str)


def policy_of(app: web.Application) -> SessionPolicy:
    """The session lifetimes from the settings."""
    settings = app[SETTINGS_KEY]
    return SessionPolicy(
        idle=timedelta(minutes=settings.session_idle_minutes),
        lifetime=timedelta(hours=settings.session_max_hours),
    )


async def account_state(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the session store and the login limiter, in Redis when it is
    configured (one client for both), else in the database and in this process."""
    settings = app[SETTINGS_KEY]
    app[CSRF_SECRET_KEY] = csrf_secret(settings.resolved_secret_key())
    client = aioredis.from_url(settings.redis_url) if settings.redis_url else None
    if client is None:
        app[SESSION_STORE_KEY] = DatabaseSessionStore(
            app[SESSIONS_KEY], app[READ_SESSIONS_KEY], policy_of(app)
        )
    else:
        app[SESSION_STORE_KEY] = RedisSessionStore(client, policy_of(app))
    app[LOGIN_LIMITER_KEY] = login_limiter(settings, client)
    # Made now, so the first login with an unknown email takes no longer than the next.
    await asyncio.to_thread(dummy_hash)
    yield
    if client is not None:
        await client.aclose()


async def new_session(request: web.Request, user_id: uuid.UUID, now: datetime) -> str:
    """A session for `user_id`, under a new id at every sign-in (no session fixation); the
    session of a cookie the browser already had ends. Answers the new cookie value."""
    store = request.app[SESSION_STORE_KEY]
    if (previous := request.cookies.get(COOKIE_NAME)) is not None:
        await store.end(previous)
    return await store.create(user_id, now)


def set_session_cookie(request: web.Request, response: web.StreamResponse, cookie: str) -> None:
    """The session cookie, the same wherever a sign-in happens (API, form, invitation)."""
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=int(request.app[SESSION_STORE_KEY].policy.lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS_KEY].cookie_secure,
    )
