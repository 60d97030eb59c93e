"""The durable outbox: agents' replies are queued in the database and sent by workers.

Queueing (`queue_outbound`) stores the outbound `Message` (delivery state "queued") and
its `OutboundJob` in the caller's transaction, so a reply that was committed survives a
crash and a reply that was rolled back is never sent. A `Dispatcher` (timeline/dispatcher.py,
in `switchboard serve` or `switchboard worker`) claims due jobs, hands each to the channel's
connector, and records the outcome; events go on the bus only after the commit that records
them.

Forward-only delivery state. A message's state is replaced only by a state of strictly
higher `DELIVERY_RANK`, in one ``UPDATE ... WHERE delivery_rank < :rank``, so a late
"sent" report never overwrites "delivered". Two deliberate exceptions, both owned by
whoever holds the job: (1) the attempt states queued (0), failed_temporary (1) and
sending (2) belong to the job's current attempt: claiming a retry moves failed_temporary
to sending, and a failed attempt moves sending back to failed_temporary (a retry is a new
attempt); these updates apply only while the rank is at most that of sending, so a
provider report that already said more wins. (2) `retry_message`, an agent's explicit
retry, resets a failed_permanent message to queued (rank 0) and its job to pending.

Claiming, send outcomes, retries and crash recovery: see timeline/dispatcher.py.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.types import (
    DELIVERY_RANK,
    DeliveryState,
    DeliveryUpdate,
    IdentityKind,
)
from timeline.events import Event, EventBus, publish_committed
from timeline.ids import new_id
from timeline.models import (
    Conversation,
    Direction,
    JobState,
    Message,
    MessageKind,
    OutboundJob,
    TimelineEvent,
    utcnow,
)

logger = logging.getLogger(__name__)

OUTCOME_UNKNOWN = (
    "delivery outcome unknown: the worker stopped while sending; "
    "not resent automatically to avoid a duplicate"
)

# Which of the contact's identities a reply on a channel kind goes to. A Telegram
# private chat's id is the user's id, so the identity value is the chat id.
RECIPIENT_KIND: dict[str, IdentityKind] = {
    "email": IdentityKind.EMAIL,
    "sms": IdentityKind.PHONE,
    "telegram": IdentityKind.TELEGRAM,
}


class UnknownConversation(LookupError):
    """The conversation to reply in does not exist."""


@dataclass(frozen=True, slots=True)
class OutboundFile:
    """A file to send with a reply, already in the blob store (timeline/files.py)."""

    filename: str
    content_type: str
    sha256: str
    size: int


# --- queueing (inside the caller's transaction) -------------------------------------------


async def queue_outbound(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID,
    text: str,
    author_id: uuid.UUID | None = None,
    html: str | None = None,
    subject: str | None = None,
    private: bool = False,
    now: datetime | None = None,
) -> Message:
    """Store a reply (with its delivery job) or a private note; the caller commits.

    Also records the timeline event and the conversation's activity and response times.
    Publish `message_created_event(message)` after the commit (or use `do_queue_outbound`).
    """
    if not text.strip():
        raise ValueError("a message needs text")
    now = now or utcnow()
    # Locks the row on PostgreSQL, so the counters below are not lost to a concurrent
    # inbound message; refreshes a copy the caller may already hold in this session.
    conversation = await session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if conversation is None:
        raise UnknownConversation(f"conversation {conversation_id} not found")
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        contact_id=conversation.contact_id,
        direction=Direction.OUT.value,
        kind=(MessageKind.NOTE if private else MessageKind.MESSAGE).value,
        private=private,
        author_id=author_id,
        subject=subject,
        text=text,
        html=html,
        sent_at=now,
        created_at=now,
        delivery_state=None if private else DeliveryState.QUEUED.value,
        delivery_rank=DELIVERY_RANK[DeliveryState.QUEUED],
        delivery_updated_at=None if private else now,
    )
    session.add(message)
    if not private:
        session.add(
            OutboundJob(
                message_id=message.id,
                channel_id=conversation.channel_id,
                state=JobState.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    session.add(
        TimelineEvent(
            contact_id=conversation.contact_id,
            conversation_id=conversation.id,
            message_id=message.id,
            kind="note.added" if private else "message.sent",
            data={"channel_id": str(conversation.channel_id), "direction": Direction.OUT.value},
            occurred_at=now,
        )
    )
    conversation.last_activity_at = now
    conversation.message_count += 1
    # A private note is not an answer the customer sees: it neither stops their wait nor
    # counts as a response.
    if not private:
        conversation.last_outbound_at = now
        conversation.waiting_since = None
        if conversation.first_response_at is None:
            conversation.first_response_at = now
    await session.flush()
    return message


def message_created_event(message: Message) -> Event:
    """The `message.created` event for a queued reply or note (publish after commit)."""
    return Event(
        "message.created",
        {
            "message_id": str(message.id),
            "conversation_id": str(message.conversation_id),
            "contact_id": str(message.contact_id),
            "channel_id": str(message.channel_id),
            "direction": message.direction,
            "kind": message.kind,
            "private": message.private,
        },
    )


async def do_queue_outbound(
    sessions: async_sessionmaker[AsyncSession],
    bus: EventBus,
    *,
    conversation_id: uuid.UUID,
    text: str,
    author_id: uuid.UUID | None = None,
    html: str | None = None,
    subject: str | None = None,
    private: bool = False,
    now: datetime | None = None,
) -> Message:
    """`queue_outbound` in its own transaction; publishes `message.created` after commit."""
    async with sessions() as session, session.begin():
        message = await queue_outbound(
            session,
            conversation_id=conversation_id,
            text=text,
            author_id=author_id,
            html=html,
            subject=subject,
            private=private,
            now=now,
        )
    await publish_committed(bus, [message_created_event(message)])
    return message


async def retry_message(
    session: AsyncSession, message_id: uuid.UUID, *, now: datetime | None = None
) -> bool:
    """An agent's explicit retry of a failed_permanent message; the caller commits.

    Resets the message to queued and its job to pending with a fresh attempt count (or
    creates a job when the provider failed it after the job was done). Returns False, and
    changes nothing, unless the message is an outbound message in failed_permanent.
    """
    now = now or utcnow()
    message = await session.scalar(
        select(Message)
        .where(Message.id == message_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if message is None or message.delivery_state != DeliveryState.FAILED_PERMANENT.value:
        return False
    job = await session.scalar(
        select(OutboundJob)
        .where(OutboundJob.message_id == message_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if job is None:
        job = OutboundJob(message_id=message.id, channel_id=message.channel_id, created_at=now)
        session.add(job)
    elif job.state in (JobState.PENDING.value, JobState.SENDING.value):
        # Already on its way again (a provider failed a send that a retry had queued).
        return False
    job.state = JobState.PENDING.value
    job.attempts = 0
    job.next_attempt_at = now
    job.lease_until = None
    job.worker = None
    job.last_error = None
    job.updated_at = now
    # The one backward move outside a job's own attempt (see the module docstring).
    message.delivery_state = DeliveryState.QUEUED.value
    message.delivery_rank = DELIVERY_RANK[DeliveryState.QUEUED]
    message.delivery_error = None
    message.delivery_updated_at = now
    await session.flush()
    return True


async def do_retry_message(
    sessions: async_sessionmaker[AsyncSession], bus: EventBus, message_id: uuid.UUID
) -> bool:
    """`retry_message` in its own transaction; publishes `message.delivery` after commit."""
    async with sessions() as session, session.begin():
        changed = await retry_message(session, message_id)
        conversation_id = await session.scalar(
            select(Message.conversation_id).where(Message.id == message_id)
        )
    if changed and conversation_id is not None:
        await publish_committed(
            bus, [delivery_event(message_id, conversation_id, DeliveryState.QUEUED, None)]
        )
    return changed


# --- provider delivery reports --------------------------------------------------------------


async def apply_delivery_update(
    sessions: async_sessionmaker[AsyncSession],
    update: DeliveryUpdate,
    bus: EventBus | None = None,
) -> bool:
    """Apply a provider's delivery report, forward-only; True when a message changed.

    The message is found by (channel, provider message id). Publishes `message.delivery`
    after commit when something changed.
    """
    try:
        channel_id = uuid.UUID(update.channel_id)
    except ValueError:
        logger.warning("delivery report for an unknown channel id %r ignored", update.channel_id)
        return False
    state = DeliveryState(update.state)
    rank = DELIVERY_RANK[state]
    failed = state in (DeliveryState.FAILED_PERMANENT, DeliveryState.FAILED_TEMPORARY)
    error = (update.error or "the provider reported a failure") if failed else None
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                sql_update(Message)
                .where(
                    Message.channel_id == channel_id,
                    Message.provider_message_id == update.provider_message_id,
                    Message.delivery_rank < rank,
                )
                .values(
                    delivery_state=state.value,
                    delivery_rank=rank,
                    delivery_error=error,
                    delivery_updated_at=update.at or utcnow(),
                )
                .returning(Message.id, Message.conversation_id)
                .execution_options(synchronize_session=False)
            )
        ).all()
    if not rows:
        logger.debug(
            "delivery report %s for %s on channel %s changed nothing",
            state.value,
            update.provider_message_id,
            channel_id,
        )
        return False
    if bus is not None:
        await publish_committed(
            bus, [delivery_event(row.id, row.conversation_id, state, error) for row in rows]
        )
    return True


def delivery_event(
    message_id: uuid.UUID, conversation_id: uuid.UUID, state: DeliveryState, error: str | None
) -> Event:
    return Event(
        "message.delivery",
        {
            "message_id": str(message_id),
            "conversation_id": str(conversation_id),
            "state": state.value,
            "error": error,
        },
    )
