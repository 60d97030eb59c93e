"""Invitations: an admin invites someone by email; they choose their password through a
one-time link (issue 11).

The invited user exists from the start (so they can be given channels, teams and a
capacity before they arrive), with a password nobody knows: an argon2 hash of a random
secret, so signing in with their email takes as long, and fails as surely, as with a
wrong password. The link carries a random token; only its SHA-256 is stored (tokens have
256 bits of entropy, so a slow hash adds nothing, as for API tokens). A link works once,
for INVITATION_LIFETIME, and only while it is the user's newest: inviting again replaces
it. Functions that write leave the commit to the caller.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import ChannelMember, Invitation
from inbox.membership import UnknownIds
from inbox.models import Role, User
from inbox.users import DuplicateUserError, check_email, hash_password
from timeline.models import Channel

INVITATION_LIFETIME = timedelta(days=7)
TOKEN_PREFIX = "inv_"
MAX_TOKEN_LENGTH = 100  # ours are 47 characters; longer ones name nothing
LINK_PATH = "/invitations/"


class LinkState(enum.StrEnum):
    """What a set-password link is worth now."""

    VALID = "valid"  # open: it may set the password
    UNKNOWN = "unknown"  # never issued (or its user is gone)
    EXPIRED = "expired"  # older than INVITATION_LIFETIME
    USED = "used"  # the password was set with it
    REPLACED = "replaced"  # a newer link was issued to the same user
    INACTIVE = "inactive"  # the user was deactivated


@dataclass(frozen=True, slots=True)
class Issued:
    """A new link: its row, and the token, which is shown once and never stored."""

    invitation: Invitation
    token: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """A token's invitation and user (None when unknown), and its state at `now`."""

    state: LinkState
    invitation: Invitation | None
    user: User | None


def token_hash(token: str) -> str:
    """What a token is stored under."""
    return hashlib.sha256(token.encode()).hexdigest()


def link_path(token: str) -> str:
    """The path of the set-password page of a token."""
    return LINK_PATH + token


async def unusable_password_hash() -> str:
    """A real argon2 hash of a secret nobody keeps (CPU-heavy: runs off the loop)."""
    return await asyncio.to_thread(hash_password, secrets.token_urlsafe(32))


def issue(
    session: AsyncSession, user_id: uuid.UUID, invited_by: uuid.UUID | None, now: datetime
) -> Issued:
    """A new link for the user, added to the session; call `replace_open` first."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = Invitation(
        user_id=user_id,
        token_hash=token_hash(token),
        created_by=invited_by,
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    session.add(row)
    return Issued(row, token)


async def replace_open(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """The user's open link (if any) stops working: a new one is being issued."""
    await session.execute(
        update(Invitation)
        .where(
            Invitation.user_id == user_id,
            Invitation.used_at.is_(None),
            Invitation.replaced_at.is_(None),
        )
        .values(replaced_at=now)
    )


async def open_invitations(
    session: AsyncSession, user_ids: Collection[uuid.UUID] | None = None
) -> dict[uuid.UUID, Invitation]:
    """The open (neither used nor replaced, maybe expired) link of each invited user."""
    statement = select(Invitation).where(
        Invitation.used_at.is_(None), Invitation.replaced_at.is_(None)
    )
    if user_ids is not None:
        statement = statement.where(Invitation.user_id.in_(list(user_ids)))
    rows = await session.scalars(statement.order_by(Invitation.created_at))
    return {row.user_id: row for row in rows}  # the newest wins, should two ever race


async def is_invited(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the user has not set a password through their invitation yet."""
    return bool(await open_invitations(session, [user_id]))


async def check_channels(session: AsyncSession, channel_ids: Collection[uuid.UUID]) -> None:
    """UnknownIds naming `channel_ids` when any of them is not a channel."""
    wanted = set(channel_ids)
    if not wanted:
        return
    found = set(await session.scalars(select(Channel.id).where(Channel.id.in_(wanted))))
    if missing := wanted - found:
        raise UnknownIds("channel_ids", missing)


async def set_direct_channels(
    session: AsyncSession, user_id: uuid.UUID, channel_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Replace the channels the user is a member of directly (not through teams); the
    caller has checked the ids and commits. Returns every channel whose members changed."""
    before = set(
        await session.scalars(
            select(ChannelMember.channel_id).where(ChannelMember.user_id == user_id)
        )
    )
    after = set(channel_ids)
    await session.execute(
        delete(ChannelMember).where(
            ChannelMember.user_id == user_id, ChannelMember.channel_id.in_(before - after)
        )
    )
    session.add_all(ChannelMember(channel_id=c, user_id=user_id) for c in after - before)
    return before ^ after


@dataclass(frozen=True, slots=True)
class Invited:
    """The outcome of an invitation: the user (new or not), their new link, and the
    channels whose members changed."""

    user: User
    created: bool
    issued: Issued
    changed_channels: set[uuid.UUID]


async def invite(
    session: AsyncSession,
    *,
    email: str,
    name: str | None,
    role: Role,
    channel_ids: Sequence[uuid.UUID],
    invited_by: uuid.UUID | None,
    now: datetime,
) -> Invited:
    """Invite someone (committed): a new user without a usable password, or, for someone
    invited already who has not set a password yet, their details again and a new link
    replacing the previous one. UserError for a bad email, DuplicateUserError when a
    user with that email exists otherwise, UnknownIds for channels that do not exist."""
    address = check_email(email)
    await check_channels(session, channel_ids)
    user = await session.scalar(select(User).where(User.email == address).with_for_update())
    created = user is None
    if user is None:
        user = User(
            email=address,
            name=name,
            role=role.value,
            password_hash=await unusable_password_hash(),
            is_active=True,
            created_at=now,
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError as err:
            # Someone else created the user a moment ago: the unique email decides.
            await session.rollback()
            raise DuplicateUserError(f"a user with email {address} already exists") from err
    elif await is_invited(session, user.id):
        if name is not None:
            user.name = name
        user.role = role.value
        user.is_active = True
        await replace_open(session, user.id, now)
    else:
        raise DuplicateUserError(f"a user with email {address} already exists")
    changed = await set_direct_channels(session, user.id, channel_ids)
    issued = issue(session, user.id, invited_by, now)
    await session.commit()
    return Invited(user, created, issued, changed)


async def look_up(session: AsyncSession, token: str, now: datetime) -> Lookup:
    """What a link's token is worth at `now` (reads only)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return Lookup(LinkState.UNKNOWN, None, None)
    row = (
        await session.execute(
            select(Invitation, User)
            .join(User, User.id == Invitation.user_id)
            .where(Invitation.token_hash == token_hash(token))
        )
    ).first()
    if row is None:
        return Lookup(LinkState.UNKNOWN, None, None)
    invitation, user = row
    if invitation.used_at is not None:
        state = LinkState.USED
    elif invitation.replaced_at is not None:
        state = LinkState.REPLACED
    elif invitation.expires_at <= now:
        state = LinkState.EXPIRED
    elif not user.is_active:
        state = LinkState.INACTIVE
    else:
        state = LinkState.VALID
    return Lookup(state, invitation, user)


async def redeem(session: AsyncSession, token: str, password_hash: str, now: datetime) -> Lookup:
    """Set the password with a link and use it up (committed). The state is checked again
    under the write, so of two requests racing with one link exactly one succeeds; the
    answer is the link's state as this request found it (VALID: the password is set)."""
    found = await look_up(session, token, now)
    if found.state is not LinkState.VALID or found.invitation is None or found.user is None:
        return found
    result = await session.execute(
        update(Invitation)
        .where(
            Invitation.id == found.invitation.id,
            Invitation.used_at.is_(None),
            Invitation.replaced_at.is_(None),
            Invitation.expires_at > now,
        )
        .values(used_at=now)
    )
    if getattr(result, "rowcount", 0) != 1:
        await session.rollback()  # (it expires the rows read: they are not returned)
        return Lookup(LinkState.USED, None, None)
    await session.execute(
        update(User)
        .where(User.id == found.user.id, User.is_active.is_(True))
        .values(password_hash=password_hash)
    )
    await session.commit()
    return found
