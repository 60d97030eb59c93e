"""Which channels a contact can be answered on, and which one a reply goes out on by default.

A reply goes out on its conversation's channel; the agent may instead pick another channel
on which the same contact is reachable (issue 9 item 4), and a conversation whose channel
cannot send (a web form lead's) is answered on another one by default (issue 8: the reply
composer defaults to the customer's preferred channel).

A channel is a *candidate* when the user may see it, its kind can send, and the contact
has an address there (an identity of the kind's `recipient_kind`; for Telegram, a chat
with that very bot). A candidate is listed even when the reply would be refused (paused,
opted out, blocked, erased), with the reason, so the composer can say why; `reachable`
is then false. The default is the conversation's own channel when it can reach the
contact; else the contact's preferred channel; else the channel they last wrote in on;
else the first email channel; else none.

The conversation's own channel keeps its old rules: while it is paused its replies wait
in the outbox (as they always did), so pausing refuses only a switch to a channel.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.registry import spec_for
from connectors.types import ChannelKind, IdentityKind
from timeline.models import Channel, Contact, Conversation, Direction, Identity, Message
from timeline.outbound_build import recipient_for
from timeline.reachability import unreachable_reason

# Kinds whose provider lets us write only to someone who wrote to that very channel first:
# a Telegram bot cannot start a chat (Bot API: 403 "bot can't initiate conversation with
# a user"), so a Telegram user id known from another bot is no address for this one.
CHAT_FIRST = frozenset({IdentityKind.TELEGRAM})

UNKNOWN_CHANNEL = "no such channel"
CANNOT_SEND = "this channel cannot send replies"
PAUSED = "the channel is paused; replies on it wait until it is resumed"
NO_CHANNEL = "no channel can reach this contact; add a private note instead"


@dataclass(frozen=True, slots=True)
class ReplyChannel:
    """A candidate channel: where a reply on it would go, and why it would be refused."""

    channel_id: uuid.UUID
    kind: str
    name: str
    recipient: str  # the identity value a reply on the channel goes to
    reason: str | None  # why a reply is refused now; None: it may be sent
    preferred: bool  # the contact's preferred channel

    @property
    def reachable(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class ReplyChannels:
    """The candidates (the conversation's own channel first) and the default one."""

    items: tuple[ReplyChannel, ...]
    default_channel_id: uuid.UUID | None

    @property
    def default(self) -> ReplyChannel | None:
        return next((c for c in self.items if c.channel_id == self.default_channel_id), None)


async def reply_channels(
    session: AsyncSession,
    conversation: Conversation,
    visible: frozenset[uuid.UUID] | None,
) -> ReplyChannels:
    """The channels the conversation's contact can be answered on, for a user who sees
    `visible` channels (None: all)."""
    contact = await session.get(Contact, conversation.contact_id)
    preferred = contact.preferred_channel_id if contact is not None else None
    statement = select(Channel).order_by(Channel.created_at, Channel.id)
    if visible is not None:
        statement = statement.where(Channel.id.in_(visible))
    channels = sorted(
        await session.scalars(statement),
        key=lambda channel: channel.id != conversation.channel_id,  # stable: own first
    )
    items = []
    for channel in channels:
        assessed = await _assess(session, conversation, channel, preferred)
        if isinstance(assessed, ReplyChannel):
            items.append(assessed)
    reachable = [item for item in items if item.reachable]
    default = await _default(session, conversation, reachable, preferred)
    return ReplyChannels(tuple(items), default)


async def check_reply_channel(
    session: AsyncSession,
    conversation: Conversation,
    channel_id: uuid.UUID,
    visible: frozenset[uuid.UUID] | None,
) -> ReplyChannel | str:
    """The channel as a reply to the conversation's contact would use it, or why it is no
    candidate at all. A candidate may still refuse the reply: see its `reason`."""
    if visible is not None and channel_id not in visible:
        # Worded as for a channel that does not exist: a user learns nothing of others'.
        return UNKNOWN_CHANNEL
    channel = await session.get(Channel, channel_id)
    if channel is None:
        return UNKNOWN_CHANNEL
    contact = await session.get(Contact, conversation.contact_id)
    preferred = contact.preferred_channel_id if contact is not None else None
    return await _assess(session, conversation, channel, preferred)


async def _assess(
    session: AsyncSession,
    conversation: Conversation,
    channel: Channel,
    preferred: uuid.UUID | None,
) -> ReplyChannel | str:
    try:
        spec = spec_for(channel.kind)
    except KeyError:
        return CANNOT_SEND
    kind = spec.recipient_kind
    if not spec.capabilities.can_send or kind is None:
        return CANNOT_SEND
    if kind in CHAT_FIRST and not await _wrote_on(session, conversation.contact_id, channel.id):
        return (
            f"the contact never wrote to this {channel.kind} channel, and it can only "
            "answer people who did"
        )
    recipient = await recipient_for(
        session,
        contact_id=conversation.contact_id,
        conversation_id=conversation.id,
        channel_id=channel.id,
        kind=kind,
    )
    if recipient is None:
        return f"the contact has no {_address(kind)} to send to on this channel"
    reason = await unreachable_reason(session, channel.id, conversation.contact_id)
    if reason is None and channel.paused and channel.id != conversation.channel_id:
        reason = PAUSED
    return ReplyChannel(
        channel_id=channel.id,
        kind=channel.kind,
        name=channel.name,
        recipient=recipient,
        reason=reason,
        preferred=channel.id == preferred,
    )


def _address(kind: IdentityKind) -> str:
    return {IdentityKind.EMAIL: "email address", IdentityKind.PHONE: "phone number"}.get(
        kind, f"{kind.value} identity"
    )


async def _wrote_on(session: AsyncSession, contact_id: uuid.UUID, channel_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(Message.id)
        .join(Identity, Identity.id == Message.sender_identity_id)
        .where(
            Message.channel_id == channel_id,
            Message.direction == Direction.IN.value,
            Identity.contact_id == contact_id,
        )
        .limit(1)
    )
    return found is not None


async def _default(
    session: AsyncSession,
    conversation: Conversation,
    reachable: list[ReplyChannel],
    preferred: uuid.UUID | None,
) -> uuid.UUID | None:
    ids = [item.channel_id for item in reachable]
    if not ids:
        return None
    if conversation.channel_id in ids:
        return conversation.channel_id
    if preferred in ids:
        return preferred
    last_written = await session.scalar(
        select(Message.channel_id)
        .where(
            Message.contact_id == conversation.contact_id,
            Message.direction == Direction.IN.value,
            Message.channel_id.in_(ids),
        )
        .order_by(Message.arrived_at.desc(), Message.id.desc())
        .limit(1)
    )
    if last_written is not None:
        return last_written
    return next((item.channel_id for item in reachable if item.kind == ChannelKind.EMAIL), None)
