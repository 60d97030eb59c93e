"""Users and API tokens: password hashing, creation, bearer tokens, the first admin.

Passwords are hashed with argon2id (argon2-cffi). API tokens are random, so only their
SHA-256 is stored: a slow hash adds nothing when the secret has 256 bits of entropy.
Functions that write commit the session they are given; duplicates are settled by the
database's unique constraints, so two processes doing the same thing at once cannot
both succeed.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import ApiToken, Role, User
from timeline.models import utcnow

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this only bounds the work per request
TOKEN_PREFIX = "sb_"
DEFAULT_ADMIN_EMAIL = "admin@localhost"
# Recording every use of a token would turn each API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Login names, not mailboxes we send to: email_validator rejects special-use domains such
# as "localhost", but "admin@localhost" is the documented default first admin.
_LOCAL_DOMAINS = frozenset({"localhost"})

_hasher = PasswordHasher()


class UserError(ValueError):
    """A user cannot be created or found as asked; the message says why."""


class DuplicateUserError(UserError):
    """A user with that email already exists."""


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (CPU-heavy: call it off the event loop)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches `password_hash`; False for a wrong password or bad hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        # VerificationError covers VerifyMismatchError (wrong password) and corrupt hashes.
        return False


def check_email(email: str) -> str:
    """The normalized (lower-cased) login email, or UserError when it is not an address."""
    value = email.strip()
    local, at, domain = value.rpartition("@")
    try:
        if at and domain.lower() in _LOCAL_DOMAINS:
            # Check the local part alone, against a domain the validator accepts.
            probe = validate_email(f"{local}@example.com", check_deliverability=False)
            return f"{probe.local_part}@{domain}".lower()
        # globally_deliverable=False: intranet domains ("ann@corp") are fine for logins.
        result = validate_email(value, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as err:
        raise UserError(f"invalid email {email!r}: {err}") from err
    return result.normalized.lower()


def check_password(password: str) -> str:
    """The password itself, or UserError when it is too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


def check_role(role: Role | str) -> Role:
    """The role, or UserError naming the known roles."""
    try:
        return Role(role)
    except ValueError as err:
        known = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role {role!r}; use one of: {known}") from err


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    role: Role | str,
    name: str | None = None,
) -> User:
    """Create and commit a user; UserError on invalid input or when the email is taken."""
    address = check_email(email)
    check_password(password)
    checked_role = check_role(role)
    password_hash = await asyncio.to_thread(hash_password, password)
    user = User(
        email=address,
        name=(name.strip() or None) if name else None,
        role=checked_role.value,
        password_hash=password_hash,
        is_active=True,
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as err:
        # The unique index on users.email settles races between processes, not a pre-read.
        await session.rollback()
        raise DuplicateUserError(f"a user with email {address} already exists") from err
    return user


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The user with that login email (any casing), or None."""
    address = check_email(email)
    return await session.scalar(select(User).where(User.email == address))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(session: AsyncSession, user: User, name: str | None = None) -> str:
    """A new API token for `user`, committed; the token itself is returned and never stored."""
    _, token = add_token(session, user.id, name)
    await session.commit()
    return token


def add_token(
    session: AsyncSession, user_id: uuid.UUID, name: str | None = None
) -> tuple[ApiToken, str]:
    """A new API token row (the caller commits) and the token, which is never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user_id, token_hash=_token_hash(token), name=name, created_at=utcnow())
    session.add(row)
    return row, token


@dataclass(frozen=True, slots=True)
class TokenOwner:
    """The active user a bearer token belongs to, and when the token was last recorded used."""

    user: User
    token_id: uuid.UUID
    last_used_at: datetime | None

    def use_is_stale(self, now: datetime) -> bool:
        """True when this use should be recorded (at most once per LAST_USED_RESOLUTION)."""
        return self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION


async def token_owner(session: AsyncSession, token: str) -> TokenOwner | None:
    """Who a bearer token belongs to (None: unknown token, inactive user); reads only."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = (
        await session.execute(
            select(User, ApiToken.id, ApiToken.last_used_at)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == _token_hash(token), User.is_active.is_(True))
        )
    ).first()
    if row is None:
        return None
    user, token_id, last_used_at = row
    return TokenOwner(user, token_id, last_used_at)


async def record_token_use(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> None:
    """Record that a token was used at `now`, and commit."""
    await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    await session.commit()


async def ensure_first_admin(
    session: AsyncSession, email: str | None, password: str | None
) -> tuple[User, str | None] | None:
    """Create the first admin when no user exists yet; None when there already are users.

    Without an email the admin is `admin@localhost`; without a password one is generated
    and returned (the second item) so the caller can show it once. It is never stored in
    clear. When two processes start at once, the unique email lets only one succeed.
    """
    if await session.scalar(select(User.id).limit(1)) is not None:
        return None
    generated = None if password else secrets.token_urlsafe(12)
    try:
        user = await create_user(
            session,
            email=email or DEFAULT_ADMIN_EMAIL,
            password=password or generated or "",
            role=Role.ADMIN,
        )
    except DuplicateUserError:
        return None  # another process created it a moment ago
    return user, generated


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, for checks that must take as long as a real one."""
    # Made once, with the hasher's own parameters, so checking it costs what checking a
    # real user's password costs.
    return hash_password(secrets.token_urlsafe(16))


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The active user with this email and password, else None.

    An unknown or malformed email is checked against a dummy hash, and an inactive
    user's password is checked too, so the time taken does not tell which emails exist.
    """
    try:
        user = await user_by_email(session, email)
    except UserError:
        user = None
    stored = user.password_hash if user is not None else await asyncio.to_thread(dummy_hash)
    matches = await asyncio.to_thread(verify_password, stored, password)
    return user if matches and user is not None and user.is_active else None
