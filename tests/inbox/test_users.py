"""Users and API tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from inbox.models import ApiToken, Role, User
from inbox.users import (
    DEFAULT_ADMIN_EMAIL,
    DuplicateUserError,
    UserError,
    create_user,
    ensure_first_admin,
    hash_password,
    issue_token,
    record_token_use,
    token_owner,
    verify_password,
)
from timeline.db import SessionFactory
from timeline.models import utcnow


def test_verify_password() -> None:
    hashed = hash_password("correct horse")
    assert hashed != "correct horse"
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "wrong horse")
    assert not verify_password("not a hash", "correct horse")


async def test_create_user(sessions: SessionFactory) -> None:
    async with sessions() as session:
        user = await create_user(
            session, email="  Ann@Example.COM ", password="s3cret-pw", role="agent", name="Ann"
        )
    async with sessions() as session:
        stored = await session.scalar(select(User).where(User.id == user.id))
    assert stored is not None
    assert stored.email == "ann@example.com"
    assert stored.role == Role.AGENT
    assert stored.name == "Ann"
    assert stored.is_active
    assert stored.password_hash != "s3cret-pw"
    assert verify_password(stored.password_hash, "s3cret-pw")


@pytest.mark.parametrize("second", ["ann@example.com", "ANN@example.com", "Ann@EXAMPLE.com"])
async def test_duplicate_email_is_refused(sessions: SessionFactory, second: str) -> None:
    async with sessions() as session:
        await create_user(session, email="ann@example.com", password="password1", role="admin")
    async with sessions() as session:
        with pytest.raises(DuplicateUserError) as caught:
            await create_user(session, email=second, password="password2", role=Role.MANAGER)
    assert str(caught.value) == "a user with email ann@example.com already exists"
    async with sessions() as session:
        assert len((await session.scalars(select(User))).all()) == 1


async def test_concurrent_creation_settles_on_one_user(sessions: SessionFactory) -> None:
    async def attempt() -> User | None:
        async with sessions() as session:
            try:
                return await create_user(
                    session, email="bob@example.com", password="password1", role="agent"
                )
            except DuplicateUserError:
                return None

    results = await asyncio.gather(*(attempt() for _ in range(4)))
    assert sum(result is not None for result in results) == 1


@pytest.mark.parametrize(
    ("email", "password", "role", "message"),
    [
        ("ann@example.com", "short", "agent", "at least 8 characters"),
        ("ann@example.com", "long enough", "boss", "unknown role 'boss'"),
        ("not-an-address", "long enough", "agent", "invalid email"),
        ("ann@", "long enough", "agent", "invalid email"),
    ],
)
async def test_invalid_input_is_refused(
    sessions: SessionFactory, email: str, password: str, role: str, message: str
) -> None:
    async with sessions() as session:
        with pytest.raises(UserError, match=message):
            await create_user(session, email=email, password=password, role=role)
        assert (await session.scalars(select(User))).all() == []


async def test_token_round_trip(sessions: SessionFactory) -> None:
    async with sessions() as session:
        user = await create_user(
            session, email="ann@example.com", password="password1", role="agent"
        )
        token = await issue_token(session, user, name="laptop")
    assert token.startswith("sb_")
    assert len(token) > 40

    async with sessions() as session:
        found = await token_owner(session, token)
        assert found is not None
        assert found.user.id == user.id and found.last_used_at is None
        await record_token_use(session, found.token_id, utcnow())
        assert await token_owner(session, token + "x") is None
        assert await token_owner(session, "sb_" + "A" * 43) is None
        assert await token_owner(session, "") is None

    async with sessions() as session:
        rows = (await session.scalars(select(ApiToken))).all()
    assert len(rows) == 1
    assert rows[0].name == "laptop"
    assert rows[0].token_hash != token
    assert token not in rows[0].token_hash
    assert len(rows[0].token_hash) == 64
    assert rows[0].last_used_at is not None


async def test_token_of_inactive_user_is_refused(sessions: SessionFactory) -> None:
    async with sessions() as session:
        user = await create_user(
            session, email="ann@example.com", password="password1", role="agent"
        )
        token = await issue_token(session, user)
        user.is_active = False
        await session.commit()
    async with sessions() as session:
        assert await token_owner(session, token) is None


async def test_first_admin_with_generated_password(sessions: SessionFactory) -> None:
    async with sessions() as session:
        created = await ensure_first_admin(session, None, None)
    assert created is not None
    admin, password = created
    assert admin.email == DEFAULT_ADMIN_EMAIL
    assert admin.role == Role.ADMIN
    assert password is not None
    assert verify_password(admin.password_hash, password)

    async with sessions() as session:
        assert await ensure_first_admin(session, None, None) is None
        assert await ensure_first_admin(session, "other@example.com", "password1") is None
        assert len((await session.scalars(select(User))).all()) == 1


async def test_first_admin_from_configuration(sessions: SessionFactory) -> None:
    async with sessions() as session:
        created = await ensure_first_admin(session, "Boss@Example.com", "configured-pw")
    assert created is not None
    admin, password = created
    assert password is None  # nothing to show: the operator chose it
    assert admin.email == "boss@example.com"
    assert verify_password(admin.password_hash, "configured-pw")


async def test_first_admin_is_created_once_under_a_race(sessions: SessionFactory) -> None:
    async def attempt() -> tuple[User, str | None] | None:
        async with sessions() as session:
            return await ensure_first_admin(session, None, None)

    results = await asyncio.gather(*(attempt() for _ in range(3)))
    assert sum(result is not None for result in results) == 1
