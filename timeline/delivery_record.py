"""Recording what became of a claimed outbound job, in the transaction that stores it.

A claim (`Claim`) is a job in state 'sending' with a fresh ``claim_id``, taken by
timeline/dispatcher.py. Outcomes are recorded only while the job is still in that claim,
with the exception below. Each function also closes the claim's `DeliveryAttempt` row
and returns the events to publish after the commit.

- Accepted (`record_accepted`) → job 'done', message 'sent' (or the better state the
  connector reported) with the provider's message id and, for email, the Message-ID it
  went out with; kept early reports for that id are applied, jobs of the channel parked
  for bad credentials resume (the credentials evidently work), and a health the outbox
  itself set when it parked the channel becomes connected (timeline/parking.py).
- Failed (`record_failure`) → job back to 'pending' at the given retry time, message
  'failed_temporary' with the error; or, when the failure is permanent, job 'dead' and
  message 'failed_permanent' with the reason.
- Parked (`record_parked`) → job 'parked', its attempt not counted; for bad credentials
  the channel's other pending jobs park with it; the messages show 'failed_temporary'
  with the reason and the channel's health says why (timeline/parking.py).

The exception: if a hung worker's send returns after crash recovery settled its job, its
outcome is still recorded. A success stops a pending resend and replaces the
`OUTCOME_UNKNOWN` verdict; a failure replaces that verdict for its own claim
(timeline/outbox.py's exception 3).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.types import DELIVERY_RANK, DeliveryState, SendResult
from timeline.events import Event
from timeline.models import (
    AttemptOutcome,
    DeliveryAttempt,
    JobState,
    Message,
    OutboundJob,
    ParkCause,
)
from timeline.outbox import OUTCOME_UNKNOWN, apply_kept_reports, delivery_event, provider_key
from timeline.parking import clear_channel_health, record_channel_health, resume
from timeline.send_outcome import Failed, Parked
from timeline.storable import bounded_key

logger = logging.getLogger(__name__)

_SENDING_RANK = DELIVERY_RANK[DeliveryState.SENDING]
_ACCEPTED = (DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.READ)
_CHUNK = 500  # message ids per UPDATE ... WHERE id IN (...)


@dataclass(frozen=True, slots=True)
class Claim:
    """A job this worker holds; `claim_id` identifies the claim in the database."""

    job_id: uuid.UUID
    message_id: uuid.UUID
    channel_id: uuid.UUID
    channel_kind: str
    attempt: int  # the job's counted attempts including this one
    claim_id: uuid.UUID | None  # None only for jobs claimed before attempts were recorded
    retry_from: datetime


async def record_accepted(
    session: AsyncSession, claim: Claim, result: SendResult, now: datetime
) -> list[Event]:
    """Record that the provider accepted the claim's message; returns the events to publish."""
    state = result.state if result.state in _ACCEPTED else DeliveryState.SENT
    rank = DELIVERY_RANK[state]
    provider_id = provider_key(result.provider_message_id) if result.provider_message_id else None
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
    await resume(session, claim.channel_id, ParkCause.BAD_CREDENTIALS.value, now)
    events += await clear_channel_health(session, claim.channel_id)
    return events


async def record_parked(
    session: AsyncSession, claim: Claim, outcome: Parked, now: datetime, *, park_probe: timedelta
) -> list[Event]:
    """Park the claim's job until its channel recovers; returns the events to publish."""
    parked = {
        "state": JobState.PARKED.value,
        "parked_for": outcome.cause.value,
        "parked_at": now,
        # For parked jobs, when the channel is next probed (see parking.resume_parked).
        "next_attempt_at": now + park_probe,
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
    events += await record_channel_health(session, claim.channel_id, outcome)
    logger.warning(
        "outbound message %s on channel %s parked (%s jobs): %s",
        claim.message_id,
        claim.channel_id,
        len(message_ids),
        outcome.reason,
    )
    return events


def _held(claim: Claim) -> ColumnElement[bool]:
    """The WHERE clause matching the job only while it is still in this claim."""
    return and_(
        OutboundJob.id == claim.job_id,
        OutboundJob.state == JobState.SENDING.value,
        OutboundJob.claim_id == claim.claim_id
        if claim.claim_id is not None
        else and_(OutboundJob.claim_id.is_(None), OutboundJob.attempts == claim.attempt),
    )


async def _settle_claim(
    session: AsyncSession, claim: Claim, values: dict[str, object]
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


async def record_failure(
    session: AsyncSession,
    claim: Claim,
    outcome: Failed,
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
    claim: Claim,
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


def _rfc_message_id(value: str) -> str | None:
    """A Message-ID as ingestion stores and looks it up: no angle brackets, bounded."""
    cleaned = value.strip().strip("<>").strip()
    return bounded_key(cleaned) if cleaned else None
