"""The outbound dispatcher: workers claim due outbox jobs, send them and record outcomes.

A `Dispatcher` (in `switchboard serve` or `switchboard worker`) claims due jobs queued by
timeline/outbox.py, hands each to the channel's connector, and records the outcome; events
go on the bus only after the commit that records them. Delivery state only moves forward,
with two exceptions: see the forward-only rule in timeline/outbox.py's docstring.

Claiming. A worker claims one job at a time (so a lease covers one provider call, never
a batch still waiting its turn): on PostgreSQL it selects a due pending job with ``FOR
UPDATE SKIP LOCKED`` (several workers never wait on each other); on SQLite the
transaction already holds the write lock (``BEGIN IMMEDIATE``, see timeline/db.py). On
both, the claim itself is a compare-and-set ``UPDATE ... WHERE id = :id AND state =
'pending'`` that sets state 'sending', the worker, ``attempts + 1`` and a lease; it is
committed *before* the provider is called. The pair (worker, attempts) identifies the
claim: outcomes are recorded only while the job is still in that claim.

Outcomes. Accepted → job 'done', message 'sent' (or the better state the connector
reported) with the provider's message id. `TransientError`, `AuthError` (a person must
fix the channel; the message waits), a channel that is not running, or any unexpected
exception → job back to 'pending' after ``min(cap, base * 2**(attempts-1))`` seconds
times a random jitter in [0.5, 1.0] (longer if the provider asked, via ``retry_after``),
message 'failed_temporary' with the error; after ``max_attempts`` attempts it fails
permanently with "gave up after N attempts: <reason>". `PermanentError`, a text longer
than the channel's ``max_text_length``, or a contact with no address on the channel →
job 'dead', message 'failed_permanent' with the reason. Nothing is sent twice by the
retry machinery: a job is retried only after its attempt was recorded as failed.

Crash recovery. A job found in state 'sending' whose lease has expired means a worker
died (or hung) after claiming it; nobody knows whether the provider accepted the
message. If the channel's connector declares ``capabilities.idempotent_send`` (the
provider drops a repeat of the same `Outbound.message_id`), the job goes back to
'pending' and is sent again. Otherwise the job is 'dead' and the message
'failed_permanent' with the error `OUTCOME_UNKNOWN`: it is never sent a second time
silently; an agent who checked may retry it. While a channel's connector is not
running, its expired jobs wait (their idempotency cannot be known). If a hung worker's
send does return after its job was recovered, the success is still recorded: it stops a
pending resend and replaces the "outcome unknown" verdict (the only failed_permanent a
later "sent" may replace). Set ``lease_seconds`` well above the longest send a connector
can take (its own timeouts).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.base import Capabilities, Connector
from connectors.errors import AuthError, PermanentError, TransientError
from connectors.types import (
    DELIVERY_RANK,
    ChannelId,
    DeliveryState,
    IdentityKind,
    Outbound,
    SendResult,
    ThreadHints,
)
from timeline.events import Event, EventBus, publish_committed
from timeline.models import (
    Channel,
    Conversation,
    Direction,
    Identity,
    JobState,
    Message,
    OutboundJob,
    utcnow,
)
from timeline.outbox import OUTCOME_UNKNOWN, RECIPIENT_KIND, delivery_event

logger = logging.getLogger(__name__)

_SENDING_RANK = DELIVERY_RANK[DeliveryState.SENDING]
_ACCEPTED = (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.READ)
_MAX_REFERENCES = 20  # email References kept short: enough for every client to thread


@dataclass(frozen=True, slots=True)
class _Claim:
    """A job this worker holds: (worker, attempt) identifies the claim in the database."""

    job_id: uuid.UUID
    message_id: uuid.UUID
    channel_id: uuid.UUID
    attempt: int  # the job's attempts count including this one


@dataclass(frozen=True, slots=True)
class _Accepted:
    """The provider accepted the message."""

    result: SendResult


@dataclass(frozen=True, slots=True)
class _Failed:
    """The attempt failed; `permanent` says whether it may be retried."""

    reason: str
    permanent: bool
    retry_after: float | None = None


_Outcome = _Accepted | _Failed


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    jitter: float | None = None,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    ``min(cap, base * 2**(attempt-1))`` times a jitter in [0.5, 1.0] (random unless
    given), so workers that failed together do not retry together; never shorter than
    the provider's ``retry_after``.
    """
    if jitter is None:
        jitter = random.uniform(0.5, 1.0)
    exponent = min(max(attempt - 1, 0), 60)  # 2**60 * base is far past any cap
    delay = min(cap, base * 2.0**exponent) * jitter
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay


def check_capabilities(outbound: Outbound, capabilities: Capabilities) -> str | None:
    """Why the channel cannot carry this message, or None when it can."""
    limit = capabilities.max_text_length
    if limit is not None and len(outbound.text) > limit:
        return (
            f"the message is {len(outbound.text)} characters long; "
            f"this channel carries at most {limit}"
        )
    return None


class Dispatcher:
    """A worker that sends due outbound jobs through their channels' connectors."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connectors: Callable[[ChannelId], Connector | None],
        bus: EventBus,
        *,
        worker_id: str,
        max_attempts: int = 8,
        lease_seconds: float = 120,
        backoff_base: float = 2.0,
        backoff_cap: float = 600.0,
        batch_size: int = 20,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if max_attempts < 1 or batch_size < 1 or lease_seconds <= 0:
            raise ValueError("max_attempts, batch_size and lease_seconds must be positive")
        self._sessions = sessions
        self._connectors = connectors
        self._bus = bus
        self.worker_id = worker_id
        self.max_attempts = max_attempts
        self.lease = timedelta(seconds=lease_seconds)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.batch_size = batch_size
        self._clock = clock
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Look for due jobs now instead of after the idle interval (a reply was queued)."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event, idle_interval: float = 1.0) -> None:
        """Send jobs until `stop` is set; sleeps `idle_interval` (or until `wake`) when idle."""
        logger.info("outbound dispatcher %s started", self.worker_id)
        while not stop.is_set():
            # Cleared before the round: a wake() during the round skips the next idle wait.
            self._wakeup.clear()
            try:
                handled = await self._round(stop)
            except Exception:
                # The database is unreachable (each job's own failures are recorded inside
                # the round, bus failures are logged there): wait and try again.
                logger.exception("outbound dispatcher %s: round failed", self.worker_id)
                handled = 0
            if handled == 0:
                await self._idle(stop, idle_interval)
        logger.info("outbound dispatcher %s stopped", self.worker_id)

    async def run_once(self) -> int:
        """Recover expired leases, then claim, send and record up to `batch_size` due jobs.

        Returns how many jobs were handled (sent, failed or recovered).
        """
        return await self._round(None)

    async def _round(self, stop: asyncio.Event | None) -> int:
        handled = await self._recover_expired()
        for _ in range(self.batch_size):
            if stop is not None and stop.is_set():
                break
            claim = await self._claim_next()
            if claim is None:
                break
            await self._handle(claim)
            handled += 1
        return handled

    async def _idle(self, stop: asyncio.Event, timeout: float) -> None:
        waits = {
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._wakeup.wait()),
        }
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    # -- claiming --

    async def _claim_next(self) -> _Claim | None:
        """Claim one due job and commit the claim, or None when nothing is due."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            # Bounded: a miss means another worker won the race for that job; look again.
            for _ in range(self.batch_size):
                row = (
                    await session.execute(
                        select(OutboundJob.id, OutboundJob.message_id, OutboundJob.channel_id)
                        .where(
                            OutboundJob.state == JobState.PENDING.value,
                            OutboundJob.next_attempt_at <= now,
                        )
                        .order_by(OutboundJob.next_attempt_at, OutboundJob.id)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).first()
                if row is None:
                    return None
                attempt = await session.scalar(
                    sql_update(OutboundJob)
                    .where(OutboundJob.id == row.id, OutboundJob.state == JobState.PENDING.value)
                    .values(
                        state=JobState.SENDING.value,
                        attempts=OutboundJob.attempts + 1,
                        lease_until=now + self.lease,
                        worker=self.worker_id,
                        updated_at=now,
                    )
                    .returning(OutboundJob.attempts)
                    .execution_options(synchronize_session=False)
                )
                if attempt is None:
                    continue
                await session.execute(
                    sql_update(Message)
                    .where(Message.id == row.message_id, Message.delivery_rank <= _SENDING_RANK)
                    .values(
                        delivery_state=DeliveryState.SENDING.value,
                        delivery_rank=_SENDING_RANK,
                        delivery_updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                return _Claim(row.id, row.message_id, row.channel_id, attempt)
        return None

    async def _recover_expired(self) -> int:
        """Settle jobs whose worker stopped while sending (see the module docstring)."""
        now = self._clock()
        events: list[Event] = []
        settled = 0
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(
                        OutboundJob.id,
                        OutboundJob.message_id,
                        OutboundJob.channel_id,
                        OutboundJob.attempts,
                        OutboundJob.worker,
                    )
                    .where(
                        OutboundJob.state == JobState.SENDING.value,
                        OutboundJob.lease_until < now,
                    )
                    .order_by(OutboundJob.lease_until, OutboundJob.id)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                connector = self._connectors(ChannelId(str(row.channel_id)))
                if connector is None:
                    continue  # decided once the channel runs again and its capabilities are known
                claim = _Claim(row.id, row.message_id, row.channel_id, row.attempts)
                outcome = self._recovery_outcome(claim, connector.capabilities, row.worker)
                events += await _record_failure(session, claim, row.worker, outcome, now, now)
                settled += 1
        await publish_committed(self._bus, events)
        # Jobs left waiting for their channel are not counted: an idle worker stays idle.
        return settled

    def _recovery_outcome(
        self, claim: _Claim, capabilities: Capabilities, owner: str | None
    ) -> _Failed:
        """What becomes of a job whose worker stopped while sending (module docstring)."""
        if not capabilities.idempotent_send:
            logger.warning(
                "outbound job %s (message %s): worker %s stopped while sending; "
                "outcome unknown, not resent",
                claim.job_id,
                claim.message_id,
                owner,
            )
            return _Failed(OUTCOME_UNKNOWN, permanent=True)
        if claim.attempt >= self.max_attempts:
            reason = "the worker stopped while sending"
            return _Failed(f"gave up after {claim.attempt} attempts: {reason}", permanent=True)
        logger.warning(
            "outbound job %s (message %s): worker %s stopped while sending; "
            "sending again (the channel drops duplicates)",
            claim.job_id,
            claim.message_id,
            owner,
        )
        return _Failed("the worker stopped while sending; sending again", permanent=False)

    # -- one job --

    async def _handle(self, claim: _Claim) -> None:
        """Send one claimed job and record the outcome: one bad job never stops the next."""
        try:
            outcome = await self._attempt(claim)
        except Exception as err:
            # The one catch-all per job: a bug in a connector or in building the message.
            logger.exception(
                "outbound job %s (message %s, channel %s, attempt %s): unexpected error",
                claim.job_id,
                claim.message_id,
                claim.channel_id,
                claim.attempt,
            )
            outcome = _Failed(f"unexpected error: {type(err).__name__}: {err}", permanent=False)
        events = await self._record(claim, outcome)
        await publish_committed(self._bus, events)

    async def _attempt(self, claim: _Claim) -> _Outcome:
        connector = self._connectors(ChannelId(str(claim.channel_id)))
        if connector is None:
            return _Failed(f"channel {claim.channel_id} is not running", permanent=False)
        async with self._sessions() as session:
            built = await _build_outbound(session, claim.message_id, connector.capabilities)
        if isinstance(built, _Failed):
            return built
        refusal = check_capabilities(built, connector.capabilities)
        if refusal is not None:
            return _Failed(refusal, permanent=True)
        try:
            result = await connector.send(built)
        except PermanentError as err:
            return _Failed(str(err) or type(err).__name__, permanent=True)
        except TransientError as err:
            return _Failed(
                str(err) or type(err).__name__, permanent=False, retry_after=err.retry_after
            )
        except AuthError as err:
            # The channel needs a person; the message waits for them with backoff.
            return _Failed(
                f"the provider refused the channel's credentials: {err}", permanent=False
            )
        return _Accepted(result)

    async def _record(self, claim: _Claim, outcome: _Outcome) -> list[Event]:
        now = self._clock()
        async with self._sessions() as session, session.begin():
            if isinstance(outcome, _Accepted):
                return await self._record_accepted(session, claim, outcome.result, now)
            if not outcome.permanent and claim.attempt >= self.max_attempts:
                outcome = _Failed(
                    f"gave up after {claim.attempt} attempts: {outcome.reason}", permanent=True
                )
            retry_at = now
            if not outcome.permanent:
                delay = retry_delay(
                    claim.attempt,
                    base=self.backoff_base,
                    cap=self.backoff_cap,
                    retry_after=outcome.retry_after,
                )
                retry_at = now + timedelta(seconds=delay)
            log = logger.warning if outcome.permanent else logger.info
            log(
                "outbound message %s on channel %s: attempt %s failed (%s): %s",
                claim.message_id,
                claim.channel_id,
                claim.attempt,
                "permanent" if outcome.permanent else f"retry at {retry_at.isoformat()}",
                outcome.reason,
            )
            return await _record_failure(session, claim, self.worker_id, outcome, now, retry_at)

    async def _record_accepted(
        self, session: AsyncSession, claim: _Claim, result: SendResult, now: datetime
    ) -> list[Event]:
        state = result.state if result.state in _ACCEPTED else DeliveryState.SENT
        rank = DELIVERY_RANK[state]
        owned = await session.scalar(
            sql_update(OutboundJob)
            .where(_held(claim, self.worker_id))
            .values(state=JobState.DONE.value, lease_until=None, last_error=None, updated_at=now)
            .returning(OutboundJob.id)
            .execution_options(synchronize_session=False)
        )
        may_replace = Message.delivery_rank < rank
        if owned is None:
            # The lease ran out while the provider answered and recovery already settled
            # the job. We now know the outcome: stop a pending resend, and replace the
            # "outcome unknown" verdict (the one failed_permanent we may overwrite).
            logger.warning(
                "outbound job %s (message %s): lease expired before the send returned; "
                "recording it as sent",
                claim.job_id,
                claim.message_id,
            )
            await session.execute(
                sql_update(OutboundJob)
                .where(
                    OutboundJob.id == claim.job_id,
                    or_(
                        OutboundJob.state == JobState.PENDING.value,
                        and_(
                            OutboundJob.state == JobState.DEAD.value,
                            OutboundJob.last_error == OUTCOME_UNKNOWN,
                        ),
                    ),
                )
                .values(state=JobState.DONE.value, last_error=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            may_replace = or_(may_replace, Message.delivery_error == OUTCOME_UNKNOWN)
        # The provider's id is a fact whatever the state says: reports are matched by it.
        await session.execute(
            sql_update(Message)
            .where(Message.id == claim.message_id)
            .values(provider_message_id=result.provider_message_id)
            .execution_options(synchronize_session=False)
        )
        conversation_id = await session.scalar(
            sql_update(Message)
            .where(Message.id == claim.message_id, may_replace)
            .values(
                delivery_state=state.value,
                delivery_rank=rank,
                delivery_error=None,
                delivery_updated_at=now,
            )
            .returning(Message.conversation_id)
            .execution_options(synchronize_session=False)
        )
        logger.info(
            "outbound message %s sent on channel %s (attempt %s, provider id %s)",
            claim.message_id,
            claim.channel_id,
            claim.attempt,
            result.provider_message_id,
        )
        if conversation_id is None:
            return []
        return [delivery_event(claim.message_id, conversation_id, state, None)]


def _held(claim: _Claim, worker: str | None) -> ColumnElement[bool]:
    """The WHERE clause matching the job only while it is still in this claim."""
    return and_(
        OutboundJob.id == claim.job_id,
        OutboundJob.state == JobState.SENDING.value,
        OutboundJob.worker == worker if worker is not None else OutboundJob.worker.is_(None),
        OutboundJob.attempts == claim.attempt,
    )


async def _record_failure(
    session: AsyncSession,
    claim: _Claim,
    worker: str | None,
    outcome: _Failed,
    now: datetime,
    retry_at: datetime,
) -> list[Event]:
    """Record a failed attempt of a claim (if still held); returns the events to publish."""
    job_state = JobState.DEAD if outcome.permanent else JobState.PENDING
    owned = await session.scalar(
        sql_update(OutboundJob)
        .where(_held(claim, worker))
        .values(
            state=job_state.value,
            next_attempt_at=retry_at,
            lease_until=None,
            worker=None,
            last_error=outcome.reason,
            updated_at=now,
        )
        .returning(OutboundJob.id)
        .execution_options(synchronize_session=False)
    )
    if owned is None:
        logger.warning(
            "outbound job %s (message %s): claim lost before its failure was recorded",
            claim.job_id,
            claim.message_id,
        )
        return []
    if outcome.permanent:
        state = DeliveryState.FAILED_PERMANENT
        condition = Message.delivery_rank < DELIVERY_RANK[state]
    else:
        # A failed attempt steps back from sending (timeline/outbox.py's docstring, exception 1).
        state = DeliveryState.FAILED_TEMPORARY
        condition = Message.delivery_rank <= _SENDING_RANK
    conversation_id = await session.scalar(
        sql_update(Message)
        .where(Message.id == claim.message_id, condition)
        .values(
            delivery_state=state.value,
            delivery_rank=DELIVERY_RANK[state],
            delivery_error=outcome.reason,
            delivery_updated_at=now,
        )
        .returning(Message.conversation_id)
        .execution_options(synchronize_session=False)
    )
    if conversation_id is None:
        return []
    return [delivery_event(claim.message_id, conversation_id, state, outcome.reason)]


async def _build_outbound(
    session: AsyncSession, message_id: uuid.UUID, capabilities: Capabilities
) -> Outbound | _Failed:
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
        return _Failed("the message no longer exists", permanent=True)
    message, channel_kind, conversation_subject = row
    identity_kind = RECIPIENT_KIND.get(channel_kind)
    if identity_kind is None:
        return _Failed(f"replies cannot be sent on a {channel_kind} channel", permanent=True)
    recipient = await _recipient(session, message, identity_kind)
    if recipient is None:
        return _Failed(
            f"the contact has no {identity_kind.value} to send to on this channel",
            permanent=True,
        )
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
    in_reply_to = await session.scalar(
        select(Message.rfc_message_id)
        .where(
            Message.conversation_id == message.conversation_id,
            Message.direction == Direction.IN.value,
            Message.rfc_message_id.is_not(None),
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
    )
    subject = message.subject or conversation_subject
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
            chat_id=recipient if identity_kind is IdentityKind.TELEGRAM else None,
            subject=subject,
        ),
    )


async def _recipient(session: AsyncSession, message: Message, kind: IdentityKind) -> str | None:
    """The address the customer last wrote from in this conversation, else their first one."""
    last_used = await session.scalar(
        select(Identity.value)
        .join(Message, Message.sender_identity_id == Identity.id)
        .where(
            Message.conversation_id == message.conversation_id,
            Message.direction == Direction.IN.value,
            Identity.contact_id == message.contact_id,
            Identity.kind == kind.value,
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
    )
    if last_used is not None:
        return last_used
    return await session.scalar(
        select(Identity.value)
        .where(Identity.contact_id == message.contact_id, Identity.kind == kind.value)
        .order_by(Identity.created_at, Identity.id)
        .limit(1)
    )
