"""@mentions in private notes.

The agent UI inserts a mention as `@[Display Name](user:<uuid>)`: the text stays
readable ("@[Bob Smith](user:…)" reads as "@Bob Smith"), and the id, not the name, says
who is meant, so two agents with one name, a renamed agent or a name with brackets are
never ambiguous. The display name is whatever the author's UI wrote (no brackets or line
breaks); only the id counts. Anything that looks like a mention token but whose id is
not a UUID in its canonical 36-character form is refused (`MalformedMention`) rather
than read as plain text: a note that silently notifies nobody is worse than a clear
error.

Only private notes mention. A public reply with a token is refused by the API: the
customer would receive the markup and an internal user id.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterable

from sqlalchemy import CompoundSelect, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import ChannelMember, ChannelTeam, TeamMember
from inbox.models import Role, User

# At most this many distinct users per note: a note is not a broadcast.
MAX_MENTIONS = 50

# The token, loosely: the id part is checked separately so that a bad id is reported,
# not ignored. Names exclude brackets and line breaks, ids exclude parentheses and
# spaces: each scan stops at the next bracket, so matching stays linear on any input.
_TOKEN = re.compile(r"@\[([^\[\]\r\n]*)\]\(user:([^()\s]*)\)")
_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


class MalformedMention(ValueError):
    """Text holds mention tokens whose id is not a user id; `tokens` lists them."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        shown = ", ".join(tokens[:5]) + (" …" if len(tokens) > 5 else "")
        super().__init__(f"not a mention (the id after 'user:' must be a UUID): {shown}")


def mention_token(name: str, user_id: uuid.UUID) -> str:
    """The token the UI inserts for a mention of `user_id` shown as `name`."""
    shown = " ".join(re.sub(r"[\[\]\r\n]", " ", name).split())
    return f"@[{shown}](user:{user_id})"


def parse_mentions(text: str) -> list[uuid.UUID]:
    """The users mentioned in `text`, in order of first mention, once each.

    Raises MalformedMention naming every token whose id is not a UUID.
    """
    found: dict[uuid.UUID, None] = {}
    bad: list[str] = []
    for match in _TOKEN.finditer(text):
        raw = match.group(2)
        if _CANONICAL_UUID.fullmatch(raw):
            found.setdefault(uuid.UUID(raw), None)
        else:
            bad.append(match.group(0)[:120])
    if bad:
        raise MalformedMention(bad)
    return list(found)


def has_mention_markup(text: str) -> bool:
    """Whether `text` holds anything shaped like a mention token (valid or not)."""
    return _TOKEN.search(text) is not None


def merge(*groups: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """The ids of all groups in order, once each."""
    return list(dict.fromkeys(user_id for group in groups for user_id in group))


async def mention_refusals(
    session: AsyncSession, user_ids: Collection[uuid.UUID], channel_id: uuid.UUID
) -> dict[uuid.UUID, str]:
    """Why each refused user cannot be mentioned in a note on `channel_id`: unknown or
    deactivated, or an agent who does not work the channel (a notification would lead
    them to a conversation they may not open). Empty when all can be."""
    if not user_ids:
        return {}
    users = {
        user_id: (role, active)
        for user_id, role, active in await session.execute(
            select(User.id, User.role, User.is_active).where(User.id.in_(user_ids))
        )
    }
    refusals: dict[uuid.UUID, str] = {}
    agents: list[uuid.UUID] = []
    for user_id in user_ids:
        found = users.get(user_id)
        if found is None:
            refusals[user_id] = "no such user"
        elif not found[1]:
            refusals[user_id] = "this user is deactivated"
        elif found[0] not in (Role.ADMIN.value, Role.MANAGER.value):
            agents.append(user_id)
    if agents:
        members = set(await session.scalars(_members_among(channel_id, agents)))
        for user_id in agents:
            if user_id not in members:
                refusals[user_id] = "cannot see this conversation: not a member of its channel"
    return refusals


def _members_among(
    channel_id: uuid.UUID, user_ids: Collection[uuid.UUID]
) -> CompoundSelect[uuid.UUID]:
    direct = select(ChannelMember.user_id).where(
        ChannelMember.channel_id == channel_id, ChannelMember.user_id.in_(user_ids)
    )
    through_teams = (
        select(TeamMember.user_id)
        .join(ChannelTeam, ChannelTeam.team_id == TeamMember.team_id)
        .where(ChannelTeam.channel_id == channel_id, TeamMember.user_id.in_(user_ids))
    )
    return union(direct, through_teams)
