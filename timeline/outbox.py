"""The durable outbox: agents' replies are queued in the database and sent by workers.

Queueing (`queue_outbound`) stores the outbound `Message` (delivery state "queued"), its
attachments and its `OutboundJob` in the caller's transaction, so a reply that was
committed survives a crash and a reply that was rolled back is never sent. A `Dispatcher`
(timeline/dispatcher.py, in `switchboard serve` or `switchboard worker`) claims due jobs,
hands each to the channel's connector, and records the outcome; events go on the bus only
after the commit that records them.

Forward-only delivery state. A message's state is replaced only by a state of strictly
higher `DELIVERY_RANK`, in one ``UPDATE ... WHERE delivery_rank < :rank``, so a late
"sent" report never overwrites "delivered". Three deliberate exceptions, all owned by
whoever holds the job: (1) the attempt states queued (0), failed_temporary (1) and
sending (2) belong to the job's current attempt: claiming a retry moves failed_temporary
to sending, and a failed or parked attempt moves sending back to failed_temporary (a
retry is a new attempt); these updates apply only while the rank is at most that of
sending, so a provider report that already said more wins. (2) `retry_message`, an
agent's explicit retry, resets a failed_permanent message to queued (rank 0) and its job
to pending. (3) The "outcome unknown" verdict of crash recovery is replaced by the
outcome a late-returning send reports (timeline/dispatcher.py).

Attempt history. Every claim of a job is a `DeliveryAttempt` row with the provider's id
for that attempt. The message carries only the current attempt's provider id: when a
message is sent again (`retry_message`, or a resend after an unknown outcome), the old
id stays in its attempt's row only, so a late report about the old attempt is recorded
there and never changes the message.

Early delivery reports. Providers may report on a message before the send's result is
recorded (Twilio's status callback often beats its own API answer). A report whose
provider id is not known yet is kept (`PendingDeliveryReport`) and applied, forward-only,
when a send is recorded with that id; the dispatcher also applies kept reports whose id
became known meanwhile (a report and a record that raced) and drops those older than
`KEEP_EARLY_REPORTS`.

Claiming, send outcomes, retries, parking and crash recovery: see timeline/dispatcher.py.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete as sql_delete
from sqlalchemy import exists, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.types import DELIVERY_RANK, DeliveryState, DeliveryUpdate
from timeline.clock import database_now
from timeline.events import Event, EventBus, publish_committed
from timeline.ids import new_id
from timeline.models import (
    Attachment,
    AttemptOutcome,
    Channel,
    Conversation,
    DeliveryAttempt,
    Direction,
    JobState,
    Message,
    MessageKind,
    OutboundJob,
    PendingDeliveryReport,
    TimelineEvent,
    utcnow,
)
from timeline.send_outcome import storable_reason
from timeline.storable import bounded_key

logger = logging.getLogger(__name__)

OUTCOME_UNKNOWN = (
    "delivery outcome unknown: the worker stopped while sending; "
    "not resent automatically to avoid a duplicate"
)
# A report for a provider id no send ever recorded is dropped after this long.
KEEP_EARLY_REPORTS = timedelta(days=7)
# Kept reports looked at per dispatcher round (the rest wait for the next round).
_SETTLE_BATCH = 100


class UnknownConversation(LookupError):
    """The conversation to reply in does not exist."""


@dataclass(frozen=True, slots=True)
class OutboundFile:
    """A file to send with a reply, already in the blob store (timeline/files.py)."""

    filename: str
    content_type: str
    sha256: str
    size: int


def provider_key(provider_message_id: str) -> str:
    """A provider's message id as stored and matched (fits the column, never collides)."""
    return bounded_key(provider_message_id)


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
    attachments: Sequence[OutboundFile] = (),
    automatic: bool = False,
    reply_to_id: uuid.UUID | None = None,
    channel_id: uuid.UUID | None = None,
) -> Message:
    """Store a reply (with its delivery job) or a private note; the caller commits.

    The reply goes out on `channel_id`, or on the conversation's channel when it is None:
    a conversation whose channel cannot send (a web form) is answered on another channel
    of the same contact, and an agent may pick another one (inbox/reply_channels.py says
    which). The message, its job and its `message.sent` event name the channel used; the
    message stays in the conversation, so the thread shows it. The caller checks that
    the channel can reach the contact; the outbox checks again when it sends. A private
    note is never sent and takes no channel.

    An `automatic` reply (an acknowledgement) is sent marked as such (email:
    Auto-Submitted: auto-replied) and is no answer from a person: the customer is still
    waiting and the first response is still to come.

    Also records the attachments (whose bytes the caller stored with
    `timeline.files.store_blob`), the timeline event and the conversation's activity and
    response times. Publish `message_created_event(message)` after the commit (or use
    `do_queue_outbound`).
    """
    if not text.strip() and not attachments:
        raise ValueError("a message needs text or an attachment")
    if private and channel_id is not None:
        raise ValueError("a private note is never sent: it takes no channel")
    # The job's times are compared with other workers' claims: the database's clock.
    job_now = now if now is not None else await database_now(session)
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
    sending_channel_id = channel_id if channel_id is not None else conversation.channel_id
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        channel_id=sending_channel_id,
        contact_id=conversation.contact_id,
        direction=Direction.OUT.value,
        kind=(MessageKind.NOTE if private else MessageKind.MESSAGE).value,
        private=private,
        author_id=author_id,
        subject=subject,
        text=text,
        html=html,
        auto_submitted=automatic,
        reply_to_id=reply_to_id,
        sent_at=now,
        created_at=now,
        arrived_at=now,
        # Numbered under the conversation's row lock taken above: commit order.
        seq=conversation.last_seq + 1,
        delivery_state=None if private else DeliveryState.QUEUED.value,
        delivery_rank=DELIVERY_RANK[DeliveryState.QUEUED],
        delivery_updated_at=None if private else now,
    )
    session.add(message)
    if attachments:
        # No relationship() orders the two inserts: the message's row must exist first.
        await session.flush()
    # Ids are time-ordered (timeline/ids.py): the files keep the order they were given in.
    session.add_all(
        Attachment(
            id=new_id(),
            message_id=message.id,
            sha256=file.sha256,
            size=file.size,
            content_type=file.content_type,
            filename=file.filename,
            inline=False,
            created_at=now,
        )
        for file in attachments
    )
    if not private:
        session.add(
            OutboundJob(
                message_id=message.id,
                channel_id=sending_channel_id,
                state=JobState.PENDING.value,
                attempts=0,
                next_attempt_at=job_now,
                retry_from=job_now,
                created_at=job_now,
                updated_at=job_now,
            )
        )
    session.add(
        TimelineEvent(
            contact_id=conversation.contact_id,
            conversation_id=conversation.id,
            message_id=message.id,
            kind="note.added" if private else "message.sent",
            data={"channel_id": str(sending_channel_id), "direction": Direction.OUT.value},
            occurred_at=now,
        )
    )
    conversation.last_activity_at = max(conversation.last_activity_at, now)
    conversation.message_count += 1
    conversation.last_seq = message.seq
    # A private note is not an answer the customer sees: it neither stops their wait nor
    # counts as a response.
    if not private and not automatic:
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
    attachments: Sequence[OutboundFile] = (),
    automatic: bool = False,
    channel_id: uuid.UUID | None = None,
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
            attachments=attachments,
            automatic=automatic,
            channel_id=channel_id,
        )
    await publish_committed(bus, [message_created_event(message)])
    return message


async def retry_message(
    session: AsyncSession, message_id: uuid.UUID, *, now: datetime | None = None
) -> bool:
    """An agent's explicit retry of a failed_permanent message; the caller commits.

    Resets the message to queued and its job to pending with a fresh attempt count and
    retry period (or creates a job when the provider failed it after the job was done).
    The earlier attempt's provider id stays in its history row only. Returns False, and
    changes nothing, unless the message is an outbound message in failed_permanent.
    """
    now = now or await database_now(session)
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
    elif job.state in (JobState.PENDING.value, JobState.SENDING.value, JobState.PARKED.value):
        # Already on its way again (a provider failed a send that a retry had queued).
        return False
    if message.provider_message_id is not None:
        await _keep_in_history(session, message, job.attempts or 1, now)
        message.provider_message_id = None
    job.state = JobState.PENDING.value
    job.attempts = 0
    job.next_attempt_at = now
    job.retry_from = now
    job.lease_until = None
    job.worker = None
    job.last_error = None
    job.parked_for = None
    job.parked_at = None
    # A send of the old claim that returns late must not settle the new one.
    job.claim_id = None
    job.updated_at = now
    # The one backward move outside a job's own attempt (see the module docstring).
    message.delivery_state = DeliveryState.QUEUED.value
    message.delivery_rank = DELIVERY_RANK[DeliveryState.QUEUED]
    message.delivery_error = None
    message.delivery_updated_at = now
    await session.flush()
    return True


async def _keep_in_history(
    session: AsyncSession, message: Message, attempt: int, now: datetime
) -> None:
    """Make sure the message's current provider id has an attempt row before it is cleared."""
    recorded = await session.scalar(
        select(DeliveryAttempt.id)
        .where(
            DeliveryAttempt.message_id == message.id,
            DeliveryAttempt.provider_message_id == message.provider_message_id,
        )
        .limit(1)
    )
    if recorded is not None:
        return
    # Sent before attempts were recorded (an installation upgraded from an older schema).
    session.add(
        DeliveryAttempt(
            id=new_id(),
            message_id=message.id,
            channel_id=message.channel_id,
            attempt=attempt,
            started_at=message.delivery_updated_at or now,
            finished_at=message.delivery_updated_at or now,
            outcome=AttemptOutcome.ACCEPTED.value,
            error=message.delivery_error,
            provider_message_id=message.provider_message_id,
            delivery_state=message.delivery_state,
            delivery_rank=message.delivery_rank,
            delivery_updated_at=message.delivery_updated_at,
        )
    )


# --- provider delivery reports --------------------------------------------------------------


async def apply_delivery_update(
    sessions: async_sessionmaker[AsyncSession],
    update: DeliveryUpdate,
    bus: EventBus | None = None,
    *,
    now: datetime | None = None,
) -> bool:
    """Apply a provider's delivery report, forward-only; True when a message changed.

    The message is found by (channel, provider message id). A report about an earlier
    attempt's id is recorded in that attempt's history row only; a report about an id no
    send recorded yet is kept until one does (see the module docstring). Publishes
    `message.delivery` after commit when something changed.
    """
    try:
        channel_id = uuid.UUID(update.channel_id)
    except ValueError:
        logger.warning("delivery report for an unknown channel id %r ignored", update.channel_id)
        return False
    state = DeliveryState(update.state)
    provider_id = provider_key(update.provider_message_id)
    failed = state in (DeliveryState.FAILED_PERMANENT, DeliveryState.FAILED_TEMPORARY)
    error = storable_reason(update.error or "the provider reported a failure") if failed else None
    async with sessions() as session, session.begin():
        received_at = now or await database_now(session)
        known, events = await _apply_report(
            session, channel_id, provider_id, state, error, update.at or received_at
        )
        if not known:
            if await session.scalar(select(Channel.id).where(Channel.id == channel_id)) is None:
                logger.warning("delivery report for missing channel %s ignored", channel_id)
                return False
            session.add(
                PendingDeliveryReport(
                    id=new_id(),
                    channel_id=channel_id,
                    provider_message_id=provider_id,
                    state=state.value,
                    error=error,
                    at=update.at,
                    received_at=received_at,
                )
            )
    if not known:
        logger.info(
            "delivery report %s for %s on channel %s came before its send was recorded; kept",
            state.value,
            provider_id,
            channel_id,
        )
        # The send may have been recorded while this report was being kept; whichever of
        # the two commits last sees the other (the dispatcher's round catches the rest).
        async with sessions() as session, session.begin():
            events = await apply_kept_reports(session, channel_id, provider_id)
    if not events:
        logger.debug(
            "delivery report %s for %s on channel %s changed no message",
            state.value,
            provider_id,
            channel_id,
        )
        return False
    if bus is not None:
        await publish_committed(bus, events)
    return True


async def apply_kept_reports(
    session: AsyncSession, channel_id: uuid.UUID, provider_message_id: str
) -> list[Event]:
    """Apply and delete the kept reports for a provider id a send has now recorded.

    Does nothing while no message or attempt carries the id. Returns the events to
    publish after the caller commits.
    """
    if not await _provider_id_known(session, channel_id, provider_message_id):
        return []
    reports = (
        await session.execute(
            sql_delete(PendingDeliveryReport)
            .where(
                PendingDeliveryReport.channel_id == channel_id,
                PendingDeliveryReport.provider_message_id == provider_message_id,
            )
            .returning(
                PendingDeliveryReport.state,
                PendingDeliveryReport.error,
                PendingDeliveryReport.at,
                PendingDeliveryReport.received_at,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    events: list[Event] = []
    # In the order they happened: of two reports of equal rank, the first one stands.
    for report in sorted(reports, key=lambda r: r.at or r.received_at):
        _, changed = await _apply_report(
            session,
            channel_id,
            provider_message_id,
            DeliveryState(report.state),
            report.error,
            report.at or report.received_at,
        )
        events += changed
    return events


async def settle_kept_reports(session: AsyncSession, now: datetime) -> list[Event]:
    """The dispatcher's sweep: apply kept reports whose id is known now; drop stale ones."""
    await session.execute(
        sql_delete(PendingDeliveryReport)
        .where(PendingDeliveryReport.received_at < now - KEEP_EARLY_REPORTS)
        .execution_options(synchronize_session=False)
    )
    kept = PendingDeliveryReport
    known = exists().where(
        Message.channel_id == kept.channel_id,
        Message.provider_message_id == kept.provider_message_id,
    ) | exists().where(
        DeliveryAttempt.channel_id == kept.channel_id,
        DeliveryAttempt.provider_message_id == kept.provider_message_id,
    )
    pairs = (
        await session.execute(
            select(kept.channel_id, kept.provider_message_id)
            .where(known)
            .distinct()
            .limit(_SETTLE_BATCH)
        )
    ).all()
    events: list[Event] = []
    for channel_id, provider_message_id in pairs:
        events += await apply_kept_reports(session, channel_id, provider_message_id)
    return events


async def _provider_id_known(
    session: AsyncSession, channel_id: uuid.UUID, provider_message_id: str
) -> bool:
    on_message = await session.scalar(
        select(Message.id)
        .where(
            Message.channel_id == channel_id,
            Message.provider_message_id == provider_message_id,
        )
        .limit(1)
    )
    if on_message is not None:
        return True
    on_attempt = await session.scalar(
        select(DeliveryAttempt.id)
        .where(
            DeliveryAttempt.channel_id == channel_id,
            DeliveryAttempt.provider_message_id == provider_message_id,
        )
        .limit(1)
    )
    return on_attempt is not None


async def _apply_report(
    session: AsyncSession,
    channel_id: uuid.UUID,
    provider_message_id: str,
    state: DeliveryState,
    error: str | None,
    at: datetime,
) -> tuple[bool, list[Event]]:
    """Apply one report forward-only to the attempts and the message carrying the id.

    Returns whether the id is known at all, and the events for messages that changed.
    """
    rank = DELIVERY_RANK[state]
    await session.execute(
        sql_update(DeliveryAttempt)
        .where(
            DeliveryAttempt.channel_id == channel_id,
            DeliveryAttempt.provider_message_id == provider_message_id,
            DeliveryAttempt.delivery_rank < rank,
        )
        # A failure report says why; other reports leave the attempt's own error alone.
        .values(
            delivery_state=state.value,
            delivery_rank=rank,
            delivery_updated_at=at,
            **({"error": error} if error is not None else {}),
        )
        .execution_options(synchronize_session=False)
    )
    rows = (
        await session.execute(
            sql_update(Message)
            .where(
                Message.channel_id == channel_id,
                Message.provider_message_id == provider_message_id,
                Message.delivery_rank < rank,
            )
            .values(
                delivery_state=state.value,
                delivery_rank=rank,
                delivery_error=error,
                delivery_updated_at=at,
            )
            .returning(Message.id, Message.conversation_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if rows:
        return True, [delivery_event(row.id, row.conversation_id, state, error) for row in rows]
    return await _provider_id_known(session, channel_id, provider_message_id), []


def delivery_event(
    message_id: uuid.UUID, conversation_id: uuid.UUID, state: DeliveryState, error: str | None
) -> Event:
    """The `message.delivery` event for a message whose delivery state changed."""
    return Event(
        "message.delivery",
        {
            "message_id": str(message_id),
            "conversation_id": str(conversation_id),
            "state": state.value,
            "error": error,
        },
    )
