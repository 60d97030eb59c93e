"""The body of a reply or private note (POST /api/v1/conversations/{id}/messages), and
the response models of the reply composer's channel choice (inbox/reply_channels.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, field_validator

from connectors.registry import spec_for
from inbox.mentions import MAX_MENTIONS
from inbox.reply_channels import ReplyChannel, ReplyChannels
from web.api.schemas import MAX_ATTACHMENTS, AttachmentIn, Input, no_nul

TEXT_MAX = 100_000
# The bounds sit inside the optional type: set on `str | None` itself, pydantic would
# neither apply them to the string nor refuse unpaired surrogates, as it does here.
ReplyText = Annotated[str, Field(min_length=1, max_length=TEXT_MAX), AfterValidator(no_nul)]


class MessageCreate(Input):
    """A reply to the customer, or a private note for the team: `text`, or a canned
    response rendered for this conversation (`canned_response_id`), never both."""

    text: ReplyText | None = Field(
        default=None,
        description="required unless canned_response_id is given. In a private note, "
        "`@[Display Name](user:<user id>)` mentions a user (they are notified and follow "
        "the conversation); a public reply cannot mention",
    )
    canned_response_id: uuid.UUID | None = Field(
        default=None,
        description="a canned response you may use, rendered with this conversation's "
        "placeholders and you as the agent, instead of `text`",
    )
    private: bool = Field(default=False, description="a note for agents; never sent")
    mentions: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_MENTIONS,
        description="users to mention in a private note besides those marked in the text "
        "(for clients without the markup); each must see the conversation's channel",
    )
    channel_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "the channel to reply on: the conversation's own, or another the contact can be"
            " reached on (GET /api/v1/conversations/{id}/reply-channels); default: the own"
            " channel, or when it cannot send, the contact's preferred or last used one"
        ),
    )
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    reply_to_id: uuid.UUID | None = Field(
        default=None,
        description="the customer's message this answers (a message of this conversation); "
        "channels that quote replies (Telegram) show it as an answer to that message",
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value

    def shape_errors(self) -> dict[str, str]:
        """What is wrong with the combination of fields (each alone was valid)."""
        fields: dict[str, str] = {}
        if self.text is not None and self.canned_response_id is not None:
            fields["canned_response_id"] = "send text or canned_response_id, not both"
        elif self.text is None and self.canned_response_id is None:
            fields["text"] = "required (or canned_response_id)"
        if self.mentions and not self.private:
            fields["mentions"] = "only a private note mentions users"
        return fields


class ReplyChannelOut(BaseModel):
    """A channel the contact could be answered on, and why a reply there is refused now."""

    channel_id: uuid.UUID
    kind: str
    name: str
    recipient: str = Field(description="the contact's address a reply on this channel goes to")
    reachable: bool = Field(description="false when a reply on this channel is refused now")
    reason: str | None = Field(description="why a reply on this channel is refused; null if not")
    preferred: bool = Field(description="the contact's preferred channel")
    max_text_length: int | None = Field(
        description="the most characters (code points) a reply on this channel may have; "
        "null: no limit of its own"
    )
    supports_attachments: bool
    max_attachment_bytes: int | None = Field(
        description="the most bytes of attachments a reply may carry; null: no limit of its own"
    )

    @classmethod
    def of(cls, item: ReplyChannel) -> ReplyChannelOut:
        capabilities = spec_for(item.kind).capabilities
        return cls(
            max_text_length=capabilities.max_text_length,
            supports_attachments=capabilities.supports_attachments,
            max_attachment_bytes=capabilities.max_attachment_bytes,
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
