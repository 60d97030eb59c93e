"""SLA policies: which applies to a conversation, how its targets stand, and the worker
that records each breach exactly once.

A policy sets targets in seconds for the first response, the next response (each later
customer turn) and the resolution of a cycle, measured in the conversation's business
hours (inbox/response_metrics.py `calendar_for`; wall time without a calendar). The
first enabled policy by `position` whose conditions all hold applies; a condition left
empty matches every conversation. Priority is read with a fallback, since the column is
added by the conversation workflow: without it, policies naming priorities never match.

Only the current cycle of a conversation is timed. Status changes other than resolving
(pending, snoozed) do not stop a clock: the customer is still waiting.

`SlaWatch` (worker) first records metrics for conversations with new activity, which
also refreshes their rows in `sla_clocks`, then claims overdue clocks with a guarded
`UPDATE ... SET breached_at = now WHERE breached_at IS NULL`, in the transaction that
records the "sla.breached" timeline event; the bus event goes out after the commit.
Several workers racing claim each (conversation, cycle, target) once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from inbox import business_hours
from inbox.business_hours import Calendar
from inbox.metric_models import SlaClock, SlaPolicy, SlaTarget
from inbox.response_metrics import Derivation, Loaded, MetricRecorder, dialect_insert
from timeline.due_rounds import DueRounds
from timeline.events import Event, EventBus, publish_committed
from timeline.models import Conversation, ConversationStatus, TimelineEvent

logger = logging.getLogger(__name__)

SLA_BREACHED = "sla.breached"
AT_RISK_SHARE = 0.2  # under this share of the target left: "at_risk"


def applies(policy: SlaPolicy, conversation: Conversation) -> bool:
    """True when every condition of the policy holds for the conversation."""
    if policy.channel_ids and str(conversation.channel_id) not in policy.channel_ids:
        return False
    if policy.team_ids and (
        conversation.team_id is None or str(conversation.team_id) not in policy.team_ids
    ):
        return False
    priority = getattr(conversation, "priority", None)
    return not policy.priorities or priority in policy.priorities


async def policy_for(session: AsyncSession, conversation: Conversation) -> SlaPolicy | None:
    """The policy that applies to the conversation, if any."""
    policies = await session.scalars(
        select(SlaPolicy)
        .where(SlaPolicy.enabled.is_(True))
        .order_by(SlaPolicy.position, SlaPolicy.created_at, SlaPolicy.id)
    )
    return next((p for p in policies if applies(p, conversation)), None)


@dataclass(frozen=True, slots=True)
class Clock:
    """One target of the current cycle: when it started, is due, and was met."""

    target: SlaTarget
    cycle: int
    seconds: int
    started_at: datetime
    due_at: datetime
    met_at: datetime | None


def clocks(derivation: Derivation, policy: SlaPolicy, calendar: Calendar | None) -> list[Clock]:
    """The clocks of the conversation's current cycle under the policy."""
    cycle = derivation.current
    if cycle is None:
        return []
    wanted: list[tuple[SlaTarget, int | None, datetime | None, datetime | None]] = [
        (
            SlaTarget.FIRST_RESPONSE,
            policy.first_response_seconds,
            cycle.first_customer_at,
            cycle.first_response_at,
        ),
        (
            SlaTarget.NEXT_RESPONSE,
            policy.next_response_seconds,
            cycle.turn_started_at,
            cycle.turn_answered_at,
        ),
        (SlaTarget.RESOLUTION, policy.resolution_seconds, cycle.opened_at, cycle.resolved_at),
    ]
    return [
        Clock(
            target,
            cycle.number,
            seconds,
            started,
            business_hours.add_business_seconds(calendar, started, seconds),
            met,
        )
        for target, seconds, started, met in wanted
        if seconds is not None and started is not None
    ]


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """How one target stands now."""

    target: SlaTarget
    cycle: int
    started_at: datetime
    due_at: datetime
    met_at: datetime | None
    remaining_seconds: float  # business seconds left (negative: overdue by that much)
    state: str  # ok, at_risk, breached, met


def target_status(clock: Clock, calendar: Calendar | None, now: datetime) -> TargetStatus:
    """The state of a clock at `now` (or when it was met)."""
    at = clock.met_at if clock.met_at is not None else now
    if at <= clock.due_at:
        remaining = business_hours.business_seconds(calendar, at, clock.due_at)
    else:
        remaining = -business_hours.business_seconds(calendar, clock.due_at, at)
    if at >= clock.due_at and (clock.met_at is None or clock.met_at > clock.due_at):
        state = "breached"
    elif clock.met_at is not None:
        state = "met"
    elif remaining < AT_RISK_SHARE * clock.seconds:
        state = "at_risk"
    else:
        state = "ok"
    return TargetStatus(
        clock.target,
        clock.cycle,
        clock.started_at,
        clock.due_at,
        clock.met_at,
        remaining,
        state,
    )


async def statuses(session: AsyncSession, loaded: Loaded, now: datetime) -> list[TargetStatus]:
    """How the SLA targets of a conversation's current cycle stand at `now`."""
    policy = await policy_for(session, loaded.conversation)
    if policy is None:
        return []
    return [
        target_status(clock, loaded.calendar, now)
        for clock in clocks(loaded.derivation, policy, loaded.calendar)
    ]


async def refresh_clocks(session: AsyncSession, loaded: Loaded, now: datetime) -> None:
    """Bring the conversation's `sla_clocks` rows in line with its derivation.

    A resolved conversation only updates the clocks it has (they stop); a live one
    upserts them. `breached_at` is never touched here: a breach stays recorded.
    """
    conversation = loaded.conversation
    policy = await policy_for(session, conversation)
    wanted = [] if policy is None else clocks(loaded.derivation, policy, loaded.calendar)
    live = conversation.status != ConversationStatus.RESOLVED.value
    for clock in wanted:
        values = {
            "policy_id": policy.id if policy is not None else None,
            "started_at": clock.started_at,
            "due_at": clock.due_at,
            "met_at": clock.met_at,
        }
        if live:
            statement = dialect_insert(session)(SlaClock).values(
                conversation_id=conversation.id,
                cycle=clock.cycle,
                target=clock.target.value,
                breached_at=None,
                **values,
            )
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["conversation_id", "cycle", "target"], set_=values
                )
            )
        else:
            await session.execute(
                update(SlaClock)
                .where(
                    SlaClock.conversation_id == conversation.id,
                    SlaClock.cycle == clock.cycle,
                    SlaClock.target == clock.target.value,
                )
                .values(**values)
            )
    keep = [(c.cycle, c.target.value) for c in wanted]
    stale = delete(SlaClock).where(
        SlaClock.conversation_id == conversation.id, SlaClock.breached_at.is_(None)
    )
    if keep:
        stale = stale.where(tuple_(SlaClock.cycle, SlaClock.target).not_in(keep))
    await session.execute(stale)


def _overdue(now: datetime) -> tuple[Any, ...]:
    return (
        SlaClock.breached_at.is_(None),
        SlaClock.due_at <= now,
        # Met late (while no worker ran) is a breach too.
        or_(SlaClock.met_at.is_(None), SlaClock.met_at > SlaClock.due_at),
    )


class SlaWatch(DueRounds):
    """The worker's loop: record metrics, refresh clocks, record breaches once."""

    name = "SLA watch"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        *,
        batch_size: int = 100,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(sessions, bus, batch_size=batch_size, clock=clock)
        self.recorder = MetricRecorder(sessions, clock=clock, also=[refresh_clocks])

    async def before_round(self) -> None:
        """Record the metrics and refresh the clocks a breach is judged by."""
        await self.recorder.run_once()

    async def run_once(self) -> int:
        """Claim up to a batch of overdue clocks, record their events, then publish."""
        events: list[Event] = []
        async with self._sessions() as session, session.begin():
            now = await self.now(session)
            due = (
                await session.execute(
                    select(SlaClock.conversation_id, SlaClock.cycle, SlaClock.target)
                    .where(*_overdue(now))
                    .order_by(SlaClock.due_at)
                    .limit(self.batch_size)
                )
            ).all()
            for conversation_id, cycle, target in due:
                event = await self._claim(session, conversation_id, cycle, target, now)
                if event is not None:
                    events.append(event)
        await publish_committed(self._bus, events)
        return len(events)

    async def _claim(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        cycle: int,
        target: str,
        now: datetime,
    ) -> Event | None:
        claimed = (
            await session.execute(
                update(SlaClock)
                # The guard repeats the whole condition: another worker may have claimed
                # it, or a reply met it, since it was selected.
                .where(
                    and_(
                        SlaClock.conversation_id == conversation_id,
                        SlaClock.cycle == cycle,
                        SlaClock.target == target,
                    ),
                    *_overdue(now),
                )
                .values(breached_at=now)
                .returning(SlaClock.due_at, SlaClock.policy_id)
                .execution_options(synchronize_session=False)
            )
        ).first()
        if claimed is None:
            return None
        conversation = await session.get(Conversation, conversation_id)
        if conversation is None:  # the foreign key cascades, so this is never seen
            return None
        data = {
            "target": target,
            "cycle": cycle,
            "due_at": claimed.due_at.isoformat(),
            "policy_id": str(claimed.policy_id),
        }
        session.add(
            TimelineEvent(
                contact_id=conversation.contact_id,
                conversation_id=conversation_id,
                kind=SLA_BREACHED,
                data=data,
                occurred_at=now,
            )
        )
        return Event(
            SLA_BREACHED,
            {
                **data,
                "conversation_id": str(conversation_id),
                "contact_id": str(conversation.contact_id),
                "channel_id": str(conversation.channel_id),
                "assignee_id": None
                if conversation.assignee_id is None
                else str(conversation.assignee_id),
            },
        )
