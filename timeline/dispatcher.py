"""The outbound dispatcher: workers claim due outbox jobs, send them and record outcomes.

A `Dispatcher` (in `switchboard serve` or `switchboard worker`) claims due jobs queued by
timeline/outbox.py, hands each to the channel's connector, and records the outcome; events
go on the bus only after the commit that records them. Delivery state only moves forward,
with the exceptions listed in timeline/outbox.py's docstring. The parts:

- timeline/outbound_build.py builds the message the connector sends and checks it
  against the channel's capabilities;
- timeline/send_outcome.py holds what became of an attempt (accepted, failed, parked);
- timeline/delivery_record.py writes each outcome to the job, the message and its
  attempt history;
- timeline/parking.py parks jobs of a channel that cannot send, keeps its health, and
  resumes them when it recovers.

This module decides: which job to claim, when, how many at once, which outcome an
attempt had, and when to retry or give up.

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
recorded only while the job is still in that claim (timeline/delivery_record.py).

Outcomes (what each one writes: timeline/delivery_record.py).
- Accepted → job 'done', message 'sent'.
- `TransientError` or any unexpected exception → job back to 'pending' after
  `retry_delay` (capped exponential backoff with jitter, never before the provider's
  ``retry_after``), message 'failed_temporary' with the error. Once the retry period has
  passed (the channel kind's ``retry_period`` from connectors/registry.py, else
  ``retry_period``: SWITCHBOARD_OUTBOX_RETRY_HOURS) the next failure is permanent: "gave
  up after N attempts over H hours: <reason>".
- `PermanentError`, a message the channel cannot carry, a contact with no address on
  the channel or a missing attachment file (timeline/outbound_build.py) → job 'dead',
  message 'failed_permanent' with the reason.
- A channel whose connector is not running, or whose provider refused our credentials
  (`AuthError`) → the job is parked without using an attempt until the channel recovers
  (timeline/parking.py).

Unknown outcomes. A send that outlives ``send_timeout``, or a job found in 'sending'
whose lease has expired (its worker died or hung), may or may not have been accepted by
the provider. If the channel's connector declares ``capabilities.idempotent_send`` (the
provider drops a repeat of the same `Outbound.message_id`), the job goes back to
'pending' and is sent again (within the retry period). Otherwise the job is 'dead' and
the message 'failed_permanent' with an "outcome unknown" error (`OUTCOME_UNKNOWN`, or
the timeout's own reason): it is never sent a second time silently; an agent who checked
may retry it. While a channel's connector is not running, its expired jobs wait (their
idempotency cannot be known). If a hung worker's send does return after its job was
recovered, its outcome is still recorded (timeline/delivery_record.py).
``lease_seconds`` must exceed ``send_timeout``.

Recording. A database that is unavailable (or a deadlock) while recording an outcome is
retried with backoff until the outcome is stored (after `run`'s stop is set, once more),
so a known outcome is never turned into an unknown one by a database hiccup. A refusal of
the values themselves would be refused forever: it is logged and the lease settles the
job (reasons are made storable before that can happen: timeline/send_outcome.py).

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
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from connectors.base import Capabilities, Connector
from connectors.errors import AuthError, PermanentError, TransientError
from connectors.registry import spec_for
from connectors.types import DELIVERY_RANK, ChannelId, DeliveryState, Outbound
from timeline.clock import database_now
from timeline.db import is_conflict, is_unavailable
from timeline.delivery_record import Claim, record_accepted, record_failure, record_parked
from timeline.events import Event, EventBus, publish_committed
from timeline.ids import new_id
from timeline.models import (
    AttemptOutcome,
    Channel,
    DeliveryAttempt,
    JobState,
    Message,
    OutboundJob,
    ParkCause,
)
from timeline.outbound_build import build_outbound, check_capabilities
from timeline.outbox import OUTCOME_UNKNOWN, settle_kept_reports
from timeline.parking import NOT_RUNNING, REFUSED, resume_parked
from timeline.send_outcome import Accepted, Failed, Outcome, Parked

logger = logging.getLogger(__name__)

DEFAULT_RETRY_PERIOD = timedelta(hours=24)
# The order due jobs are sent in.
_QUEUE_ORDER = (OutboundJob.next_attempt_at, OutboundJob.created_at, OutboundJob.id)
_SENDING_RANK = DELIVERY_RANK[DeliveryState.SENDING]
_RECORD_RETRY_CAP = 30.0  # seconds between attempts to store an outcome, at most


# Recipients whose pacing is remembered before expired entries are dropped.
_PACED_RECIPIENTS = 10_000


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
        self._next_for_recipient: dict[tuple[uuid.UUID, str], float] = {}
        # How the provider's pace is waited out (tests record the holds instead of timing).
        self.hold: Callable[[float], Awaitable[None]] = asyncio.sleep
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
                    # Claims first: a reply that woke us is on its way while the
                    # housekeeping runs.
                    handled += await self._fill(self.concurrency)
                    if loop.time() >= housekeeping_due:
                        housekeeping_due = loop.time() + idle_interval
                        handled += await self._housekeeping()
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

    def _send_done(self, claim: Claim, task: asyncio.Task[None]) -> None:
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

    def _gave_up(self, claim: Claim, reason: str, now: datetime) -> str | None:
        """The give-up reason once the job's retry period has passed, else None."""
        if now < claim.retry_from + self._period(claim.channel_kind):
            return None
        hours = (now - claim.retry_from).total_seconds() / 3600
        return f"gave up after {claim.attempt} attempts over {round(hours, 1):g} hours: {reason}"

    # -- claiming --

    async def _claim_next(self, skip: Collection[uuid.UUID]) -> Claim | None:
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
                    .order_by(*_QUEUE_ORDER)
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
                channel_id = row.channel_id
                if channel_kind is None or busy is not None:
                    skipped.add(channel_id)
                    continue
                # The job found above is the first due one this worker could lock, not
                # necessarily the channel's first: another worker may hold that one while
                # it looks for the channel lock we now hold. Claim only the channel's first
                # due job, so replies never overtake each other; if someone else holds it,
                # leave the channel to them this round (never wait: no lock cycles).
                first = await session.scalar(
                    select(OutboundJob.id)
                    .where(
                        OutboundJob.channel_id == row.channel_id,
                        OutboundJob.state == JobState.PENDING.value,
                        OutboundJob.next_attempt_at <= now,
                    )
                    .order_by(*_QUEUE_ORDER)
                    .limit(1)
                )
                if first is not None and first != row.id:
                    row = (
                        await session.execute(
                            select(
                                OutboundJob.id,
                                OutboundJob.message_id,
                                OutboundJob.channel_id,
                                OutboundJob.retry_from,
                            )
                            .where(
                                OutboundJob.id == first,
                                OutboundJob.state == JobState.PENDING.value,
                            )
                            .with_for_update(skip_locked=True)
                        )
                    ).first()
                if first is None or row is None:
                    skipped.add(channel_id)
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
                return Claim(
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
                claim = Claim(
                    row.id,
                    row.message_id,
                    row.channel_id,
                    row.kind,
                    row.attempts,
                    row.claim_id,
                    row.retry_from,
                )
                outcome = self._recovery_outcome(claim, connector.capabilities, row.worker, now)
                events += await record_failure(session, claim, outcome, now, now)
                settled += 1
        await publish_committed(self._bus, events)
        # Jobs left waiting for their channel are not counted: an idle worker stays idle.
        return settled

    def _recovery_outcome(
        self, claim: Claim, capabilities: Capabilities, owner: str | None, now: datetime
    ) -> Failed:
        """What becomes of a job whose worker stopped while sending (module docstring)."""
        if not capabilities.idempotent_send:
            logger.warning(
                "outbound job %s (message %s): worker %s stopped while sending; "
                "outcome unknown, not resent",
                claim.job_id,
                claim.message_id,
                owner,
            )
            return Failed(OUTCOME_UNKNOWN, permanent=True, unknown=True)
        gave_up = self._gave_up(claim, "the worker stopped while sending", now)
        if gave_up is not None:
            return Failed(gave_up, permanent=True, unknown=True)
        logger.warning(
            "outbound job %s (message %s): worker %s stopped while sending; "
            "sending again (the channel drops duplicates)",
            claim.job_id,
            claim.message_id,
            owner,
        )
        return Failed(
            "the worker stopped while sending; sending again", permanent=False, unknown=True
        )

    async def _resume_parked(self) -> int:
        """Resume parked jobs whose channel recovered; probe channels still refused."""
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            return await resume_parked(session, now, self._running, self.park_probe)

    def _running(self, channel_id: uuid.UUID) -> bool:
        """Whether the channel's connector runs in this worker."""
        return self._connectors(ChannelId(str(channel_id))) is not None

    # -- one job --

    async def _handle(self, claim: Claim) -> None:
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
            outcome = Failed(f"unexpected error: {type(err).__name__}: {err}", permanent=False)
        events = await self._record_until_stored(claim, outcome)
        await publish_committed(self._bus, events)

    async def _attempt(self, claim: Claim) -> Outcome:
        connector = self._connectors(ChannelId(str(claim.channel_id)))
        if connector is None:
            return Parked(NOT_RUNNING, ParkCause.NOT_RUNNING)
        capabilities = connector.capabilities
        async with self._sessions() as session:
            built = await build_outbound(session, claim.message_id, capabilities, self.data_dir)
        if isinstance(built, Failed):
            return built
        refusal = check_capabilities(built, capabilities)
        if refusal is not None:
            return Failed(refusal, permanent=True)
        await self._pace_recipient(claim.channel_id, built.recipient, capabilities)
        started = asyncio.get_running_loop().time()
        outcome = await self._send(claim, connector, built)
        # A channel sends one message at a time across all workers (the claim), so holding
        # this send's slot for the provider's interval spaces the channel's sends however
        # many workers take them: a burst of replies goes out at the provider's pace
        # instead of being refused by it.
        if capabilities.sends_per_second:
            spent = asyncio.get_running_loop().time() - started
            await self.hold(max(0.0, 1 / capabilities.sends_per_second - spent))
        return outcome

    async def _pace_recipient(
        self, channel_id: uuid.UUID, recipient: str, capabilities: Capabilities
    ) -> None:
        """Wait until the provider takes another message for this recipient (Telegram:
        about one a second per chat). Kept per process: a provider that still says
        "too many" gets a retry after the interval it names."""
        rate = capabilities.sends_per_second_per_recipient
        if not rate:
            return
        loop = asyncio.get_running_loop()
        key = (channel_id, recipient)
        wait = self._next_for_recipient.get(key, 0.0) - loop.time()
        if wait > 0:
            await self.hold(wait)
        self._next_for_recipient[key] = loop.time() + 1 / rate
        if len(self._next_for_recipient) > _PACED_RECIPIENTS:
            now = loop.time()
            self._next_for_recipient = {
                k: t for k, t in self._next_for_recipient.items() if t > now
            }

    async def _send(self, claim: Claim, connector: Connector, built: Outbound) -> Outcome:
        capabilities = connector.capabilities
        timeout = asyncio.timeout(self.send_timeout)
        try:
            async with timeout:
                result = await connector.send(built)
        except TimeoutError:
            if not timeout.expired():
                raise  # the connector's own, untranslated: an unexpected error
            return self._timed_out(claim, capabilities)
        except PermanentError as err:
            return Failed(str(err) or type(err).__name__, permanent=True)
        except TransientError as err:
            return Failed(
                str(err) or type(err).__name__, permanent=False, retry_after=err.retry_after
            )
        except AuthError as err:
            # The channel needs a person; its messages wait for them without using attempts.
            return Parked(f"{REFUSED}: {err}", ParkCause.BAD_CREDENTIALS)
        return Accepted(result)

    def _timed_out(self, claim: Claim, capabilities: Capabilities) -> Failed:
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
            return Failed(
                f"the send timed out after {seconds} s; sending again "
                "(the channel drops duplicates)",
                permanent=False,
                unknown=True,
            )
        return Failed(
            f"delivery outcome unknown: the send timed out after {seconds} s; "
            "not resent automatically to avoid a duplicate",
            permanent=True,
            unknown=True,
        )

    async def _record_until_stored(self, claim: Claim, outcome: Outcome) -> list[Event]:
        """Record the outcome, retrying database errors until it is stored or we stop."""
        delay = self.record_retry_base
        while True:
            try:
                return await self._record(claim, outcome)
            except (SQLAlchemyError, OSError) as err:
                if not (is_unavailable(err) or is_conflict(err)):
                    # The database refuses what we record: trying again would refuse it
                    # again, forever. The lease settles the job (module docstring).
                    logger.exception(
                        "outbound job %s (message %s): the database refused its outcome",
                        claim.job_id,
                        claim.message_id,
                    )
                    return []
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

    async def _record(self, claim: Claim, outcome: Outcome) -> list[Event]:
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            if isinstance(outcome, Accepted):
                return await record_accepted(session, claim, outcome.result, now)
            if isinstance(outcome, Parked):
                return await record_parked(session, claim, outcome, now, park_probe=self.park_probe)
            if not outcome.permanent:
                gave_up = self._gave_up(claim, outcome.reason, now)
                if gave_up is not None:
                    outcome = Failed(gave_up, permanent=True, unknown=outcome.unknown)
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
            return await record_failure(session, claim, outcome, now, retry_at)
