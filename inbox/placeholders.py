"""Placeholders in canned responses and automatic replies: `{{contact.first_name}}`.

A placeholder is `{{ name }}` or `{{ name | fallback }}`, where name is one of
`PLACEHOLDERS`; the fallback is used when the value is empty ("Hi {{contact.first_name |
there}}"). Templates are checked when they are saved (`unknown_placeholders`), so a typo
is an error for the author, not a literal "{{contact.frist_name}}" sent to a customer.
Rendering is plain text: the channel's outbound path escapes for HTML where it builds
HTML, and placeholder values are never parsed again as a template (no injection through
a contact's name).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import User
from timeline.models import Channel, Contact, Conversation, Identity

PLACEHOLDERS: dict[str, str] = {
    "contact.name": "the contact's full name",
    "contact.first_name": "the first word of the contact's name",
    "contact.last_name": "the rest of the contact's name",
    "contact.email": "the contact's email address",
    "contact.phone": "the contact's phone number",
    "agent.name": "the name of the agent who replies",
    "agent.first_name": "the first word of the agent's name",
    "agent.email": "the agent's email address",
    "conversation.id": "the conversation's id",
    "channel.name": "the name of the conversation's channel",
}

_PATTERN = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-z_]+)*)\s*(?:\|\s*([^{}]*?)\s*)?\}\}")
FALLBACK_MAX = 200


def unknown_placeholders(template: str) -> list[str]:
    """Names in `template` that are not placeholders, in order of appearance, once each."""
    seen: dict[str, None] = {}
    for match in _PATTERN.finditer(template):
        if match.group(1) not in PLACEHOLDERS:
            seen.setdefault(match.group(1), None)
    return list(seen)


def render(template: str, values: Mapping[str, str | None]) -> str:
    """`template` with each placeholder replaced by its value, else its fallback, else
    nothing (an unknown one is left as written: templates are checked when saved)."""

    def substitute(match: re.Match[str]) -> str:
        name, fallback = match.group(1), match.group(2)
        if name not in PLACEHOLDERS:
            return match.group(0)
        value = values.get(name)
        if value:
            return value
        return (fallback or "")[:FALLBACK_MAX]

    return _PATTERN.sub(substitute, template)


def _split_name(name: str | None) -> tuple[str | None, str | None]:
    if not name or not name.strip():
        return None, None
    first, _, rest = name.strip().partition(" ")
    return first, rest.strip() or None


async def placeholder_values(
    session: AsyncSession, conversation_id: uuid.UUID, agent: User | None
) -> dict[str, str | None]:
    """The placeholder values of a conversation and the agent replying (None: automatic)."""
    row = (
        await session.execute(
            select(Conversation.id, Contact.id, Contact.name, Channel.name)
            .join(Contact, Contact.id == Conversation.contact_id)
            .join(Channel, Channel.id == Conversation.channel_id)
            .where(Conversation.id == conversation_id)
        )
    ).one_or_none()
    if row is None:
        raise LookupError(f"no conversation {conversation_id}")
    _, contact_id, contact_name, channel_name = row
    identities: dict[str, str] = {}
    for kind, value in await session.execute(
        select(Identity.kind, Identity.value)
        .where(Identity.contact_id == contact_id, Identity.kind.in_(("email", "phone")))
        .order_by(Identity.created_at, Identity.id)
    ):
        identities.setdefault(kind, value)
    first, last = _split_name(contact_name)
    agent_name = agent.name if agent is not None else None
    agent_first, _ = _split_name(agent_name)
    return {
        "contact.name": contact_name,
        "contact.first_name": first,
        "contact.last_name": last,
        "contact.email": identities.get("email"),
        "contact.phone": identities.get("phone"),
        "agent.name": agent_name,
        "agent.first_name": agent_first,
        "agent.email": agent.email if agent is not None else None,
        "conversation.id": str(conversation_id),
        "channel.name": channel_name,
    }
