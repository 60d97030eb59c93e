"""Routing rules run after each inbound message commits: in order, each firing recorded
with what its actions did, exactly once per message however often it is looked at."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from inbox.account_models import Team
from inbox.attributes import AttributeType, create_definition, set_attributes
from inbox.metric_models import BusinessHours, ChannelBusinessHours
from inbox.models import Role
from inbox.response_metrics import load
from inbox.routing_engine import RULE_FIRED, RoutingEngine
from inbox.routing_models import MessageRouting, RoutingFiring
from inbox.workflow_models import ConversationLabel
from tests.inbox.routing_world import World, running_world
from timeline.db import SessionFactory
from timeline.events import InProcessBus
from timeline.models import Contact, ContactReachability, Message


@pytest.fixture
async def world(sessions: SessionFactory, tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(sessions, tmp_path / "data") as world:
        yield world


def routing(world: World) -> RoutingEngine:
    return RoutingEngine(world.sessions, InProcessBus())


async def labels(world: World, conversation_id: uuid.UUID) -> set[str]:
    async with world.sessions() as session:
        rows = await session.scalars(
            select(ConversationLabel.label).where(
                ConversationLabel.conversation_id == conversation_id
            )
        )
        return set(rows)


async def automatic_replies(world: World, conversation_id: uuid.UUID) -> list[Message]:
    async with world.sessions() as session:
        rows = await session.scalars(
            select(Message).where(
                Message.conversation_id == conversation_id,
                Message.direction == "out",
                Message.auto_submitted.is_(True),
            )
        )
        return list(rows)


async def test_rules_run_in_order_record_each_firing_and_stop(world: World) -> None:
    channel = await world.channel()
    other_channel = await world.channel("other")
    second_line = await world.team()
    agent = await world.user(channels=(channel,))
    await world.rule(
        "billing",
        [
            {"type": "add_label", "label": "Billing"},
            {"type": "set_priority", "priority": "medium"},
            {"type": "assign_agent", "user_id": str(agent)},
        ],
        all=[
            {"type": "channel", "channel_ids": [str(channel)]},
            {"type": "text", "operator": "contains", "value": "invoice"},
        ],
        position=0,
    )
    await world.rule(
        "angry",
        [{"type": "escalate", "team_id": str(second_line)}],
        any=[
            {"type": "text", "operator": "matches", "value": r"(?i)\bfurious\b"},
            {"type": "text", "operator": "contains", "value": "lawyer"},
        ],
        position=1,
        stop=True,
    )
    await world.rule("never", [{"type": "add_label", "label": "late"}], position=2)

    calm = await world.inbound(channel, "Where is my INVOICE?")
    furious = await world.inbound(channel, "My invoice is wrong and I am furious")
    elsewhere = await world.inbound(other_channel, "invoice please")
    engine = routing(world)
    assert await engine.run_once() == 3
    assert await engine.run_once() == 0  # each message once

    assert calm.conversation_id and furious.conversation_id and elsewhere.conversation_id
    first = await world.conversation(calm.conversation_id)
    assert (first.assignee_id, first.priority) == (agent, "medium")
    assert await labels(world, first.id) == {"billing", "late"}
    fired = await world.events(first.id, RULE_FIRED)
    assert [e["rule_name"] for e in fired] == ["billing", "never"]
    assert [a["outcome"] for a in fired[0]["actions"]] == ["applied"] * 3

    # Escalated: the team is set, the agent unassigned, the priority at least high; the
    # rule stops processing, so "never" does not fire.
    second = await world.conversation(furious.conversation_id)
    assert (second.team_id, second.assignee_id, second.priority) == (second_line, None, "high")
    assert await labels(world, second.id) == {"billing"}
    assert [e["rule_name"] for e in await world.events(second.id, RULE_FIRED)] == [
        "billing",
        "angry",
    ]
    [escalation] = await world.events(second.id, "routing.escalated")
    assert escalation["from_assignee_id"] == str(agent) and escalation["team_id"] == str(
        second_line
    )
    assert [e["by"] for e in await world.events(second.id, "conversation.assigned")] == [None] * 2

    third = await world.conversation(elsewhere.conversation_id)
    assert await labels(world, third.id) == {"late"}
    assert await world.count(RoutingFiring) == 5
    assert await world.count(MessageRouting, MessageRouting.rules_fired == 2) == 2


async def test_skipped_actions_are_recorded_with_their_reason(world: World) -> None:
    channel = await world.channel()
    stranger = await world.user()  # an agent of no channel
    inactive = await world.user(active=False, channels=(channel,))
    manager = await world.user(Role.MANAGER)  # sees every channel
    gone_team = await world.team()
    await world.rule(
        "hand over",
        [
            {"type": "assign_agent", "user_id": str(stranger)},
            {"type": "assign_agent", "user_id": str(inactive)},
            {"type": "assign_team", "team_id": str(gone_team)},
            {"type": "escalate", "team_id": str(gone_team)},
            {"type": "assign_agent", "user_id": str(manager)},
        ],
    )
    async with world.sessions() as session, session.begin():
        team = await session.get(Team, gone_team)
        await session.delete(team)
    result = await world.inbound(channel)
    await routing(world).run_once()
    assert result.conversation_id is not None
    [fired] = await world.events(result.conversation_id, RULE_FIRED)
    assert [(a["outcome"], a.get("reason")) for a in fired["actions"]] == [
        ("skipped", "the agent is not a member of the conversation's channel"),
        ("skipped", "the user is deactivated"),
        ("skipped", "the team no longer exists"),
        ("skipped", "the team no longer exists"),
        ("applied", None),
    ]
    assert (await world.conversation(result.conversation_id)).assignee_id == manager


async def test_attribute_stage_language_and_business_hours_conditions(world: World) -> None:
    channel = await world.channel()
    await world.rule(
        "german customers",
        [{"type": "add_label", "label": "de"}],
        all=[
            {"type": "language", "languages": ["de"]},
            {"type": "lifecycle_stage", "stages": ["new"]},
        ],
    )
    await world.rule(
        "gold",
        [{"type": "add_label", "label": "gold"}],
        all=[{"type": "contact_attribute", "key": "plan", "operator": "equals", "value": "GOLD"}],
    )
    await world.rule(
        "after hours",
        [{"type": "add_label", "label": "after-hours"}],
        all=[{"type": "business_hours", "inside": False}],
    )
    # A calendar that is never open: every message arrives outside business hours.
    async with world.sessions() as session, session.begin():
        hours = BusinessHours(name="closed", timezone="Europe/Berlin", week={}, holidays=[])
        session.add(hours)
        await session.flush()
        session.add(ChannelBusinessHours(channel_id=channel, business_hours_id=hours.id))
    async with world.sessions() as session, session.begin():
        await create_definition(
            session,
            key="plan",
            label="Plan",
            kind=AttributeType.TEXT,
            options=None,
            now=datetime.now(UTC),
        )
    gold = await world.inbound(channel, language="de-AT", sender="+14155550001")
    assert gold.contact_id is not None and gold.conversation_id is not None
    async with world.sessions() as session, session.begin():
        await set_attributes(session, gold.contact_id, {"plan": "Gold"})
    plain = await world.inbound(channel, language="en", sender="+14155550002")
    assert plain.conversation_id is not None
    await routing(world).run_once()
    assert await labels(world, gold.conversation_id) == {"de", "gold", "after-hours"}
    assert await labels(world, plain.conversation_id) == {"after-hours"}


async def test_an_automatic_reply_is_queued_once_and_is_no_first_response(world: World) -> None:
    channel = await world.channel()
    await world.rule(
        "thanks",
        [{"type": "auto_reply", "text": "Hi {{contact.first_name | there}}, thanks!"}],
    )
    await world.rule("again", [{"type": "auto_reply", "text": "Second reply"}], position=1)
    first = await world.inbound(channel, "one", sender="+14155550011")
    second = await world.inbound(channel, "two", sender="+14155550011")  # same conversation
    await routing(world).run_once()
    assert first.conversation_id is not None and first.conversation_id == second.conversation_id
    [reply] = await automatic_replies(world, first.conversation_id)
    assert reply.text == "Hi Ann, thanks!" and reply.author_id is None
    assert reply.delivery_state == "queued"
    fired = await world.events(first.conversation_id, RULE_FIRED)
    outcomes = [a["outcome"] for e in fired for a in e["actions"]]
    assert outcomes == ["applied", "skipped", "skipped", "skipped"]
    conversation = await world.conversation(first.conversation_id)
    assert conversation.first_response_at is None and conversation.waiting_since is not None
    async with world.sessions() as session:
        loaded = await load(session, conversation)
    assert loaded.derivation.spans == []  # no first response measured
    current = loaded.derivation.current
    assert current is not None and current.first_response_at is None


async def test_no_automatic_reply_to_automatic_old_history_or_opted_out(world: World) -> None:
    channel = await world.channel()
    await world.rule("thanks", [{"type": "auto_reply", "text": "Thanks!"}])
    automatic = await world.inbound(channel, auto_submitted=True)
    old = await world.inbound(channel, sent_at=datetime.now(UTC) - timedelta(hours=3))
    history = await world.inbound(
        channel, sent_at=datetime.now(UTC) - timedelta(minutes=30), history=True
    )
    opted = await world.inbound(channel, sender="+14155550099")
    assert opted.contact_id is not None
    async with world.sessions() as session, session.begin():
        session.add(
            ContactReachability(channel_id=channel, contact_id=opted.contact_id, opted_out=True)
        )
    erased = await world.inbound(channel, sender="+14155550098")
    async with world.sessions() as session, session.begin():
        contact = await session.get(Contact, erased.contact_id)
        assert contact is not None
        contact.erased_at = datetime.now(UTC)
    await routing(world).run_once()
    reasons = []
    for result in (automatic, old, opted, erased):
        assert result.conversation_id is not None
        assert await automatic_replies(world, result.conversation_id) == []
        [fired] = await world.events(result.conversation_id, RULE_FIRED)
        reasons.append(fired["actions"][0]["reason"])
    assert "automatically" in reasons[0]
    assert "cut-off" in reasons[1]
    assert "opted out" in reasons[2]
    assert "erased" in reasons[3]
    # Imported history, even from half an hour ago: claimed, and no rule runs on it.
    assert history.message_id is not None and history.conversation_id is not None
    assert await world.count(MessageRouting, MessageRouting.message_id == history.message_id) == 1
    assert await world.events(history.conversation_id, RULE_FIRED) == []
    assert await automatic_replies(world, history.conversation_id) == []


async def test_each_message_is_routed_once_across_workers_and_redelivery(
    world: World, database_url: str
) -> None:
    channel = await world.channel()
    await world.rule(
        "label and reply",
        [{"type": "add_label", "label": "seen"}, {"type": "auto_reply", "text": "Got it"}],
    )
    results = [await world.inbound(channel, f"m{i}") for i in range(6)]
    engines = [routing(world) for _ in range(3)]
    ids = [r.message_id for r in results if r.message_id is not None]
    # Every engine tries every message at once (a redelivered bus event, several workers).
    outcomes = await asyncio.gather(*(e.route(i) for e in engines for i in ids))
    assert sum(o is not None for o in outcomes) == len(ids)
    assert await world.count(MessageRouting) == len(ids)
    assert await world.count(RoutingFiring) == len(ids)
    assert await world.count(MessageRouting, MessageRouting.error.is_not(None)) == 0
    for result in results:
        assert result.conversation_id is not None
        assert len(await world.events(result.conversation_id, RULE_FIRED)) == 1
        assert len(await automatic_replies(world, result.conversation_id)) == 1
    assert await engines[0].route(ids[0]) is None  # and again later: nothing


async def test_without_rules_messages_are_claimed_and_nothing_recorded(world: World) -> None:
    channel = await world.channel()
    result = await world.inbound(channel)
    assert await routing(world).run_once() == 1
    assert await world.count(MessageRouting) == 1
    assert await world.count(RoutingFiring) == 0
    assert result.conversation_id is not None
    assert await world.events(result.conversation_id, RULE_FIRED) == []
