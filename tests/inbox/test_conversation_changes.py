"""Changes people make to conversations: transitions and their timeline activities, labels,
assignment, participants, read marks, and two agents changing one conversation at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from inbox.account_models import ChannelMember, Team
from inbox.conversation_changes import (
    UNSET,
    ChangeConflict,
    Changes,
    ConversationMoved,
    InvalidChange,
    UnknownConversation,
    add_participant,
    apply_changes,
    check_changes,
    mark_read,
    mark_unread,
    remove_participant,
)
from inbox.labels import LabelError, normalize_label
from inbox.models import Role, User
from inbox.response_metrics import load
from inbox.workflow_models import (
    ConversationLabel,
    ConversationParticipant,
    ConversationRead,
    Priority,
)
from tests.timeline.conftest import wait_for_lock_waiters
from timeline.db import SessionFactory
from timeline.models import Channel, Contact, Conversation, ConversationStatus, TimelineEvent

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
S = ConversationStatus

MakeConversation = Callable[..., Awaitable[Conversation]]


@pytest.fixture
async def channel(sessions: SessionFactory) -> Channel:
    async with sessions() as session, session.begin():
        row = Channel(kind="webform", name="form", config_encrypted="x")
        session.add(row)
    return row


@pytest.fixture
def make_conversation(sessions: SessionFactory, channel: Channel) -> MakeConversation:
    async def make(**values: Any) -> Conversation:
        async with sessions() as session, session.begin():
            contact = Contact(name="Ann")
            session.add(contact)
            await session.flush()
            row = Conversation(
                contact_id=contact.id,
                channel_id=channel.id,
                created_at=T0,
                last_activity_at=T0,
                **values,
            )
            session.add(row)
        return row

    return make


async def make_user(
    sessions: SessionFactory, role: Role = Role.AGENT, *, active: bool = True
) -> uuid.UUID:
    async with sessions() as session, session.begin():
        user = User(
            email=f"{uuid.uuid4().hex[:10]}@example.com",
            role=role.value,
            password_hash="x",
            is_active=active,
        )
        session.add(user)
    return user.id


async def change(
    sessions: SessionFactory,
    conversation_id: uuid.UUID,
    actor: uuid.UUID | None = None,
    at: datetime = T0,
    **values: Any,
) -> tuple[Conversation, tuple[str, ...]]:
    changes = Changes(**values)
    async with sessions() as session, session.begin():
        await check_changes(session, changes, at - timedelta(seconds=1))
        outcome = await apply_changes(session, conversation_id, changes, actor_id=actor, now=at)
    return outcome.conversation, outcome.kinds


async def events(sessions: SessionFactory, conversation_id: uuid.UUID) -> list[tuple[str, Any]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.conversation_id == conversation_id)
            .order_by(TimelineEvent.id)
        )
        return [(row.kind, row.data) for row in rows]


async def test_status_transitions_record_who_and_count_a_reopen_as_a_new_cycle(
    sessions: SessionFactory, make_conversation: MakeConversation
) -> None:
    agent = await make_user(sessions)
    conv = await make_conversation(waiting_since=T0, first_inbound_at=T0)
    until = T0 + timedelta(days=1)

    row, kinds = await change(sessions, conv.id, agent, status=S.PENDING)
    assert (row.status, kinds) == ("pending", ("conversation.status_changed",))
    row, _ = await change(sessions, conv.id, agent, status=S.SNOOZED, snoozed_until=until)
    assert (row.status, row.snoozed_until) == ("snoozed", until)
    resolved_at = T0 + timedelta(hours=2)
    row, _ = await change(sessions, conv.id, agent, at=resolved_at, status=S.RESOLVED)
    # Resolving clears the snooze and the customer's wait, and dates the resolution.
    assert (row.status, row.snoozed_until, row.waiting_since) == ("resolved", None, None)
    assert row.resolved_at == resolved_at
    # The same status again is no change: nothing recorded.
    row, kinds = await change(sessions, conv.id, agent, status=S.RESOLVED)
    assert kinds == () and row.resolved_at == resolved_at
    reopened_at = T0 + timedelta(hours=3)
    row, _ = await change(sessions, conv.id, agent, at=reopened_at, status=S.OPEN)
    assert (row.status, row.resolved_at, row.reopen_count) == ("open", None, 1)
    # Leaving "resolved" for another status is a reopen too.
    later = reopened_at + timedelta(hours=1)
    await change(sessions, conv.id, None, at=later - timedelta(minutes=30), status=S.RESOLVED)
    row, _ = await change(sessions, conv.id, agent, at=later, status=S.PENDING)
    assert row.reopen_count == 2

    by = str(agent)
    assert await events(sessions, conv.id) == [
        ("conversation.status_changed", {"from": "open", "to": "pending", "by": by}),
        (
            "conversation.status_changed",
            {"from": "pending", "to": "snoozed", "by": by, "snoozed_until": until.isoformat()},
        ),
        ("conversation.status_changed", {"from": "snoozed", "to": "resolved", "by": by}),
        ("conversation.status_changed", {"from": "resolved", "to": "open", "by": by}),
        ("conversation.status_changed", {"from": "open", "to": "resolved", "by": None}),
        ("conversation.status_changed", {"from": "resolved", "to": "pending", "by": by}),
    ]
    # The response-time metrics read these events: a reopen by a person starts a cycle.
    async with sessions() as session:
        stored = await session.get(Conversation, conv.id)
        assert stored is not None
        derivation = (await load(session, stored)).derivation
    assert [c.opened_at for c in derivation.cycles] == [T0, reopened_at, later]
    assert derivation.cycles[0].resolved_at == resolved_at


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_checks_name_each_invalid_field(sessions: SessionFactory) -> None:
    inactive = await make_user(sessions, active=False)
    now = T0

    async def fields(**values: Any) -> dict[str, str]:
        async with sessions() as session:
            with pytest.raises(InvalidChange) as caught:
                await check_changes(session, Changes(**values), now)
        return caught.value.fields

    assert await fields(status=S.SNOOZED) == {"snoozed_until": "required to snooze"}
    assert await fields(status=S.SNOOZED, snoozed_until=now) == {
        "snoozed_until": "must be in the future"
    }
    assert list(await fields(status=S.OPEN, snoozed_until=now + timedelta(1))) == ["snoozed_until"]
    assert await fields(assignee_id=inactive) == {"assignee_id": "not an active user"}
    assert await fields(assignee_id=uuid.uuid4()) == {"assignee_id": "not an active user"}
    assert await fields(team_id=uuid.uuid4()) == {"team_id": "no such team"}
    assert list(await fields(labels=frozenset({"a"}), add_labels=frozenset({"b"}))) == ["labels"]
    assert list(await fields(labels=frozenset(str(n) for n in range(21)))) == ["labels"]
    assert list(await fields(add_labels=frozenset({"a"}), remove_labels=frozenset({"a"}))) == [
        "remove_labels"
    ]
    async with sessions() as session, session.begin():
        team = Team(name="Second line")
        session.add(team)
    async with sessions() as session:
        # Valid values pass: an existing team, nobody, a future snooze.
        await check_changes(
            session,
            Changes(
                team_id=team.id,
                assignee_id=None,
                status=S.SNOOZED,
                snoozed_until=now + timedelta(minutes=1),
            ),
            now,
        )


def test_labels_are_normalized() -> None:
    assert normalize_label("  VIP Customer ") == "vip customer"
    assert normalize_label("Ärger") == "ärger"
    assert normalize_label("x" * 50) == "x" * 50
    for bad in ("", "   ", "x" * 51, "a\x00b", "a\nb", "a\u200bb", "a\u202eb", "a\u2028b"):
        with pytest.raises(LabelError):
            normalize_label(bad)


async def test_assignment_team_priority_labels_and_participants(
    sessions: SessionFactory, make_conversation: MakeConversation, channel: Channel
) -> None:
    actor = await make_user(sessions, Role.MANAGER)
    agent = await make_user(sessions)
    conv = await make_conversation()
    # An agent who does not work the channel cannot be handed the conversation.
    with pytest.raises(InvalidChange) as caught:
        await change(sessions, conv.id, actor, assignee_id=agent)
    assert list(caught.value.fields) == ["assignee_id"]
    async with sessions() as session, session.begin():
        session.add(ChannelMember(channel_id=channel.id, user_id=agent))
    team = uuid.uuid4()
    async with sessions() as session, session.begin():
        session.add(Team(id=team, name="First line"))

    row, kinds = await change(
        sessions,
        conv.id,
        actor,
        assignee_id=agent,
        team_id=team,
        priority=Priority.HIGH,
        labels=frozenset({"vip", "billing"}),
    )
    assert (row.assignee_id, row.team_id, row.priority) == (agent, team, "high")
    assert kinds == (
        "conversation.assigned",
        "conversation.participant_added",
        "conversation.team_changed",
        "conversation.priority_changed",
        "conversation.labels_changed",
    )
    # Edits against the stored labels; an absent label removed is no change.
    _, kinds = await change(
        sessions,
        conv.id,
        actor,
        add_labels=frozenset({"urgent"}),
        remove_labels=frozenset({"billing", "absent"}),
    )
    assert kinds == ("conversation.labels_changed",)
    # Unassigning keeps the participant; nothing else changes.
    row, kinds = await change(
        sessions, conv.id, actor, assignee_id=None, team_id=UNSET, priority=Priority.HIGH
    )
    assert (row.assignee_id, row.team_id, kinds) == (None, team, ("conversation.assigned",))
    # Adding a 21st label is refused, and changes nothing at all.
    many = frozenset(f"l{n}" for n in range(19))
    with pytest.raises(InvalidChange) as caught:
        await change(sessions, conv.id, actor, priority=Priority.LOW, add_labels=many)
    assert list(caught.value.fields) == ["add_labels"]

    async with sessions() as session:
        labels = set(
            await session.scalars(
                select(ConversationLabel.label).where(ConversationLabel.conversation_id == conv.id)
            )
        )
        participants = list(
            await session.scalars(
                select(ConversationParticipant.user_id).where(
                    ConversationParticipant.conversation_id == conv.id
                )
            )
        )
        stored = await session.get(Conversation, conv.id)
    assert labels == {"vip", "urgent"} and participants == [agent]
    assert stored is not None and stored.priority == "high"
    recorded = await events(sessions, conv.id)
    by = str(actor)
    assert recorded == [
        ("conversation.assigned", {"from": None, "to": str(agent), "by": by}),
        ("conversation.participant_added", {"user_id": str(agent), "by": by}),
        ("conversation.team_changed", {"from": None, "to": str(team), "by": by}),
        ("conversation.priority_changed", {"from": "none", "to": "high", "by": by}),
        ("conversation.labels_changed", {"added": ["billing", "vip"], "removed": [], "by": by}),
        ("conversation.labels_changed", {"added": ["urgent"], "removed": ["billing"], "by": by}),
        ("conversation.assigned", {"from": str(agent), "to": None, "by": by}),
    ]

    # Participants by hand: a second add and a removal of a non-participant change nothing.
    other = await make_user(sessions, Role.ADMIN)
    async with sessions() as session, session.begin():
        added = await add_participant(session, conv.id, other, actor_id=actor)
        again = await add_participant(session, conv.id, other, actor_id=actor)
        removed = await remove_participant(session, conv.id, agent, actor_id=actor)
        nothing = await remove_participant(session, conv.id, agent, actor_id=actor)
    assert (added.kinds, again.kinds) == (("conversation.participant_added",), ())
    assert (removed.kinds, nothing.kinds) == (("conversation.participant_removed",), ())
    inactive = await make_user(sessions, active=False)
    async with sessions() as session, session.begin():
        with pytest.raises(InvalidChange):
            await add_participant(session, conv.id, inactive, actor_id=actor)


async def test_seen_seq_guard_visibility_and_read_marks(
    sessions: SessionFactory, make_conversation: MakeConversation, channel: Channel
) -> None:
    user = await make_user(sessions)
    conv = await make_conversation(last_seq=5)
    with pytest.raises(ConversationMoved):
        await change(sessions, conv.id, user, status=S.RESOLVED, seen_seq=4)
    row, _ = await change(sessions, conv.id, user, status=S.RESOLVED, seen_seq=5)
    assert row.status == "resolved"
    async with sessions() as session, session.begin():
        for visible in (frozenset({uuid.uuid4()}), None):
            with pytest.raises(UnknownConversation):
                await apply_changes(
                    session,
                    uuid.uuid4() if visible is None else conv.id,
                    Changes(priority=Priority.LOW),
                    actor_id=user,
                    visible=visible,
                )

    async def read_seq() -> int | None:
        async with sessions() as session:
            return await session.scalar(
                select(ConversationRead.read_seq).where(
                    ConversationRead.conversation_id == conv.id, ConversationRead.user_id == user
                )
            )

    async with sessions() as session, session.begin():
        await mark_read(session, conv.id, user)
    assert await read_seq() == 5
    async with sessions() as session, session.begin():
        await mark_unread(session, conv.id, user)
    assert await read_seq() == 4
    async with sessions() as session, session.begin():
        await mark_read(session, conv.id, user, visible=frozenset({channel.id}))
    assert await read_seq() == 5


async def test_reopening_while_another_conversation_of_the_thread_is_open_is_a_conflict(
    sessions: SessionFactory, make_conversation: MakeConversation
) -> None:
    old = await make_conversation(status="resolved", thread_key="")
    async with sessions() as session, session.begin():
        newer = Conversation(
            contact_id=old.contact_id, channel_id=old.channel_id, thread_key="", status="open"
        )
        session.add(newer)
    with pytest.raises(ChangeConflict):
        await change(sessions, old.id, None, status=S.OPEN)
    async with sessions() as session:
        stored = await session.get(Conversation, old.id)
    assert stored is not None and (stored.status, stored.reopen_count) == ("resolved", 0)
    assert await events(sessions, old.id) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_agents_changing_one_conversation_at_once_both_land(
    engine: AsyncEngine, sessions: SessionFactory, make_conversation: MakeConversation
) -> None:
    first_agent, second_agent = await make_user(sessions), await make_user(sessions)
    conv = await make_conversation()
    entered, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with sessions() as session, session.begin():
            await apply_changes(
                session,
                conv.id,
                Changes(add_labels=frozenset({"refund"}), priority=Priority.URGENT),
                actor_id=first_agent,
            )
            entered.set()
            await release.wait()  # holds the row lock, uncommitted

    async def second() -> None:
        await entered.wait()
        async with sessions() as session, session.begin():
            await apply_changes(
                session,
                conv.id,
                Changes(add_labels=frozenset({"vip"}), status=S.PENDING),
                actor_id=second_agent,
            )

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await entered.wait()
    assert await wait_for_lock_waiters(engine) == 1  # the second waits for the first
    release.set()
    await asyncio.gather(*tasks)

    async with sessions() as session:
        stored = await session.get(Conversation, conv.id)
        labels = set(
            await session.scalars(
                select(ConversationLabel.label).where(ConversationLabel.conversation_id == conv.id)
            )
        )
    assert stored is not None and (stored.priority, stored.status) == ("urgent", "pending")
    assert labels == {"refund", "vip"}
    label_events = [data for kind, data in await events(sessions, conv.id) if "labels" in kind]
    assert label_events == [
        {"added": ["refund"], "removed": [], "by": str(first_agent)},
        {"added": ["vip"], "removed": [], "by": str(second_agent)},
    ]
