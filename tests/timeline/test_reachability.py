"""Opt-outs and blocked bots: stored once per change, on the timeline, and refusing replies."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from connectors.registry import spec_for
from connectors.types import ChannelId, IdentityKind, Reachability, ReachabilityChange, SenderHandle
from tests.timeline.conftest import MakeChannel
from tests.timeline.test_ingest import inbound
from timeline.db import SessionFactory
from timeline.events import InProcessBus
from timeline.ingest import Ingestor
from timeline.models import TimelineEvent
from timeline.outbound_build import build_outbound
from timeline.outbox import queue_outbound
from timeline.reachability import record_reachability, unreachable_reason
from timeline.send_outcome import Failed

AT = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)


def change(
    channel: object, what: Reachability, number: str = "(415) 555-0100"
) -> ReachabilityChange:
    return ReachabilityChange(
        channel_id=ChannelId(str(channel)),
        who=SenderHandle(IdentityKind.PHONE, number),
        change=what,
        at=AT,
        detail="STOP" if what is Reachability.OPTED_OUT else "START",
    )


async def test_opting_out_refuses_replies_until_opting_in(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor, tmp_path: Path
) -> None:
    channel = await make_channel("sms")
    stored = await ingestor.ingest(
        inbound(channel, "SM1", IdentityKind.PHONE, "+14155550100", text="STOP")
    )
    assert stored.conversation_id is not None and stored.contact_id is not None
    bus = InProcessBus()

    async def report(what: Reachability) -> bool:
        return await record_reachability(sessions, bus, change(channel, what), region="US")

    # A national number, read in the channel's region, names the same contact.
    assert await record_reachability(
        sessions, bus, change(channel, Reachability.OPTED_OUT), region="US"
    )
    # A redelivered STOP changes nothing and records nothing.
    assert not await record_reachability(
        sessions, bus, change(channel, Reachability.OPTED_OUT), region="US"
    )
    async with sessions() as session:
        reason = await unreachable_reason(session, channel, stored.contact_id)
        events = await session.scalar(
            select(func.count())
            .select_from(TimelineEvent)
            .where(TimelineEvent.kind == "contact.opted_out")
        )
    assert reason is not None and "opted out" in reason and "STOP" in reason
    assert events == 1

    # A reply queued before the opt-out is refused when the outbox builds it.
    async with sessions() as session, session.begin():
        reply = await queue_outbound(session, conversation_id=stored.conversation_id, text="hi")
    async with sessions() as session:
        built = await build_outbound(session, reply.id, spec_for("sms").capabilities, tmp_path)
    assert isinstance(built, Failed) and built.permanent and "opted out" in built.reason

    assert await record_reachability(
        sessions, bus, change(channel, Reachability.OPTED_IN), region="US"
    )
    async with sessions() as session:
        assert await unreachable_reason(session, channel, stored.contact_id) is None
        built = await build_outbound(session, reply.id, spec_for("sms").capabilities, tmp_path)
    assert not isinstance(built, Failed)


async def test_blocking_is_separate_from_opting_out(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("telegram")
    stored = await ingestor.ingest(inbound(channel, "1:1", IdentityKind.TELEGRAM, "424242"))
    assert stored.contact_id is not None
    user = SenderHandle(IdentityKind.TELEGRAM, "424242")
    blocked = ReachabilityChange(ChannelId(str(channel)), user, Reachability.BLOCKED, AT)
    assert await record_reachability(sessions, None, blocked)
    async with sessions() as session:
        reason = await unreachable_reason(session, channel, stored.contact_id)
    assert reason is not None and "blocked" in reason
    unblocked = ReachabilityChange(ChannelId(str(channel)), user, Reachability.UNBLOCKED, AT)
    assert await record_reachability(sessions, None, unblocked)
    async with sessions() as session:
        assert await unreachable_reason(session, channel, stored.contact_id) is None


async def test_a_change_for_someone_unknown_records_nothing(
    sessions: SessionFactory, make_channel: MakeChannel
) -> None:
    channel = await make_channel("sms")
    assert not await record_reachability(
        sessions, None, change(channel, Reachability.OPTED_OUT, "+14155550999")
    )
    assert not await record_reachability(
        sessions, None, change(channel, Reachability.OPTED_OUT, "not a number")
    )
