"""Response models of the reply composer's channel choice (inbox/reply_channels.py)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from inbox.reply_channels import ReplyChannel, ReplyChannels


class ReplyChannelOut(BaseModel):
    """A channel the contact could be answered on, and why a reply there is refused now."""

    channel_id: uuid.UUID
    kind: str
    name: str
    recipient: str = Field(description="the contact's address a reply on this channel goes to")
    reachable: bool = Field(description="false when a reply on this channel is refused now")
    reason: str | None = Field(description="why a reply on this channel is refused; null if not")
    preferred: bool = Field(description="the contact's preferred channel")

    @classmethod
    def of(cls, item: ReplyChannel) -> ReplyChannelOut:
        return cls(
            channel_id=item.channel_id,
            kind=item.kind,
            name=item.name,
            recipient=item.recipient,
            reachable=item.reachable,
            reason=item.reason,
            preferred=item.preferred,
        )


class ReplyChannelsOut(BaseModel):
    """The channels a reply in a conversation may go out on, its own channel first."""

    default_channel_id: uuid.UUID | None = Field(
        description="the channel the composer offers first: the conversation's own when it "
        "can reach the contact, else the preferred one, else the one the contact last wrote "
        "in on, else the first email channel; a reply without channel_id goes there when the "
        "conversation's own channel cannot send. Null when no channel can reach the contact."
    )
    items: list[ReplyChannelOut]

    @classmethod
    def of(cls, channels: ReplyChannels) -> ReplyChannelsOut:
        return cls(
            default_channel_id=channels.default_channel_id,
            items=[ReplyChannelOut.of(item) for item in channels.items],
        )
