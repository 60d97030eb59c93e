"""Building the `Outbound` a connector sends from a queued reply, at send time.

The message is addressed when it is sent, not when it was queued, so a reply follows
the contact through a merge: to the address the customer last wrote from in this
conversation, else the one they last wrote from on the reply's channel (a reply may go
out on another channel than the conversation's), else their first one on the channel's
identity kind (connectors/registry.py names it). Email threading hints (In-Reply-To, a
short References list) come from the conversation's stored Message-IDs: only email
messages carry one, so a reply by email in a web form's or an SMS conversation cites
only the emails of the thread (our own earlier ones included), under the conversation's
subject ("Re: Form: Pricing enquiry").

The channel's limits are applied with the same check the REST API applies before it
accepts a reply (`reply_refusals` in timeline/reply_limits.py), so a limit is worded
alike wherever it refuses a reply: once on the stored sizes before the files are read,
and once on the built message (`check_capabilities`). A message the channel cannot
carry, a contact with no address on the channel, or a missing attachment file is a
permanent failure (`Failed`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import Capabilities, Grouping
from connectors.registry import spec_for
from connectors.types import ChannelId, IdentityKind, Outbound, OutboundAttachment, ThreadHints
from timeline.files import blob_path
from timeline.models import Attachment, Channel, Conversation, Direction, Identity, Message
from timeline.reachability import unreachable_reason
from timeline.reply_limits import Sized, reply_refusals
from timeline.send_outcome import Failed

logger = logging.getLogger(__name__)

_MAX_REFERENCES = 20  # email References kept short: enough for every client to thread


async def build_outbound(
    session: AsyncSession, message_id: uuid.UUID, capabilities: Capabilities, data_dir: Path
) -> Outbound | Failed:
    """The message as the connector sends it, addressed at send time (after any merge)."""
    row = (
        await session.execute(
            select(Message, Channel.kind, Conversation.subject)
            .join(Channel, Channel.id == Message.channel_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id == message_id)
        )
    ).first()
    if row is None:
        return Failed("the message no longer exists", permanent=True)
    message, channel_kind, conversation_subject = row
    try:
        identity_kind = spec_for(channel_kind).recipient_kind
    except KeyError:
        identity_kind = None
    if identity_kind is None:
        return Failed(f"replies cannot be sent on a {channel_kind} channel", permanent=True)
    unreachable = await unreachable_reason(session, message.channel_id, message.contact_id)
    if unreachable is not None:
        return Failed(unreachable, permanent=True)
    recipient = await recipient_for(
        session,
        contact_id=message.contact_id,
        conversation_id=message.conversation_id,
        channel_id=message.channel_id,
        kind=identity_kind,
    )
    if recipient is None:
        return Failed(
            f"the contact has no {identity_kind.value} to send to on this channel",
            permanent=True,
        )
    files = list(
        await session.scalars(
            select(Attachment)
            .where(Attachment.message_id == message.id)
            .order_by(Attachment.created_at, Attachment.id)
        )
    )
    # Checked before the files are read: they may be large.
    refusal = _refusal(capabilities, message.text, files)
    if refusal is not None:
        return Failed(refusal, permanent=True)
    attachments = await asyncio.to_thread(_load_files, data_dir, files) if files else ()
    if isinstance(attachments, Failed):
        return attachments
    references: list[str | None] = []
    in_reply_to = customer_subject = None
    # Only a channel whose conversations are threads (email) or that carries a subject
    # uses these; the look-ups are skipped for the others (SMS, Telegram), whose replies
    # are latency-bound.
    if capabilities.grouping is Grouping.THREAD or capabilities.supports_subject:
        references = list(
            await session.scalars(
                select(Message.rfc_message_id)
                .where(
                    Message.conversation_id == message.conversation_id,
                    Message.rfc_message_id.is_not(None),
                    Message.id != message.id,
                )
                .order_by(Message.sent_at.desc(), Message.id.desc())
                .limit(_MAX_REFERENCES)
            )
        )
        references.reverse()
        # The customer's latest message: the reply answers it (In-Reply-To) under its
        # subject.
        latest = (
            await session.execute(
                select(Message.rfc_message_id, Message.subject)
                .where(
                    Message.conversation_id == message.conversation_id,
                    Message.direction == Direction.IN.value,
                )
                .order_by(Message.sent_at.desc(), Message.id.desc())
                .limit(1)
            )
        ).first()
        if latest is not None:
            in_reply_to, customer_subject = latest.rfc_message_id, latest.subject
    subject = message.subject or customer_subject or conversation_subject
    reply_to = None
    if message.reply_to_id is not None:
        # A provider's message id means something on its own channel only (Telegram's
        # are numbered per chat): a reply switched to another channel quotes nothing.
        reply_to = await session.scalar(
            select(Message.external_id).where(
                Message.id == message.reply_to_id,
                Message.direction == Direction.IN.value,
                Message.channel_id == message.channel_id,
            )
        )
    return Outbound(
        channel_id=ChannelId(str(message.channel_id)),
        message_id=str(message.id),
        recipient=recipient,
        text=message.text,
        html=message.html if capabilities.supports_html else None,
        subject=subject if capabilities.supports_subject else None,
        thread=ThreadHints(
            in_reply_to=in_reply_to,
            references=tuple(r for r in references if r is not None),
            subject=subject,
        ),
        attachments=attachments,
        auto_reply=message.auto_submitted,
        reply_to=reply_to,
    )


def check_capabilities(outbound: Outbound, capabilities: Capabilities) -> str | None:
    """Why the channel cannot carry this message, or None when it can.

    The same check the REST API applies before it accepts a reply (timeline/reply_limits.py),
    so a limit is worded alike wherever it refuses a reply.
    """
    sizes = [_Size(len(attachment.data)) for attachment in outbound.attachments]
    return _refusal(capabilities, outbound.text, sizes)


def _refusal(capabilities: Capabilities, text: str, files: Sequence[Sized]) -> str | None:
    """The channel's refusals (timeline/reply_limits.py) as one reason, or None."""
    refusals = reply_refusals(capabilities, text, files)
    return "; ".join(refusals.values()) if refusals else None


@dataclass(frozen=True, slots=True)
class _Size:
    """A file's size, as `reply_refusals` takes it."""

    size: int


def _load_files(
    data_dir: Path, files: Sequence[Attachment]
) -> tuple[OutboundAttachment, ...] | Failed:
    """The attachments' bytes from the blob store (runs in a thread: files may be large)."""
    loaded = []
    for file in files:
        name = file.filename or "attachment"
        try:
            data = blob_path(data_dir, file.sha256).read_bytes()
        except (OSError, ValueError) as err:
            logger.warning(
                "attachment %s (sha256 %s) of message %s unreadable: %s",
                file.id,
                file.sha256,
                file.message_id,
                err,
            )
            return Failed(f"the attachment {name!r} is missing from the file store", permanent=True)
        loaded.append(OutboundAttachment(filename=name, content_type=file.content_type, data=data))
    return tuple(loaded)


async def recipient_for(
    session: AsyncSession,
    *,
    contact_id: uuid.UUID,
    conversation_id: uuid.UUID,
    channel_id: uuid.UUID,
    kind: IdentityKind,
) -> str | None:
    """The contact's address of `kind` a reply on the channel goes to, or None.

    The one the customer last wrote from in this conversation; else the one they last
    wrote from on the channel (a reply switched to another channel goes where they are
    known there: the chat a Telegram bot has with them); else their first one.
    """
    last_here = await session.scalar(
        _last_written_from(contact_id, kind).where(Message.conversation_id == conversation_id)
    )
    if last_here is not None:
        return last_here
    last_on_channel = await session.scalar(
        _last_written_from(contact_id, kind).where(Message.channel_id == channel_id)
    )
    if last_on_channel is not None:
        return last_on_channel
    return await session.scalar(
        select(Identity.value)
        .where(Identity.contact_id == contact_id, Identity.kind == kind.value)
        .order_by(Identity.created_at, Identity.id)
        .limit(1)
    )


def _last_written_from(contact_id: uuid.UUID, kind: IdentityKind) -> Select[str]:
    """The contact's identity of `kind` their latest inbound message came from (narrowed
    by the caller)."""
    return (
        select(Identity.value)
        .join(Message, Message.sender_identity_id == Identity.id)
        .where(
            Message.direction == Direction.IN.value,
            Identity.contact_id == contact_id,
            Identity.kind == kind.value,
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
    )
