"""The outbound dispatcher: workers claim due outbox jobs, send them and record outcomes.

A `Dispatcher` (in `switchboard serve` or `switchboard worker`) claims due jobs queued by
timeline/outbox.py, hands each to the channel's connector, and records the outcome; events
go on the bus only after the commit that records them. Delivery state only moves forward,
with the exceptions listed in timeline/outbox.py's docstring.

Time. Every time the outbox stores or compares (claims, leases, retries, parking) is the
database's clock (timeline/clock.py), so workers whose own clocks disagree still agree
on whose lease has expired. Tests may inject a hand-moved clock in its place.

Concurrency. Sends run as tasks kept in a set (their errors logged), at most
``concurrency`` at once per worker, each under ``send_timeout``: a provider that hangs
holds one task, never the others. Each channel has at most one send in flight, across
all workers, so replies in a conversation never overtake each other: a claim skips
channels with a job in 'sending', and on PostgreSQL it holds the channel's row (``FOR NO
KEY UPDATE SKIP LOCKED``) while it looks, so two workers never claim on one channel at
the same moment.

Claiming. On PostgreSQL a worker selects a due pending job with ``FOR UPDATE SKIP
LOCKED`` (several workers never wait on each other); on SQLite the transaction already
holds the write lock (``BEGIN IMMEDIATE``, see timeline/db.py). On both, the claim itself
is a compare-and-set ``UPDATE ... WHERE id = :id AND state = 'pending'`` that sets state
'sending', ``attempts + 1``, a lease and a fresh ``claim_id``, and inserts the attempt's
`DeliveryAttempt` row; it is committed *before* the provider is called. Outcomes are
recorded only while the job is still in that claim.

Outcomes.
- Accepted → job 'done', message 'sent' (or the better state the connector reported)
  with the provider's message id and, for email, the Message-ID it went out with; kept
  early reports for that id are applied, jobs of the channel parked for bad credentials
  resume (the credentials evidently work), and a health the outbox itself set when it
  parked the channel becomes connected.
- `TransientError` or any unexpected exception → job back to 'pending' after
  `retry_delay` (capped exponential backoff with jitter, never before the provider's
  ``retry_after``), message 'failed_temporary' with the error. Once the retry period has
  passed (the channel kind's ``retry_period`` from connectors/registry.py, else
  ``retry_period``: SWITCHBOARD_OUTBOX_RETRY_HOURS) the next failure is permanent: "gave
  up after N attempts over H hours: <reason>".
- `PermanentError`, a message the channel cannot carry (`check_capabilities`), a contact
  with no address on the channel or a missing attachment file → job 'dead', message
  'failed_permanent' with the reason.
- Parking: a channel whose connector is not running, or whose provider refused our
  credentials (`AuthError`), cannot send anything; retrying would only burn attempts
  (and, for credentials, hammer the provider). The job goes to 'parked' and its attempt
  is not counted; for bad credentials the channel's other pending jobs park with it.
  The message shows 'failed_temporary' with the reason, and the channel's health says
  so (bad_credentials with the provider's reason; unknown with "not running" unless the
  health already names a problem a person must fix). Parked jobs resume (pending, due
  now) when the channel recovers: when its connector runs again, or for bad credentials
  when its health is no longer bad_credentials (a connector reported connected, an admin
  changed the configuration) or a send on the channel succeeded. Because credentials may
  be fixed outside Switchboard, one parked job per channel is also re-tried every
  ``park_probe_seconds``. Time spent parked does not count against the retry period:
  each job's ``retry_from`` moves forward by its parked time when it resumes, so a reply
  waiting for a person never expires.

Unknown outcomes. A send that outlives ``send_timeout``, or a job found in 'sending'
whose lease has expired (its worker died or hung), may or may not have been accepted by
the provider. If the channel's connector declares ``capabilities.idempotent_send`` (the
provider drops a repeat of the same `Outbound.message_id`), the job goes back to
'pending' and is sent again (within the retry period). Otherwise the job is 'dead' and
the message 'failed_permanent' with an "outcome unknown" error (`OUTCOME_UNKNOWN`, or
the timeout's own reason): it is never sent a second time silently; an agent who checked
may retry it. While a channel's connector is not running, its expired jobs wait (their
idempotency cannot be known). If a hung worker's send does return after its job was
recovered, its outcome is still recorded: a success stops a pending resend and replaces
the `OUTCOME_UNKNOWN` verdict; a failure replaces that verdict for its own claim.
``lease_seconds`` must exceed ``send_timeout``.

Recording. A database error while recording an outcome is retried with backoff until the
outcome is stored (after `run`'s stop is set, once more), so a known outcome is never
turned into an unknown one by a database hiccup.

Housekeeping, once per round: settle expired leases, resume parked jobs, apply kept
delivery reports whose provider id is known by now, and drop those older than a week.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from connectors.base import Capabilities, Connector
from connectors.errors import AuthError, PermanentError, TransientError
from connectors.registry import spec_for
from connectors.types import (
    DELIVERY_RANK,
    ChannelHealth,
    ChannelId,
    DeliveryState,
    IdentityKind,
    Outbound,
    OutboundAttachment,
    SendResult,
    ThreadHints,
)
from timeline.clock import database_now
from timeline.events import Event, EventBus, publish_committed
from timeline.files import blob_path
from timeline.ids import new_id
from timeline.models import (
    Attachment,
    AttemptOutcome,
    Channel,
    Conversation,
    DeliveryAttempt,
    Direction,
    Identity,
    JobState,
    Message,
    OutboundJob,
    ParkCause,
)
from timeline.outbox import (
    OUTCOME_UNKNOWN,
    apply_kept_reports,
    delivery_event,
    provider_key,
    settle_kept_reports,
)
from timeline.reply_limits import Sized, reply_refusals
from timeline.storable import bounded_key

logger = logging.getLogger(__name__)

DEFAULT_RETRY_PERIOD = timedelta(hours=24)
_SENDING_RANK = DELIVERY_RANK[DeliveryState.SENDING]
_ACCEPTED = (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.READ)
_MAX_REFERENCES = 20  # email References kept short: enough for every client to thread
_RECORD_RETRY_CAP = 30.0  # seconds between attempts to store an outcome, at most
# What a failed attempt to store an outcome may raise and still succeed later: the
# database or the network to it (TimeoutError is an OSError).
_RECORD_ERRORS = (SQLAlchemyError, OSError)
_CHUNK = 500  # message ids per UPDATE ... WHERE id IN (...)
NOT_RUNNING = "the channel is not running; replies wait until it runs again"
REFUSED = "the provider refused the channel's credentials"


@dataclass(frozen=True, slots=True)
class _Claim:
    """A job this worker holds; `claim_id` identifies the claim in the database."""

    job_id: uuid.UUID
    message_id: uuid.UUID
    channel_id: uuid.UUID
    channel_kind: str
    attempt: int  # the job's counted attempts including this one
    claim_id: uuid.UUID | None  # None only for jobs claimed before attempts were recorded
    retry_from: datetime


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
    unknown: bool = False  # nobody knows whether the provider accepted it


@dataclass(frozen=True, slots=True)
class _Parked:
    """The channel could not send at all; the job waits for it without using an attempt."""

    reason: str
    cause: ParkCause


_Outcome = _Accepted | _Failed | _Parked


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


@dataclass(frozen=True, slots=True)
class _Size:
    """A file's size, as `reply_refusals` takes it."""

    size: int


def check_capabilities(outbound: Outbound, capabilities: Capabilities) -> str | None:
    """Why the channel cannot carry this message, or None when it can.

    The same check the REST API applies before it accepts a reply (timeline/reply_limits.py),
    so a limit is worded alike wherever it refuses a reply.
    """
    sizes = [_Size(len(attachment.data)) for attachment in outbound.attachments]
    return _refusal(capabilities, outbound.text, sizes)


def _refusal(capabilities: Capabilities, text: str, files: Sequence[Sized]) -> str | None:
    refusals = reply_refusals(capabilities, text, files)
    return "; ".join(refusals.values()) if refusals else None


class Dispatcher:
    """A worker that sends due outbound jobs through their channels' connectors."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connectors: Callable[[ChannelId], Connector | None],
        bus: EventBus,
        *,
        worker_id: str,
        data_dir: Path,
        retry_period: timedelta = DEFAULT_RETRY_PERIOD,
        lease_seconds: float = 120,
        send_timeout: float = 60,
        concurrency: int = 16,
        backoff_base: float = 2.0,
        backoff_cap: float = 600.0,
        park_probe_seconds: float = 900,
        record_retry_base: float = 0.5,
        batch_size: int = 20,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if concurrency < 1 or batch_size < 1:
            raise ValueError("concurrency and batch_size must be at least 1")
        if send_timeout <= 0 or lease_seconds <= send_timeout:
            raise ValueError("send_timeout must be positive and lease_seconds longer")
        if retry_period <= timedelta(0) or park_probe_seconds <= 0:
            raise ValueError("retry_period and park_probe_seconds must be positive")
        self._sessions = sessions
        self._connectors = connectors
        self._bus = bus
        self.worker_id = worker_id
        self.data_dir = data_dir
        self.retry_period = retry_period
        self.lease = timedelta(seconds=lease_seconds)
        self.send_timeout = send_timeout
        self.concurrency = concurrency
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.park_probe = timedelta(seconds=park_probe_seconds)
        self.record_retry_base = record_retry_base
        self.batch_size = batch_size
        # None: the database's clock. Tests pass a hand-moved clock that stands in for it.
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()  # run()'s stop; never set for run_once()
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[uuid.UUID] = set()  # channels with a send in flight here
        self._finished = 0  # sends finished so far

    def wake(self) -> None:
        """Look for due jobs now instead of after the idle interval (a reply was queued)."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event, idle_interval: float = 1.0) -> None:
        """Send jobs until `stop` is set; sleeps `idle_interval` (or until `wake`) when idle.

        Housekeeping runs at most once per `idle_interval`. On stop, the sends in flight
        finish (each within the send timeout) and are recorded before this returns.
        """
        logger.info("outbound dispatcher %s started", self.worker_id)
        self._stop = stop
        loop = asyncio.get_running_loop()
        housekeeping_due = loop.time()
        try:
            while not stop.is_set():
                # Cleared before the round: a wake() during the round skips the idle wait.
                self._wakeup.clear()
                handled = 0
                try:
                    if loop.time() >= housekeeping_due:
                        housekeeping_due = loop.time() + idle_interval
                        handled += await self._housekeeping()
                    handled += await self._fill(self.concurrency)
                except Exception:
                    # The database is unreachable (each job's own failures are recorded by
                    # its task, bus failures are logged there): wait and try again.
                    logger.exception("outbound dispatcher %s: round failed", self.worker_id)
                if handled == 0:
                    await self._idle(stop, idle_interval)
            if self._tasks:
                await asyncio.wait(set(self._tasks))
        except asyncio.CancelledError:
            await self._cancel_sends()
            raise
        logger.info("outbound dispatcher %s stopped", self.worker_id)

    async def run_once(self) -> int:
        """Housekeeping, then claim, send and record up to `batch_size` due jobs.

        Waits for every send it started; a channel's next job is claimed once its
        previous one is recorded. Returns how many jobs were handled (sent, failed,
        parked or recovered).
        """
        try:
            handled = await self._housekeeping()
            started = 0
            while True:
                finished = self._finished
                if started < self.batch_size:
                    started += await self._fill(self.batch_size - started)
                if self._tasks:
                    await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
                elif started >= self.batch_size or self._finished == finished:
                    # Done, unless a send finished while we were claiming: its channel's
                    # next job was skipped as busy.
                    return handled + started
        except asyncio.CancelledError:
            await self._cancel_sends()
            raise

    async def _housekeeping(self) -> int:
        """Settle expired leases, resume parked jobs, apply kept reports; returns settled."""
        settled = await self._recover_expired()
        await self._resume_parked()
        async with self._sessions() as session, session.begin():
            events = await settle_kept_reports(session, await self._now(session))
        await publish_committed(self._bus, events)
        return settled

    async def _fill(self, budget: int) -> int:
        """Claim due jobs of idle channels and start their sends; returns how many."""
        started = 0
        while started < budget and len(self._tasks) < self.concurrency and not self._stop.is_set():
            claim = await self._claim_next(self._busy)
            if claim is None:
                break
            self._busy.add(claim.channel_id)
            task = asyncio.create_task(self._handle(claim), name=f"outbox-send-{claim.job_id}")
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._send_done, claim))
            started += 1
        return started

    def _send_done(self, claim: _Claim, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._busy.discard(claim.channel_id)
        self._finished += 1
        if not task.cancelled() and (error := task.exception()) is not None:
            # Unreachable unless recording itself has a bug: the lease settles the job.
            logger.error(
                "outbound job %s (message %s): send task failed: %r",
                claim.job_id,
                claim.message_id,
                error,
                exc_info=error,
            )
        self.wake()  # the channel is free for its next job

    async def _cancel_sends(self) -> None:
        """Cancel the sends in flight (the worker is being killed): their leases settle them."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

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

    async def _now(self, session: AsyncSession) -> datetime:
        return self._clock() if self._clock is not None else await database_now(session)

    def _period(self, channel_kind: str) -> timedelta:
        """How long a job of this kind keeps retrying through transient failures."""
        try:
            period = spec_for(channel_kind).retry_period
        except KeyError:
            period = None
        return period or self.retry_period

    def _gave_up(self, claim: _Claim, reason: str, now: datetime) -> str | None:
        """The give-up reason once the job's retry period has passed, else None."""
        if now < claim.retry_from + self._period(claim.channel_kind):
            return None
        hours = (now - claim.retry_from).total_seconds() / 3600
        return f"gave up after {claim.attempt} attempts over {round(hours, 1):g} hours: {reason}"

    # -- claiming --

    async def _claim_next(self, skip: Collection[uuid.UUID]) -> _Claim | None:
        """Claim one due job on a channel with no send in flight, and commit the claim."""
        skipped = set(skip)
        in_flight = aliased(OutboundJob)
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            # Bounded: a miss means another worker won the race for that job or channel.
            for _ in range(self.batch_size):
                query = (
                    select(
                        OutboundJob.id,
                        OutboundJob.message_id,
                        OutboundJob.channel_id,
                        OutboundJob.retry_from,
                    )
                    .where(
                        OutboundJob.state == JobState.PENDING.value,
                        OutboundJob.next_attempt_at <= now,
                        ~exists().where(
                            in_flight.channel_id == OutboundJob.channel_id,
                            in_flight.state == JobState.SENDING.value,
                        ),
                    )
                    .order_by(OutboundJob.next_attempt_at, OutboundJob.created_at, OutboundJob.id)
                    .limit(1)
                    .with_for_update(skip_locked=True, of=OutboundJob)
                )
                if skipped:
                    query = query.where(OutboundJob.channel_id.not_in(skipped))
                row = (await session.execute(query)).first()
                if row is None:
                    return None
                # The channel's row is the per-channel claim lock (PostgreSQL; SQLite holds
                # the database's write lock): a worker that holds it is claiming there now.
                # NO KEY UPDATE does not block inserts that reference the channel.
                channel_kind = await session.scalar(
                    select(Channel.kind)
                    .where(Channel.id == row.channel_id)
                    .with_for_update(skip_locked=True, key_share=True)
                )
                busy = await session.scalar(
                    select(OutboundJob.id)
                    .where(
                        OutboundJob.channel_id == row.channel_id,
                        OutboundJob.state == JobState.SENDING.value,
                    )
                    .limit(1)
                )
                if channel_kind is None or busy is not None:
                    skipped.add(row.channel_id)
                    continue
                claim_id = new_id()
                attempt = await session.scalar(
                    sql_update(OutboundJob)
                    .where(OutboundJob.id == row.id, OutboundJob.state == JobState.PENDING.value)
                    .values(
                        state=JobState.SENDING.value,
                        attempts=OutboundJob.attempts + 1,
                        lease_until=now + self.lease,
                        worker=self.worker_id,
                        claim_id=claim_id,
                        updated_at=now,
                    )
                    .returning(OutboundJob.attempts)
                    .execution_options(synchronize_session=False)
                )
                if attempt is None:
                    continue
                session.add(
                    DeliveryAttempt(
                        id=claim_id,
                        message_id=row.message_id,
                        channel_id=row.channel_id,
                        attempt=attempt,
                        worker=self.worker_id,
                        started_at=now,
                        outcome=AttemptOutcome.SENDING.value,
                        delivery_rank=0,
                    )
                )
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
                return _Claim(
                    row.id,
                    row.message_id,
                    row.channel_id,
                    channel_kind,
                    attempt,
                    claim_id,
                    row.retry_from,
                )
        return None

    async def _recover_expired(self) -> int:
        """Settle jobs whose worker stopped while sending (see the module docstring)."""
        events: list[Event] = []
        settled = 0
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            rows = (
                await session.execute(
                    select(
                        OutboundJob.id,
                        OutboundJob.message_id,
                        OutboundJob.channel_id,
                        OutboundJob.attempts,
                        OutboundJob.worker,
                        OutboundJob.claim_id,
                        OutboundJob.retry_from,
                        Channel.kind,
                    )
                    .join(Channel, Channel.id == OutboundJob.channel_id)
                    .where(
                        OutboundJob.state == JobState.SENDING.value,
                        OutboundJob.lease_until < now,
                    )
                    .order_by(OutboundJob.lease_until, OutboundJob.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True, of=OutboundJob)
                )
            ).all()
            for row in rows:
                connector = self._connectors(ChannelId(str(row.channel_id)))
                if connector is None:
                    continue  # decided once the channel runs again and its capabilities are known
                claim = _Claim(
                    row.id,
                    row.message_id,
                    row.channel_id,
                    row.kind,
                    row.attempts,
                    row.claim_id,
                    row.retry_from,
                )
                outcome = self._recovery_outcome(claim, connector.capabilities, row.worker, now)
                events += await _record_failure(session, claim, outcome, now, now)
                settled += 1
        await publish_committed(self._bus, events)
        # Jobs left waiting for their channel are not counted: an idle worker stays idle.
        return settled

    def _recovery_outcome(
        self, claim: _Claim, capabilities: Capabilities, owner: str | None, now: datetime
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
            return _Failed(OUTCOME_UNKNOWN, permanent=True, unknown=True)
        gave_up = self._gave_up(claim, "the worker stopped while sending", now)
        if gave_up is not None:
            return _Failed(gave_up, permanent=True, unknown=True)
        logger.warning(
            "outbound job %s (message %s): worker %s stopped while sending; "
            "sending again (the channel drops duplicates)",
            claim.job_id,
            claim.message_id,
            owner,
        )
        return _Failed(
            "the worker stopped while sending; sending again", permanent=False, unknown=True
        )

    async def _resume_parked(self) -> int:
        """Resume parked jobs whose channel recovered; probe channels still refused."""
        resumed = 0
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            groups = (
                await session.execute(
                    select(
                        OutboundJob.channel_id,
                        OutboundJob.parked_for,
                        Channel.health,
                        func.min(OutboundJob.next_attempt_at).label("probe_at"),
                    )
                    .join(Channel, Channel.id == OutboundJob.channel_id)
                    .where(OutboundJob.state == JobState.PARKED.value)
                    .group_by(OutboundJob.channel_id, OutboundJob.parked_for, Channel.health)
                )
            ).all()
            for group in groups:
                if self._connectors(ChannelId(str(group.channel_id))) is None:
                    continue  # still not running here
                refused = group.parked_for == ParkCause.BAD_CREDENTIALS.value
                if not refused or group.health != ChannelHealth.BAD_CREDENTIALS.value:
                    count = await _resume(session, group.channel_id, group.parked_for, now)
                    logger.info(
                        "channel %s recovered: %s parked outbound jobs resume",
                        group.channel_id,
                        count,
                    )
                    resumed += count
                elif group.probe_at <= now:
                    # The credentials may have been fixed at the provider, which tells us
                    # nothing: try one job (the oldest) now and the next in a while.
                    await session.execute(
                        sql_update(OutboundJob)
                        .where(
                            OutboundJob.channel_id == group.channel_id,
                            OutboundJob.state == JobState.PARKED.value,
                            OutboundJob.parked_for == group.parked_for,
                        )
                        .values(next_attempt_at=now + self.park_probe)
                        .execution_options(synchronize_session=False)
                    )
                    resumed += await _resume(
                        session, group.channel_id, group.parked_for, now, limit=1
                    )
        return resumed

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
        events = await self._record_until_stored(claim, outcome)
        await publish_committed(self._bus, events)

    async def _attempt(self, claim: _Claim) -> _Outcome:
        connector = self._connectors(ChannelId(str(claim.channel_id)))
        if connector is None:
            return _Parked(NOT_RUNNING, ParkCause.NOT_RUNNING)
        capabilities = connector.capabilities
        async with self._sessions() as session:
            built = await _build_outbound(session, claim.message_id, capabilities, self.data_dir)
        if isinstance(built, _Failed):
            return built
        refusal = check_capabilities(built, capabilities)
        if refusal is not None:
            return _Failed(refusal, permanent=True)
        timeout = asyncio.timeout(self.send_timeout)
        try:
            async with timeout:
                result = await connector.send(built)
        except TimeoutError:
            if not timeout.expired():
                raise  # the connector's own, untranslated: an unexpected error
            return self._timed_out(claim, capabilities)
        except PermanentError as err:
            return _Failed(str(err) or type(err).__name__, permanent=True)
        except TransientError as err:
            return _Failed(
                str(err) or type(err).__name__, permanent=False, retry_after=err.retry_after
            )
        except AuthError as err:
            # The channel needs a person; its messages wait for them without using attempts.
            return _Parked(f"{REFUSED}: {err}", ParkCause.BAD_CREDENTIALS)
        return _Accepted(result)

    def _timed_out(self, claim: _Claim, capabilities: Capabilities) -> _Failed:
        """A send that outlived the timeout: the provider may have accepted it."""
        seconds = f"{self.send_timeout:g}"
        logger.warning(
            "outbound job %s (message %s, channel %s): send timed out after %ss",
            claim.job_id,
            claim.message_id,
            claim.channel_id,
            seconds,
        )
        if capabilities.idempotent_send:
            return _Failed(
                f"the send timed out after {seconds} s; sending again "
                "(the channel drops duplicates)",
                permanent=False,
                unknown=True,
            )
        return _Failed(
            f"delivery outcome unknown: the send timed out after {seconds} s; "
            "not resent automatically to avoid a duplicate",
            permanent=True,
            unknown=True,
        )

    async def _record_until_stored(self, claim: _Claim, outcome: _Outcome) -> list[Event]:
        """Record the outcome, retrying database errors until it is stored or we stop."""
        delay = self.record_retry_base
        while True:
            try:
                return await self._record(claim, outcome)
            except _RECORD_ERRORS as err:
                if self._stop.is_set():
                    logger.error(
                        "outbound job %s (message %s): could not record its outcome before "
                        "stopping (%s); its lease will settle it",
                        claim.job_id,
                        claim.message_id,
                        err,
                    )
                    return []
                logger.warning(
                    "outbound job %s (message %s): recording the outcome failed (%s); "
                    "retrying in %.1fs",
                    claim.job_id,
                    claim.message_id,
                    err,
                    delay,
                )
                # Cut short by stop, for one last try.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, _RECORD_RETRY_CAP)

    async def _record(self, claim: _Claim, outcome: _Outcome) -> list[Event]:
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            if isinstance(outcome, _Accepted):
                return await self._record_accepted(session, claim, outcome.result, now)
            if isinstance(outcome, _Parked):
                return await self._record_parked(session, claim, outcome, now)
            if not outcome.permanent:
                gave_up = self._gave_up(claim, outcome.reason, now)
                if gave_up is not None:
                    outcome = _Failed(gave_up, permanent=True, unknown=outcome.unknown)
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
            return await _record_failure(session, claim, outcome, now, retry_at)

    async def _record_accepted(
        self, session: AsyncSession, claim: _Claim, result: SendResult, now: datetime
    ) -> list[Event]:
        state = result.state if result.state in _ACCEPTED else DeliveryState.SENT
        rank = DELIVERY_RANK[state]
        provider_id = (
            provider_key(result.provider_message_id) if result.provider_message_id else None
        )
        owned = await session.scalar(
            sql_update(OutboundJob)
            .where(_held(claim))
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
        await _finish_attempt(
            session,
            claim,
            AttemptOutcome.ACCEPTED,
            now,
            provider_message_id=provider_id,
            state=state,
        )
        # The provider's id is a fact whatever the state says: reports are matched by it.
        facts: dict[str, str | None] = {"provider_message_id": provider_id}
        if result.rfc_message_id and (rfc := _rfc_message_id(result.rfc_message_id)):
            # A customer's reply citing only our message threads into its conversation.
            facts["rfc_message_id"] = rfc
        await session.execute(
            sql_update(Message)
            .where(Message.id == claim.message_id)
            .values(**facts)
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
            provider_id,
        )
        events: list[Event] = []
        if conversation_id is not None:
            events.append(delivery_event(claim.message_id, conversation_id, state, None))
        if provider_id is not None:
            events += await apply_kept_reports(session, claim.channel_id, provider_id)
        # The channel's credentials work: what was parked for them may go.
        await _resume(session, claim.channel_id, ParkCause.BAD_CREDENTIALS.value, now)
        await _clear_channel_health(session, claim.channel_id)
        return events

    async def _record_parked(
        self, session: AsyncSession, claim: _Claim, outcome: _Parked, now: datetime
    ) -> list[Event]:
        parked = {
            "state": JobState.PARKED.value,
            "parked_for": outcome.cause.value,
            "parked_at": now,
            # For parked jobs, when the channel is next probed (see _resume_parked).
            "next_attempt_at": now + self.park_probe,
            "lease_until": None,
            "worker": None,
            "last_error": outcome.reason,
            "updated_at": now,
        }
        # Not counted: the attempt never reached a provider willing to take it.
        owned, replaced_unknown = await _settle_claim(
            session, claim, {**parked, "attempts": OutboundJob.attempts - 1}
        )
        if not owned:
            return []
        await _finish_attempt(session, claim, AttemptOutcome.PARKED, now, error=outcome.reason)
        message_ids = [claim.message_id]
        if outcome.cause is ParkCause.BAD_CREDENTIALS:
            # The channel's other waiting jobs would only be refused the same way (and a
            # provider may lock an account that keeps failing to log in).
            message_ids += (
                await session.scalars(
                    sql_update(OutboundJob)
                    .where(
                        OutboundJob.channel_id == claim.channel_id,
                        OutboundJob.state == JobState.PENDING.value,
                    )
                    .values(**parked)
                    .returning(OutboundJob.message_id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
        events: list[Event] = []
        for start in range(0, len(message_ids), _CHUNK):
            events += await _mark_messages(
                session,
                message_ids[start : start + _CHUNK],
                DeliveryState.FAILED_TEMPORARY,
                outcome.reason,
                now,
                replaced_unknown,
            )
        await _record_channel_health(session, claim.channel_id, outcome)
        logger.warning(
            "outbound message %s on channel %s parked (%s jobs): %s",
            claim.message_id,
            claim.channel_id,
            len(message_ids),
            outcome.reason,
        )
        return events


def _held(claim: _Claim) -> ColumnElement[bool]:
    """The WHERE clause matching the job only while it is still in this claim."""
    return and_(
        OutboundJob.id == claim.job_id,
        OutboundJob.state == JobState.SENDING.value,
        OutboundJob.claim_id == claim.claim_id
        if claim.claim_id is not None
        else and_(OutboundJob.claim_id.is_(None), OutboundJob.attempts == claim.attempt),
    )


async def _settle_claim(
    session: AsyncSession, claim: _Claim, values: dict[str, object]
) -> tuple[bool, bool]:
    """Apply `values` to the job if still in this claim; returns (owned, replaced_unknown).

    When recovery already declared this very claim's outcome unknown, the worker that
    now knows the outcome replaces that verdict (timeline/outbox.py's exception 3).
    """
    owned = await session.scalar(
        sql_update(OutboundJob)
        .where(_held(claim))
        .values(**values)
        .returning(OutboundJob.id)
        .execution_options(synchronize_session=False)
    )
    if owned is not None:
        return True, False
    if claim.claim_id is not None:
        replaced = await session.scalar(
            sql_update(OutboundJob)
            .where(
                OutboundJob.id == claim.job_id,
                OutboundJob.claim_id == claim.claim_id,
                OutboundJob.state == JobState.DEAD.value,
                OutboundJob.last_error == OUTCOME_UNKNOWN,
            )
            .values(**values)
            .returning(OutboundJob.id)
            .execution_options(synchronize_session=False)
        )
        if replaced is not None:
            logger.warning(
                "outbound job %s (message %s): recorded after its lease was recovered",
                claim.job_id,
                claim.message_id,
            )
            return True, True
    logger.warning(
        "outbound job %s (message %s): claim lost before its outcome was recorded",
        claim.job_id,
        claim.message_id,
    )
    return False, False


async def _record_failure(
    session: AsyncSession,
    claim: _Claim,
    outcome: _Failed,
    now: datetime,
    retry_at: datetime,
) -> list[Event]:
    """Record a failed attempt of a claim (if still held); returns the events to publish."""
    job_state = JobState.DEAD if outcome.permanent else JobState.PENDING
    owned, replaced_unknown = await _settle_claim(
        session,
        claim,
        {
            "state": job_state.value,
            "next_attempt_at": retry_at,
            "lease_until": None,
            "worker": None,
            "last_error": outcome.reason,
            "updated_at": now,
        },
    )
    if not owned:
        return []
    if outcome.unknown:
        attempt_outcome = AttemptOutcome.UNKNOWN
    elif outcome.permanent:
        attempt_outcome = AttemptOutcome.REFUSED
    else:
        attempt_outcome = AttemptOutcome.FAILED
    await _finish_attempt(session, claim, attempt_outcome, now, error=outcome.reason)
    state = DeliveryState.FAILED_PERMANENT if outcome.permanent else DeliveryState.FAILED_TEMPORARY
    return await _mark_messages(
        session, [claim.message_id], state, outcome.reason, now, replaced_unknown
    )


async def _mark_messages(
    session: AsyncSession,
    message_ids: Sequence[uuid.UUID],
    state: DeliveryState,
    reason: str,
    now: datetime,
    replaced_unknown: bool,
) -> list[Event]:
    """Set a failure state on messages whose attempt it is; returns their events."""
    if state is DeliveryState.FAILED_PERMANENT:
        condition = Message.delivery_rank < DELIVERY_RANK[state]
    else:
        # A failed attempt steps back from sending (timeline/outbox.py's docstring, exception 1).
        condition = Message.delivery_rank <= _SENDING_RANK
    if replaced_unknown:
        condition = or_(condition, Message.delivery_error == OUTCOME_UNKNOWN)
    rows = (
        await session.execute(
            sql_update(Message)
            .where(Message.id.in_(message_ids), condition)
            .values(
                delivery_state=state.value,
                delivery_rank=DELIVERY_RANK[state],
                delivery_error=reason,
                delivery_updated_at=now,
            )
            .returning(Message.id, Message.conversation_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    return [delivery_event(row.id, row.conversation_id, state, reason) for row in rows]


async def _finish_attempt(
    session: AsyncSession,
    claim: _Claim,
    outcome: AttemptOutcome,
    now: datetime,
    *,
    error: str | None = None,
    provider_message_id: str | None = None,
    state: DeliveryState | None = None,
) -> None:
    """Close the claim's history row with what became of it."""
    if claim.claim_id is None:
        return
    values: dict[str, object] = {"outcome": outcome.value, "finished_at": now, "error": error}
    if provider_message_id is not None:
        values["provider_message_id"] = provider_message_id
    if state is not None:
        values.update(
            delivery_state=state.value, delivery_rank=DELIVERY_RANK[state], delivery_updated_at=now
        )
    await session.execute(
        sql_update(DeliveryAttempt)
        .where(DeliveryAttempt.id == claim.claim_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def _resume(
    session: AsyncSession,
    channel_id: uuid.UUID,
    cause: str | None,
    now: datetime,
    *,
    limit: int | None = None,
) -> int:
    """Move a channel's jobs parked for `cause` back to pending, due now; returns how many.

    Each job's retry period is extended by the time it spent parked.
    """
    query = (
        select(OutboundJob.id, OutboundJob.retry_from, OutboundJob.parked_at)
        .where(
            OutboundJob.channel_id == channel_id,
            OutboundJob.state == JobState.PARKED.value,
            OutboundJob.parked_for == cause
            if cause is not None
            else OutboundJob.parked_for.is_(None),
        )
        .order_by(OutboundJob.created_at, OutboundJob.id)
        .with_for_update(skip_locked=True)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.execute(query)).all()
    for row in rows:
        parked_for = max(now - row.parked_at, timedelta(0)) if row.parked_at else timedelta(0)
        await session.execute(
            sql_update(OutboundJob)
            .where(OutboundJob.id == row.id, OutboundJob.state == JobState.PARKED.value)
            .values(
                state=JobState.PENDING.value,
                next_attempt_at=now,
                retry_from=row.retry_from + parked_for,
                parked_for=None,
                parked_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return len(rows)


async def _record_channel_health(
    session: AsyncSession, channel_id: uuid.UUID, outcome: _Parked
) -> None:
    """Show why the channel's replies wait, in the same transaction that parks them.

    The same values timeline.channel_state.record_health stores, written here so that
    parking and the health that resumes it commit together.
    """
    if outcome.cause is ParkCause.BAD_CREDENTIALS:
        await session.execute(
            sql_update(Channel)
            .where(Channel.id == channel_id)
            .values(health=ChannelHealth.BAD_CREDENTIALS.value, health_reason=outcome.reason)
            .execution_options(synchronize_session=False)
        )
        return
    # A health that already names something a person must fix says more than ours.
    await session.execute(
        sql_update(Channel)
        .where(
            Channel.id == channel_id,
            Channel.health.not_in(
                [ChannelHealth.BAD_CREDENTIALS.value, ChannelHealth.CONFIG_ERROR.value]
            ),
        )
        .values(health=ChannelHealth.UNKNOWN.value, health_reason=outcome.reason)
        .execution_options(synchronize_session=False)
    )


async def _clear_channel_health(session: AsyncSession, channel_id: uuid.UUID) -> None:
    """After a send went through, take back what parking said about the channel's health.

    Only the outbox's own verdicts: a connector's (IMAP may refuse what SMTP accepts)
    stays until that connector reports otherwise.
    """
    await session.execute(
        sql_update(Channel)
        .where(
            Channel.id == channel_id,
            or_(
                and_(
                    Channel.health == ChannelHealth.UNKNOWN.value,
                    Channel.health_reason == NOT_RUNNING,
                ),
                and_(
                    Channel.health == ChannelHealth.BAD_CREDENTIALS.value,
                    Channel.health_reason.startswith(f"{REFUSED}: ", autoescape=True),
                ),
            ),
        )
        .values(health=ChannelHealth.CONNECTED.value, health_reason=None)
        .execution_options(synchronize_session=False)
    )


def _rfc_message_id(value: str) -> str | None:
    """A Message-ID as ingestion stores and looks it up: no angle brackets, bounded."""
    cleaned = value.strip().strip("<>").strip()
    return bounded_key(cleaned) if cleaned else None


async def _build_outbound(
    session: AsyncSession, message_id: uuid.UUID, capabilities: Capabilities, data_dir: Path
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
    try:
        identity_kind = spec_for(channel_kind).recipient_kind
    except KeyError:
        identity_kind = None
    if identity_kind is None:
        return _Failed(f"replies cannot be sent on a {channel_kind} channel", permanent=True)
    recipient = await _recipient(session, message, identity_kind)
    if recipient is None:
        return _Failed(
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
        return _Failed(refusal, permanent=True)
    attachments = await asyncio.to_thread(_load_files, data_dir, files) if files else ()
    if isinstance(attachments, _Failed):
        return attachments
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
            subject=subject,
        ),
        attachments=attachments,
    )


def _load_files(
    data_dir: Path, files: Sequence[Attachment]
) -> tuple[OutboundAttachment, ...] | _Failed:
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
            return _Failed(
                f"the attachment {name!r} is missing from the file store", permanent=True
            )
        loaded.append(OutboundAttachment(filename=name, content_type=file.content_type, data=data))
    return tuple(loaded)


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
