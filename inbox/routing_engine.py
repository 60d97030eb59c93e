"""Runs the routing rules on each inbound message once it has committed, exactly once.

The source is the database, not the bus: each round looks for inbound messages that
arrived within `lookback` and have no `MessageRouting` row yet (found through the
conversations' `last_inbound_at` index, then each conversation's messages), so a message
whose bus event was lost is routed by the next round. Imported history is claimed and
left alone (`is_history`): no rule runs on it, so it gets no automatic reply, label or
assignment.

A message is claimed by inserting its `MessageRouting` row (primary key: the message id)
in the transaction that applies the rules' actions and records their firings: two
workers routing the same message, or one seeing it twice, collide on that key and only
the first commit counts; the other's transaction is rolled back whole. A message whose
routing fails unexpectedly is recorded with the error, so it is not retried forever.

Rules run in `position` order; a rule that fires with `stop_processing` ends the
evaluation for that message. Each firing is a `RoutingFiring` row and a
`routing.rule_fired` timeline event ({rule_id, rule_name, actions: [{type, outcome,
reason?}]}) in the same transaction as its actions. Bus events go out after the commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import business_hours
from inbox.attributes import render as render_attribute
from inbox.conversation_changes import locked, updated_event
from inbox.response_metrics import calendar_for
from inbox.routing_actions import Applier
from inbox.routing_models import MessageRouting, RoutingFiring, RoutingRule
from inbox.routing_rules import Facts, RuleBody, matches, needs, scanned_text
from timeline.clock import database_now
from timeline.db import SessionFactory
from timeline.events import Event, EventBus, publish_committed
from timeline.models import (
    Contact,
    ContactAttribute,
    Conversation,
    Direction,
    Message,
    MessageKind,
    TimelineEvent,
)

logger = logging.getLogger(__name__)

RULE_FIRED = "routing.rule_fired"
RECEIVED = "message.received"
DEFAULT_LOOKBACK = timedelta(hours=1)
_ERROR_LENGTH = 500


class _AlreadyRouted(Exception):
    """Another transaction claimed the message first."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A stored rule, parsed."""

    id: uuid.UUID
    name: str
    body: RuleBody
    stop_processing: bool


@dataclass(slots=True)
class Routed:
    """What routing one message did."""

    message_id: uuid.UUID
    fired: list[uuid.UUID] = field(default_factory=list)  # rule ids, in order
    events: list[Event] = field(default_factory=list)


async def enabled_rules(session: AsyncSession) -> list[Rule]:
    """The enabled rules in evaluation order; a stored rule that no longer parses (saved
    by an older version) is logged and left out."""
    rules = []
    statement = (
        select(RoutingRule)
        .where(RoutingRule.enabled.is_(True))
        .order_by(RoutingRule.position, RoutingRule.created_at, RoutingRule.id)
    )
    for row in await session.scalars(statement):
        try:
            body = RuleBody.model_validate({"conditions": row.conditions, "actions": row.actions})
        except ValidationError:
            logger.exception("routing rule %s cannot be read; skipped", row.id)
            continue
        rules.append(Rule(row.id, row.name, body, row.stop_processing))
    return rules


class RoutingEngine:
    """Routes inbound messages (see the module docstring)."""

    def __init__(
        self,
        sessions: SessionFactory,
        bus: EventBus,
        *,
        lookback: timedelta = DEFAULT_LOOKBACK,
        batch_size: int = 50,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self.lookback = lookback
        self.batch_size = batch_size
        self._clock = clock  # None: the database's clock

    async def _now(self, session: AsyncSession) -> datetime:
        return self._clock() if self._clock is not None else await database_now(session)

    async def unrouted(self) -> list[uuid.UUID]:
        """Inbound messages within the lookback that no one has routed, oldest first."""
        async with self._sessions() as session:
            since = await self._now(session) - self.lookback
            statement = (
                select(Message.id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Conversation.last_inbound_at >= since,
                    Message.direction == Direction.IN.value,
                    Message.kind == MessageKind.MESSAGE.value,
                    Message.arrived_at >= since,
                    ~exists().where(MessageRouting.message_id == Message.id),
                )
                .order_by(Message.arrived_at, Message.id)
                .limit(self.batch_size)
            )
            return list(await session.scalars(statement))

    async def run_once(self) -> int:
        """Route the unrouted messages of one batch; returns how many were looked at."""
        ids = await self.unrouted()
        for message_id in ids:
            await self.route(message_id)
        return len(ids)

    async def route(self, message_id: uuid.UUID) -> Routed | None:
        """Route one message; None when it was routed already (here or elsewhere) or is
        no inbound message. Never raises: a failure is logged and recorded."""
        try:
            routed = await self._route(message_id)
        except _AlreadyRouted:
            return None
        except Exception as error:
            logger.exception("routing message %s failed", message_id)
            await self._record_failure(message_id, error)
            return None
        if routed is not None:
            await publish_committed(self._bus, routed.events)
        return routed

    async def _route(self, message_id: uuid.UUID) -> Routed | None:
        async with self._sessions() as session, session.begin():
            message = await session.get(Message, message_id)
            if message is None or message.direction != Direction.IN.value:
                return None
            now = await self._now(session)
            claim = MessageRouting(
                message_id=message.id, conversation_id=message.conversation_id, routed_at=now
            )
            await _claim(session, claim)
            routed = Routed(message.id)
            if await is_history(session, message):
                return routed  # routing is for live traffic: an import changes nothing
            rules = await enabled_rules(session)
            if not rules:
                return routed
            conversation = await locked(session, message.conversation_id, None)
            facts = await _facts(session, message, conversation, rules)
            applier = Applier(session, conversation.id, message, now)
            for rule in rules:
                if not matches(rule.body.conditions, facts):
                    continue
                applier.rule_id = rule.id
                results = [await applier.apply(action) for action in rule.body.actions]
                _record_firing(session, rule, message, conversation, results, now)
                routed.fired.append(rule.id)
                if rule.stop_processing:
                    break
            claim.rules_fired = len(routed.fired)
            await session.flush()
            if applier.kinds:
                routed.events.append(updated_event(conversation, applier.kinds, None))
            routed.events.extend(applier.events)
        return routed

    async def _record_failure(self, message_id: uuid.UUID, error: Exception) -> None:
        try:
            async with self._sessions() as session, session.begin():
                message = await session.get(Message, message_id)
                if message is None:
                    return
                claim = MessageRouting(
                    message_id=message_id,
                    conversation_id=message.conversation_id,
                    routed_at=await self._now(session),
                    error=f"{type(error).__name__}: {error}"[:_ERROR_LENGTH],
                )
                await _claim(session, claim)
        except _AlreadyRouted:
            pass
        except Exception:
            logger.exception("could not record the routing failure of message %s", message_id)


async def is_history(session: AsyncSession, message: Message) -> bool:
    """Whether the message came from a history import (`switchboard import email`): its
    "message.received" event says so."""
    data = await session.scalar(
        select(TimelineEvent.data).where(
            TimelineEvent.contact_id == message.contact_id,
            TimelineEvent.message_id == message.id,
            TimelineEvent.kind == RECEIVED,
        )
    )
    return isinstance(data, dict) and data.get("history") is True


async def _claim(session: AsyncSession, claim: MessageRouting) -> None:
    session.add(claim)
    try:
        await session.flush()
    except IntegrityError as err:
        raise _AlreadyRouted from err


async def _facts(
    session: AsyncSession, message: Message, conversation: Conversation, rules: Sequence[Rule]
) -> Facts:
    wanted: set[str] = set()
    for rule in rules:
        wanted |= needs(rule.body.conditions)
    contact = await session.get(Contact, message.contact_id)
    attributes: dict[str, Any] = {}
    if "attributes" in wanted:
        for row in await session.scalars(
            select(ContactAttribute).where(ContactAttribute.contact_id == message.contact_id)
        ):
            attributes[row.key] = render_attribute(row)
    inside = True
    if "hours" in wanted:
        calendar, _ = await calendar_for(session, conversation)
        inside = calendar is None or is_open(calendar, message.arrived_at)
    return Facts(
        channel_id=message.channel_id,
        text=scanned_text(message.subject, message.reply_text or message.text or ""),
        stage=contact.lifecycle_stage if contact is not None else "new",
        language=contact.language if contact is not None else None,
        attributes=attributes,
        inside_hours=inside,
    )


def is_open(calendar: business_hours.Calendar, at: datetime) -> bool:
    """Whether `at` lies inside the calendar's business hours."""
    return business_hours.business_time(calendar, at, at + timedelta(seconds=1)) > timedelta(0)


def _record_firing(
    session: AsyncSession,
    rule: Rule,
    message: Message,
    conversation: Conversation,
    results: Sequence[Any],
    now: datetime,
) -> None:
    actions = [result.as_json() for result in results]
    session.add(
        RoutingFiring(
            rule_id=rule.id,
            rule_name=rule.name,
            message_id=message.id,
            conversation_id=conversation.id,
            actions=actions,
            fired_at=now,
        )
    )
    session.add(
        TimelineEvent(
            contact_id=conversation.contact_id,
            conversation_id=conversation.id,
            message_id=message.id,
            kind=RULE_FIRED,
            data={"rule_id": str(rule.id), "rule_name": rule.name, "actions": actions},
            occurred_at=now,
        )
    )
