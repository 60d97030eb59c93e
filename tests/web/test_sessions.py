"""Cookie sessions: login, the cookie's flags, CSRF, logout that ends the session on the
server, password change, deactivation, idle and absolute expiry (database and Redis
stores), and login rate limiting (in process and in Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from inbox.models import Role, User
from inbox.users import create_user
from tests.web.conftest import SECRET_KEY, ApiUser, Client, MakeClient
from timeline.db import SessionFactory
from web.app import create_app
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY
from web.login_limit import (
    LoginLimiter,
    LoginLimits,
    MemoryLoginLimiter,
    RedisLoginLimiter,
    wait_seconds,
)
from web.sessions import (
    COOKIE_NAME,
    DatabaseSessionStore,
    RedisSessionStore,
    SessionPolicy,
    SessionStore,
    account_state,
)
from web.settings import Settings

API = "/api/v1"
ORIGIN = "http://127.0.0.1:8080"  # the default settings' base_url
PASSWORD = "correct horse battery"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def make_user(sessions: SessionFactory, role: Role = Role.AGENT) -> User:
    async with sessions() as session:
        return await create_user(
            session, email=f"{uuid.uuid4().hex[:8]}@example.com", password=PASSWORD, role=role
        )


async def login(
    client: Client, email: str, password: str = PASSWORD, expect: int = 200, **headers: str
) -> tuple[dict[str, Any], str | None]:
    """Sign in; returns the answer and the cookie value (the jar is cleared: requests
    below name their cookie explicitly, so one test can hold several sessions)."""
    response = await client.post(
        API + "/session", json={"email": email, "password": password}, headers=headers
    )
    assert response.status == expect, await response.text()
    morsel = response.cookies.get(COOKIE_NAME)
    client.session.cookie_jar.clear()
    return await response.json(), (morsel.value if morsel else None)


def with_cookie(
    cookie: str, csrf: str | None = None, origin: str | None = ORIGIN
) -> dict[str, str]:
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    if origin is not None:
        headers["Origin"] = origin
    return headers


def test_create_app_registers_the_account_state(tmp_path: Path) -> None:
    # tests/web/conftest.py adds it when web/app.py does not (yet): this says so.
    settings = Settings(data_dir=tmp_path, secret_key=SECRET_KEY)
    assert account_state in create_app(settings, roles=frozenset({"web"})).cleanup_ctx


async def test_login_sets_a_safe_cookie_and_csrf_guards_unsafe_requests(
    client: Client, sessions: SessionFactory
) -> None:
    user = await make_user(sessions)
    answer, cookie = await login(client, user.email.upper())  # emails match in any case
    assert cookie is not None and len(cookie) >= 40
    assert answer["user"]["id"] == str(user.id) and "password_hash" not in answer["user"]
    csrf = answer["csrf_token"]
    assert csrf and csrf != cookie

    me = await client.get(API + "/session", headers=with_cookie(cookie))
    assert me.status == 200
    assert (await me.json())["csrf_token"] == csrf  # the same token for the same session
    assert (await client.get(API + "/conversations", headers=with_cookie(cookie))).status == 200

    token_path = f"{API}/users/{user.id}/tokens"
    refused = [
        with_cookie(cookie),  # no CSRF token
        with_cookie(cookie, csrf="0" * 64),  # someone else's (or a made-up) token
        with_cookie(cookie, csrf=csrf, origin=None),  # neither Origin nor Referer
        with_cookie(cookie, csrf=csrf, origin="https://evil.example"),
        with_cookie(cookie, csrf=csrf, origin="null"),  # a sandboxed frame
    ]
    for headers in refused:
        response = await client.post(token_path, json={"name": "x"}, headers=headers)
        assert response.status == 403, headers
        assert (await response.json())["error"]["code"] == "forbidden"
    referer = with_cookie(cookie, csrf=csrf, origin=None) | {"Referer": ORIGIN + "/inbox"}
    assert (await client.post(token_path, json={"name": "r"}, headers=referer)).status == 201
    ok = await client.post(token_path, json={"name": "x"}, headers=with_cookie(cookie, csrf))
    assert ok.status == 201
    # A login posted from another site's page is refused (login CSRF).
    await login(client, user.email, expect=403, Origin="https://evil.example")

    # Bearer requests carry no ambient credential: no CSRF token needed.
    token = (await ok.json())["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.post(token_path, json={"name": "y"}, headers=bearer)).status == 201
    assert (await (await client.get(API + "/session", headers=bearer)).json())["csrf_token"] is None

    # Logout ends the session on the server: the same cookie, replayed, is refused.
    out = await client.delete(API + "/session", headers=with_cookie(cookie, csrf))
    assert out.status == 204
    assert out.cookies[COOKIE_NAME].value == ""  # and the browser forgets it
    again = await client.get(API + "/session", headers=with_cookie(cookie))
    assert again.status == 401


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_cookie_flags(make_client: MakeClient, tmp_path: Path, database_url: str) -> None:
    for public_url, secure in ((None, False), ("https://hub.example.com", True)):
        settings = Settings(
            database_url=database_url,
            data_dir=tmp_path,
            secret_key=SECRET_KEY,
            public_url=public_url,
        )
        client = await make_client(settings)
        user = await make_user(client.app[SESSIONS_KEY])
        origin = public_url or ORIGIN
        response = await client.post(
            API + "/session",
            json={"email": user.email, "password": PASSWORD},
            headers={"Origin": origin},
        )
        assert response.status == 200
        morsel = response.cookies[COOKIE_NAME]
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert morsel["path"] == "/"
        assert bool(morsel["secure"]) is secure
        assert int(morsel["max-age"]) == int(settings.session_max_hours * 3600)


async def test_failed_logins_all_look_alike(client: Client, sessions: SessionFactory) -> None:
    user = await make_user(sessions)
    gone = await make_user(sessions)
    async with sessions() as session, session.begin():
        stored = await session.get(User, gone.id)
        assert stored is not None
        stored.is_active = False
    attempts = [
        (user.email, "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
        (gone.email, PASSWORD),  # a deactivated user, right password
    ]
    answers = [(await login(client, e, p, expect=401))[0] for e, p in attempts]
    assert all(a == answers[0] for a in answers)
    assert answers[0]["error"]["message"] == "wrong email or password"


async def test_password_change_ends_the_other_sessions(
    client: Client, sessions: SessionFactory
) -> None:
    user = await make_user(sessions)
    first, here = await login(client, user.email)
    _, elsewhere = await login(client, user.email)
    assert here and elsewhere and here != elsewhere
    path = API + "/session/password"
    headers = with_cookie(here, first["csrf_token"])
    new = "a much better passphrase"
    bad = [
        ({"current_password": "nope nope", "new_password": new}, "current_password"),
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "x\x00" * 8}, "new_password"),
    ]
    for body, field in bad:
        response = await client.post(path, json=body, headers=headers)
        assert response.status == 422
        assert field in (await response.json())["error"]["fields"]
    body = {"current_password": PASSWORD, "new_password": new}
    assert (await client.post(path, json=body, headers=headers)).status == 204
    assert (await client.get(API + "/session", headers=with_cookie(here))).status == 200
    assert (await client.get(API + "/session", headers=with_cookie(elsewhere))).status == 401
    await login(client, user.email, expect=401)
    await login(client, user.email, new)


async def test_a_deactivated_user_loses_sessions_and_tokens_at_once(
    client: Client, sessions: SessionFactory, admin: ApiUser
) -> None:
    user = await make_user(sessions)
    answer, cookie = await login(client, user.email)
    assert cookie is not None
    made = await client.post(
        f"{API}/users/{user.id}/tokens", json={}, headers=with_cookie(cookie, answer["csrf_token"])
    )
    bearer = {"Authorization": f"Bearer {(await made.json())['token']}"}
    assert (await client.get(API + "/conversations", headers=bearer)).status == 200
    patch = await client.patch(
        f"{API}/users/{user.id}", json={"is_active": False}, headers=admin.headers
    )
    assert patch.status == 200
    assert (await client.get(API + "/conversations", headers=with_cookie(cookie))).status == 401
    assert (await client.get(API + "/conversations", headers=bearer)).status == 401
    # Reactivated, the old session stays ended (it was deleted), the token works again.
    await client.patch(f"{API}/users/{user.id}", json={"is_active": True}, headers=admin.headers)
    assert (await client.get(API + "/conversations", headers=with_cookie(cookie))).status == 401
    assert (await client.get(API + "/conversations", headers=bearer)).status == 200


async def test_redis_backed_sessions_through_the_app(
    make_client: MakeClient, settings: Settings, redis_url: str
) -> None:
    client = await make_client(settings.model_copy(update={"redis_url": redis_url}))
    user = await make_user(client.app[SESSIONS_KEY])
    answer, cookie = await login(client, user.email)
    assert cookie is not None
    assert (await client.get(API + "/session", headers=with_cookie(cookie))).status == 200
    out = await client.delete(API + "/session", headers=with_cookie(cookie, answer["csrf_token"]))
    assert out.status == 204
    assert (await client.get(API + "/session", headers=with_cookie(cookie))).status == 401


# --- the stores, with a clock of our own -------------------------------------------------------


POLICY = SessionPolicy(idle=timedelta(hours=1), lifetime=timedelta(hours=8))


@pytest.fixture(params=["database", "redis"])
async def store(
    request: pytest.FixtureRequest, client: Client, redis_url: str
) -> AsyncIterator[SessionStore]:
    if request.param == "database":
        yield DatabaseSessionStore(client.app[SESSIONS_KEY], client.app[READ_SESSIONS_KEY], POLICY)
        return
    redis = aioredis.from_url(redis_url)
    try:
        yield RedisSessionStore(redis, POLICY, prefix=f"test:{uuid.uuid4().hex}:")
    finally:
        await redis.aclose()


async def test_sessions_expire_when_idle_and_at_the_end_of_their_life(
    store: SessionStore, sessions: SessionFactory
) -> None:
    ann, bob = await make_user(sessions), await make_user(sessions)
    cookie = await store.create(ann.id, T0)
    assert await store.user_id_of(cookie, T0) == ann.id
    assert await store.user_id_of("made-up", T0) is None
    # Used every 50 minutes, it lives on past the idle time ...
    at = T0
    for _ in range(9):
        at += timedelta(minutes=50)
        if at >= T0 + POLICY.lifetime:
            break
        assert await store.user_id_of(cookie, at) == ann.id, at
    # ... but not past its lifetime, however busy.
    assert await store.user_id_of(cookie, T0 + POLICY.lifetime) is None
    idle = await store.create(ann.id, T0)
    assert await store.user_id_of(idle, T0 + timedelta(minutes=59)) == ann.id
    assert await store.user_id_of(idle, T0 + timedelta(minutes=59 + 60)) is None

    # Ending all of a user's sessions but one leaves other users alone.
    keep, drop, other = (
        await store.create(ann.id, T0),
        await store.create(ann.id, T0),
        await store.create(bob.id, T0),
    )
    await store.end_all(ann.id, keep=keep)
    assert await store.user_id_of(keep, T0) == ann.id
    assert await store.user_id_of(drop, T0) is None
    assert await store.user_id_of(other, T0) == bob.id
    await store.end(other)
    await store.end(other)  # twice is harmless
    assert await store.user_id_of(other, T0) is None


# --- login rate limits ---------------------------------------------------------------------------


LIMITS = LoginLimits(
    window=timedelta(minutes=15),
    address_failures=10,
    account_failures=5,
    lockout_max=timedelta(minutes=15),
)


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[LoginLimiter]:
    if request.param == "memory":
        yield MemoryLoginLimiter(LIMITS)
        return
    redis = aioredis.from_url(redis_url)
    try:
        yield RedisLoginLimiter(redis, LIMITS, prefix=f"test:{uuid.uuid4().hex}:")
    finally:
        await redis.aclose()


async def test_login_limits_lock_out_and_let_go(limiter: LoginLimiter) -> None:
    at = T0
    for _ in range(4):
        await limiter.failed("10.0.0.1", "ann@example.com", at)
    assert await limiter.retry_after("10.0.0.1", "ann@example.com", at) == 0
    await limiter.failed("10.0.0.1", "Ann@Example.com ", at)  # the same account
    # Five failures: locked for a minute from the last one, from any address.
    assert await limiter.retry_after("10.9.9.9", "ann@example.com", at) == 60
    assert await limiter.retry_after("10.9.9.9", "bob@example.com", at) == 0
    at += timedelta(seconds=61)
    assert await limiter.retry_after("10.9.9.9", "ann@example.com", at) == 0
    await limiter.failed("10.0.0.2", "ann@example.com", at)  # the sixth: two minutes
    assert await limiter.retry_after("10.0.0.2", "ann@example.com", at) == 120
    # The lock expires by itself whatever happened, and a success clears the count.
    assert await limiter.retry_after("10.0.0.2", "ann@example.com", at + timedelta(minutes=2)) == 0
    await limiter.succeeded("ann@example.com")
    assert await limiter.retry_after("10.0.0.2", "ann@example.com", at) == 0

    # One address guessing at many accounts: ten failures, then it waits until the
    # oldest leaves the 15-minute window.
    for i in range(10):
        await limiter.failed("10.0.0.3", f"user{i}@example.com", T0 + timedelta(minutes=i))
    now = T0 + timedelta(minutes=10)
    assert await limiter.retry_after("10.0.0.3", "new@example.com", now) == 5 * 60
    assert await limiter.retry_after("10.0.0.3", "new@example.com", T0 + timedelta(minutes=15)) == 0
    assert await limiter.retry_after("10.0.0.4", "new@example.com", now) == 0


@given(
    failures=st.lists(st.floats(min_value=0, max_value=7200), max_size=40),
    now=st.floats(min_value=7200, max_value=10000),
)
def test_a_wait_is_never_negative_nor_longer_than_the_limits(
    failures: list[float], now: float
) -> None:
    times = sorted(failures)
    wait = wait_seconds(LIMITS, times, times, now)
    assert 0 <= wait <= max(LIMITS.window, LIMITS.lockout_max).total_seconds()
    assert wait_seconds(LIMITS, [], times, now) <= LIMITS.lockout_max.total_seconds()
    recent = [t for t in times if now - LIMITS.window.total_seconds() < t <= now]
    if len(recent) < min(LIMITS.address_failures, LIMITS.account_failures):
        assert wait == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_too_many_failed_logins_answer_429_with_retry_after(
    client: Client, sessions: SessionFactory
) -> None:
    user = await make_user(sessions)
    for _ in range(5):
        await login(client, user.email, "wrong password", expect=401)
    response = await client.post(API + "/session", json={"email": user.email, "password": PASSWORD})
    assert response.status == 429
    assert int(response.headers["Retry-After"]) == 60
    assert (await response.json())["error"]["code"] == "too_many_requests"
    # Per address: X-Forwarded-For from an untrusted peer is not believed, so changing
    # it does not dodge the address limit.
    for i in range(5):
        await login(
            client, f"x{i}@example.com", "wrong", expect=401, **{"X-Forwarded-For": f"10.1.0.{i}"}
        )
    limited = await client.post(
        API + "/session",
        json={"email": "someone@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": "10.2.0.1"},
    )
    assert limited.status == 429


def test_the_limits_come_from_the_settings() -> None:
    assert LoginLimits.of(Settings()) == LIMITS
    assert LoginLimits.of(Settings(login_address_failures=3)) == replace(LIMITS, address_failures=3)
