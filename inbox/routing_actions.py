"""What a routing rule's actions do to a conversation, in the routing transaction.

Conversation changes go through inbox/conversation_changes.py (one timeline event per
change, `by` null: the routing engine did it). An action that cannot be carried out is
skipped, never an error, and the skip is recorded with its reason: a team or user
deleted since the rule was saved, an agent who cannot see the conversation's channel, a
conversation already at its label limit, an automatic reply that must not go out.

Automatic replies go through the outbox as automatic messages (author None, marked
auto-submitted), so they never count as a response by a person
(inbox/response_metrics.py). They are never sent to an automatic message, to a message
older than the cut-off (imported history, a backlog: its `sent_at` is more than
`REPLY_CUTOFF` before its arrival, or it is routed that late), to a contact who opted out
or was erased, on a channel that cannot send to them, or more than once an hour per
contact and channel (shared with the acknowledgements of timeline/acknowledge.py, so a
customer never gets both).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import Team
from inbox.conversation_changes import Changes, InvalidChange, apply_changes
from inbox.membership import visible_channels
from inbox.models import Role, User
from inbox.placeholders import placeholder_values, render
from inbox.reply_channels import check_reply_channel
from inbox.routing_rules import (
    Action,
    AddLabelAction,
    AssignAgentAction,
    AssignTeamAction,
    AutoReplyAction,
    EscalateAction,
    SetPriorityAction,
)
from inbox.workflow_models import Priority
from timeline.acknowledge import acknowledged_lately
from timeline.events import Event
from timeline.models import Conversation, Message, TimelineEvent
from timeline.outbox import message_created_event, queue_outbound
from timeline.reachability import unreachable_reason

REPLY_CUTOFF = timedelta(hours=1)
ESCALATED = "routing.escalated"  # timeline event of an escalation
_PRIORITIES = list(Priority)  # lowest first


class Outcome:
    """What became of one action."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"  # it was so already
    SKIPPED = "skipped"  # it could not be carried out; `reason` says why


@dataclass(slots=True)
class ActionResult:
    """One action's outcome, as recorded in the firing and its timeline event."""

    type: str
    outcome: str
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "outcome": self.outcome}
        if self.reason is not None:
            data["reason"] = self.reason
        data.update(self.detail)
        return data


@dataclass(slots=True)
class Applier:
    """Applies actions to one conversation for one inbound message (caller commits)."""

    session: AsyncSession
    conversation_id: uuid.UUID
    message: Message
    now: datetime
    rule_id: uuid.UUID | None = None
    kinds: list[str] = field(default_factory=list)  # conversation changes made
    events: list[Event] = field(default_factory=list)  # other bus events (auto replies)

    async def apply(self, action: Action) -> ActionResult:
        """Carry out one action; the result says whether it did and, if not, why."""
        if isinstance(action, AssignTeamAction):
            if not await _team_exists(self.session, action.team_id):
                return _skipped(action, "the team no longer exists")
            return await self._change(action, Changes(team_id=action.team_id))
        if isinstance(action, AssignAgentAction):
            reason = await self._cannot_assign(action.user_id)
            if reason is not None:
                return _skipped(action, reason)
            return await self._change(action, Changes(assignee_id=action.user_id))
        if isinstance(action, AddLabelAction):
            return await self._change(action, Changes(add_labels=frozenset({action.label})))
        if isinstance(action, SetPriorityAction):
            return await self._change(action, Changes(priority=action.priority))
        if isinstance(action, EscalateAction):
            return await self._escalate(action)
        return await self._auto_reply(action)

    async def _change(self, action: Action, changes: Changes) -> ActionResult:
        try:
            outcome = await apply_changes(
                self.session, self.conversation_id, changes, actor_id=None, now=self.now
            )
        except InvalidChange as err:
            return _skipped(action, "; ".join(err.fields.values()))
        self.kinds.extend(k for k in outcome.kinds if k not in self.kinds)
        return ActionResult(action.type, Outcome.APPLIED if outcome.changed else Outcome.UNCHANGED)

    async def _cannot_assign(self, user_id: uuid.UUID) -> str | None:
        user = await self.session.get(User, user_id)
        if user is None:
            return "the user no longer exists"
        if not user.is_active:
            return "the user is deactivated"
        channel_id = await self.session.scalar(
            select(Conversation.channel_id).where(Conversation.id == self.conversation_id)
        )
        if user.role == Role.AGENT.value and channel_id not in await visible_channels(
            self.session, user_id
        ):
            return "the agent is not a member of the conversation's channel"
        return None

    async def _escalate(self, action: EscalateAction) -> ActionResult:
        if not await _team_exists(self.session, action.team_id):
            return _skipped(action, "the team no longer exists")
        conversation = await self.session.get(Conversation, self.conversation_id)
        assert conversation is not None
        before = {
            "from_team_id": _text(conversation.team_id),
            "from_assignee_id": _text(conversation.assignee_id),
            "from_priority": conversation.priority,
        }
        current = next((p for p in _PRIORITIES if p.value == conversation.priority), Priority.NONE)
        raised = max(current, Priority.HIGH, key=_PRIORITIES.index)
        result = await self._change(
            action, Changes(team_id=action.team_id, assignee_id=None, priority=raised)
        )
        if result.outcome == Outcome.SKIPPED:
            return result
        self.session.add(
            TimelineEvent(
                contact_id=conversation.contact_id,
                conversation_id=conversation.id,
                message_id=self.message.id,
                kind=ESCALATED,
                data={
                    **before,
                    "team_id": str(action.team_id),
                    "priority": raised.value,
                    "rule_id": _text(self.rule_id),
                    "by": None,
                },
                occurred_at=self.now,
            )
        )
        return result

    async def _auto_reply(self, action: AutoReplyAction) -> ActionResult:
        reason = await self._reply_refusal()
        if reason is not None:
            return _skipped(action, reason)
        values = await placeholder_values(self.session, self.conversation_id, None)
        text = render(action.text, values)
        if not text.strip():
            return _skipped(action, "the reply is empty once its placeholders are filled in")
        reply = await queue_outbound(
            self.session, conversation_id=self.conversation_id, text=text, automatic=True
        )
        self.events.append(message_created_event(reply))
        return ActionResult(action.type, Outcome.APPLIED, detail={"message_id": str(reply.id)})

    async def _reply_refusal(self) -> str | None:
        message = self.message
        if message.auto_submitted:
            return "the message was sent automatically (no reply to auto-replies)"
        if message.sent_at < message.arrived_at - REPLY_CUTOFF:
            return "the message is older than the automatic-reply cut-off (history or backlog)"
        if self.now - message.arrived_at > REPLY_CUTOFF:
            return "the message was routed too long after it arrived"
        conversation = await self.session.get(Conversation, self.conversation_id)
        assert conversation is not None
        reason = await unreachable_reason(
            self.session, conversation.channel_id, conversation.contact_id
        )
        if reason is not None:
            return reason
        channel = await check_reply_channel(
            self.session, conversation, conversation.channel_id, None
        )
        if isinstance(channel, str):
            return channel
        if channel.reason is not None:
            return channel.reason
        contact_id, channel_id = conversation.contact_id, conversation.channel_id
        if await acknowledged_lately(self.session, contact_id, channel_id):
            return "an automatic message went to this contact on this channel within the hour"
        return None


async def _team_exists(session: AsyncSession, team_id: uuid.UUID) -> bool:
    return await session.scalar(select(Team.id).where(Team.id == team_id)) is not None


def _skipped(action: Action, reason: str) -> ActionResult:
    return ActionResult(action.type, Outcome.SKIPPED, reason)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
