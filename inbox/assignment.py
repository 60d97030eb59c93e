"""Auto-assignment: round robin over the online agents of a channel's or a team's pool who
are under their capacity, the longest-waiting conversation first.

Which conversations a policy serves: those open and unassigned of its team (team
policy), or of its channel (channel policy) unless their team has an enabled policy of
its own. Longest waiting first: by `waiting_since` (when the customer started waiting
for an answer), those nobody waits on after them, then by creation. A conversation
with an inbound message the routing engine has not handled yet waits for it: its rules
may assign a team or an agent, and round robin must not get there first (within the
engine's lookback; older messages are never routed, so they hold nothing up).

The pool: active users with the role agent who belong to the channel (directly or
through a team) or to the team. Admins and managers are never auto-assigned, even as
members: they supervise; they take conversations by hand. An agent of a team policy is
given only conversations of channels they can see.

Capacity: the agent's own limit (`AgentCapacity`: a number, or unlimited) or else the
policy's `default_capacity` (None: unlimited), counted as the conversations assigned to
them with status open, across every channel. Pending and snoozed ones do not count: they
wait on the customer or on a time, not on the agent (a customer message that reopens one
makes it count again; capacity limits what routing hands out, it never takes back).

Rotation: among the eligible agents, the one this policy assigned to longest ago (never
first), recorded in `assignment_turns`, so it is fair across restarts and workers.

Races: each assignment is one transaction that locks the policy row (FOR UPDATE), so two
workers assigning for one policy take turns; the chosen agent's user row is locked too
(FOR NO KEY UPDATE) and their load counted again under that lock, so two policies that
share an agent never push them past their capacity; the conversation's row is locked
and checked to be still open and unassigned, so nothing is assigned twice. SQLite has one
writer at a time, which gives the same. Bus events go out after the commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CompoundSelect, Select, case, exists, func, select, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import ChannelMember, ChannelTeam, TeamMember
from inbox.conversation_changes import Changes, Outcome, apply_changes, locked
from inbox.membership import visible_channels
from inbox.models import Role, User
from inbox.presence import online_agents
from inbox.routing_engine import DEFAULT_LOOKBACK
from inbox.routing_models import AgentCapacity, AssignmentPolicy, AssignmentTurn, MessageRouting
from timeline.clock import database_now
from timeline.db import SessionFactory
from timeline.events import EventBus, publish_committed
from timeline.models import Conversation, ConversationStatus, Direction, Message, MessageKind

logger = logging.getLogger(__name__)

OPEN = ConversationStatus.OPEN.value
# Waiting conversations looked at per assignment: enough to get past ones nobody in the
# pool can see (team policies), small enough to stay one cheap query.
CANDIDATES = 20
# Assignments one round makes per policy before the next policy gets its turn.
PER_ROUND = 100
UNLIMITED: int | None = None
ROUTING_LOOKBACK: timedelta = DEFAULT_LOOKBACK


@dataclass(frozen=True, slots=True)
class Assignment:
    """A conversation handed to an agent."""

    policy_id: uuid.UUID
    conversation_id: uuid.UUID
    user_id: uuid.UUID


def pool_query(policy: AssignmentPolicy) -> Select[uuid.UUID]:
    """The ids of the policy's pool: active agents of its channel or team."""
    members: Select[uuid.UUID] | CompoundSelect[uuid.UUID]
    if policy.team_id is not None:
        members = select(TeamMember.user_id).where(TeamMember.team_id == policy.team_id)
    else:
        members = union(
            select(ChannelMember.user_id).where(ChannelMember.channel_id == policy.channel_id),
            select(TeamMember.user_id)
            .join(ChannelTeam, ChannelTeam.team_id == TeamMember.team_id)
            .where(ChannelTeam.channel_id == policy.channel_id),
        )
    return select(User.id).where(
        User.id.in_(members), User.is_active.is_(True), User.role == Role.AGENT.value
    )


def waiting_query(policy: AssignmentPolicy, now: datetime) -> Select[Conversation]:
    """The policy's open unassigned conversations that routing has seen, longest waiting
    first."""
    since = now - ROUTING_LOOKBACK
    unrouted = exists().where(
        Message.conversation_id == Conversation.id,
        Message.direction == Direction.IN.value,
        Message.kind == MessageKind.MESSAGE.value,
        Message.arrived_at >= since,
        ~exists().where(MessageRouting.message_id == Message.id),
    )
    statement = select(Conversation).where(
        Conversation.status == OPEN, Conversation.assignee_id.is_(None), ~unrouted
    )
    if policy.team_id is not None:
        statement = statement.where(Conversation.team_id == policy.team_id)
    else:
        teams_with_policy = select(AssignmentPolicy.team_id).where(
            AssignmentPolicy.team_id.is_not(None), AssignmentPolicy.enabled.is_(True)
        )
        statement = statement.where(
            Conversation.channel_id == policy.channel_id,
            Conversation.team_id.is_(None) | Conversation.team_id.not_in(teams_with_policy),
        )
    return statement.order_by(
        case((Conversation.waiting_since.is_(None), 1), else_=0),
        Conversation.waiting_since,
        Conversation.created_at,
        Conversation.id,
    )


async def open_load(session: AsyncSession, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many open conversations each user holds."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(Conversation.assignee_id, func.count())
        .where(Conversation.assignee_id.in_(list(user_ids)), Conversation.status == OPEN)
        .group_by(Conversation.assignee_id)
    )
    counts: dict[uuid.UUID, int] = {u: 0 for u in user_ids}
    for user_id, count in rows:
        if user_id is not None:
            counts[user_id] = int(count)
    return counts


async def capacities(
    session: AsyncSession, user_ids: Collection[uuid.UUID], default: int | None
) -> dict[uuid.UUID, int | None]:
    """Each user's limit: their own, else `default` (None: unlimited)."""
    own = {
        row.user_id: row.max_open
        for row in await session.scalars(
            select(AgentCapacity).where(AgentCapacity.user_id.in_(list(user_ids)))
        )
    }
    return {u: own.get(u, default) for u in user_ids}


def under(limit: int | None, load: int) -> bool:
    """Whether an agent holding `load` open conversations may take another."""
    return limit is None or load < limit


class Assigner:
    """Runs auto-assignment for every enabled policy (see the module docstring)."""

    def __init__(
        self,
        sessions: SessionFactory,
        bus: EventBus,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._clock = clock  # None: the database's clock

    async def run_once(self) -> int:
        """Assign what can be assigned now; returns how many conversations were."""
        async with self._sessions() as session:
            policies = list(
                await session.scalars(
                    select(AssignmentPolicy.id)
                    .where(AssignmentPolicy.enabled.is_(True))
                    .order_by(AssignmentPolicy.created_at, AssignmentPolicy.id)
                )
            )
        assigned = 0
        for policy_id in policies:
            for _ in range(PER_ROUND):
                if await self.assign_next(policy_id) is None:
                    break
                assigned += 1
        return assigned

    async def assign_next(self, policy_id: uuid.UUID) -> Assignment | None:
        """Assign the policy's longest-waiting conversation that someone may take; None
        when there is none (nothing waiting, nobody online or under capacity)."""
        async with self._sessions() as session:
            async with session.begin():
                found = await self._assign(session, policy_id)
                if found is None:
                    return None
                assignment, outcome = found
            await publish_committed(self._bus, outcome.bus_events())
        return assignment

    async def _assign(
        self, session: AsyncSession, policy_id: uuid.UUID
    ) -> tuple[Assignment, Outcome] | None:
        # Taken first and held to commit: assigners of one policy take turns.
        policy = await session.scalar(
            select(AssignmentPolicy)
            .where(AssignmentPolicy.id == policy_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if policy is None or not policy.enabled:
            return None
        waiting = list(
            await session.scalars(waiting_query(policy, await self._now(session)).limit(CANDIDATES))
        )
        if not waiting:
            return None
        pool = list(await session.scalars(pool_query(policy)))
        online = await online_agents(session, pool)
        if not online:
            return None
        limits = await capacities(session, online, policy.default_capacity)
        loads = await open_load(session, online)
        free = {u for u in online if under(limits[u], loads[u])}
        if not free:
            return None
        turns: dict[uuid.UUID, datetime] = {
            user_id: at
            for user_id, at in await session.execute(
                select(AssignmentTurn.user_id, AssignmentTurn.last_assigned_at).where(
                    AssignmentTurn.policy_id == policy.id,
                    AssignmentTurn.user_id.in_(list(free)),
                )
            )
        }
        sees: dict[uuid.UUID, frozenset[uuid.UUID]] = {}
        for candidate in waiting:
            for user_id in sorted(free, key=lambda u: (u in turns, turns.get(u), str(u))):
                if policy.team_id is not None:
                    if user_id not in sees:
                        sees[user_id] = await visible_channels(session, user_id)
                    if candidate.channel_id not in sees[user_id]:
                        continue
                if not await self._still_under(session, user_id, limits[user_id]):
                    free.discard(user_id)
                    continue
                conversation = await locked(session, candidate.id, None)
                if conversation.status != OPEN or conversation.assignee_id is not None:
                    break  # taken meanwhile (by hand): try the next conversation
                now = await self._now(session)
                outcome = await apply_changes(
                    session, conversation.id, Changes(assignee_id=user_id), actor_id=None, now=now
                )
                await self._take_turn(session, policy.id, user_id, now)
                return Assignment(policy.id, conversation.id, user_id), outcome
            if not free:
                return None
        return None

    async def _still_under(
        self, session: AsyncSession, user_id: uuid.UUID, limit: int | None
    ) -> bool:
        """The agent's load counted again with their row locked: another policy's
        assigner that shares them waits here, and sees this one's assignment."""
        if limit is None:
            return True
        await session.execute(
            select(User.id).where(User.id == user_id).with_for_update(key_share=True)
        )
        return under(limit, (await open_load(session, [user_id]))[user_id])

    async def _take_turn(
        self, session: AsyncSession, policy_id: uuid.UUID, user_id: uuid.UUID, now: datetime
    ) -> None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(AssignmentTurn).values(
            policy_id=policy_id, user_id=user_id, last_assigned_at=now
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[AssignmentTurn.policy_id, AssignmentTurn.user_id],
                set_={"last_assigned_at": statement.excluded.last_assigned_at},
            )
        )

    async def _now(self, session: AsyncSession) -> datetime:
        return self._clock() if self._clock is not None else await database_now(session)
