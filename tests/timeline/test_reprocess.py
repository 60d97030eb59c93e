"""Flagged raw payloads become messages once they can be understood; nothing is doubled."""

from __future__ import annotations

from sqlalchemy import func, select, update

from connectors.types import IdentityKind
from tests.timeline.conftest import MakeChannel
from tests.timeline.test_ingest import inbound
from timeline.db import SessionFactory
from timeline.ingest import Ingestor
from timeline.models import Message, ParseStatus, RawInbound
from timeline.reprocess import reprocess


async def test_flagged_payload_is_ingested_after_the_fix_and_only_once(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("sms")
    flagged = await ingestor.ingest(inbound(channel, "s1", IdentityKind.PHONE, "call me maybe"))
    assert flagged.status == "flagged"
    summary = await reprocess(sessions, ingestor)
    assert (summary.seen, summary.ingested, summary.still_flagged) == (1, 0, 1)

    # The fix: say the stored sender was cleaned (as a better parser would have done).
    async with sessions() as session, session.begin():
        raw = (await session.scalars(select(RawInbound))).one()
        data = dict(raw.inbound or {})
        data["sender"] = {**data["sender"], "value": "415 555 0100"}
        await session.execute(
            update(RawInbound).where(RawInbound.id == raw.id).values(inbound=data)
        )

    summary = await reprocess(sessions, ingestor)
    assert (summary.seen, summary.ingested, summary.still_flagged) == (1, 1, 0)
    async with sessions() as session:
        raw = (await session.scalars(select(RawInbound))).one()
        message = (await session.scalars(select(Message))).one()
    assert raw.parse_status == ParseStatus.OK.value and raw.error is None
    assert message.raw_id == raw.id == flagged.raw_id

    again = await reprocess(sessions, ingestor)
    assert again.seen == 0
    # A redelivery of the same provider message is now a duplicate of that message.
    redelivered = await ingestor.ingest(inbound(channel, "s1", IdentityKind.PHONE, "+14155550100"))
    assert redelivered.status == "duplicate" and redelivered.message_id == message.id
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 1


async def test_redelivery_with_a_usable_sender_takes_over_a_flagged_payload(
    ingestor: Ingestor, make_channel: MakeChannel, sessions: SessionFactory
) -> None:
    channel = await make_channel("email")
    flagged = await ingestor.ingest(inbound(channel, "m1", sender=None))
    fixed = await ingestor.ingest(inbound(channel, "m1", sender="ann@example.com"))
    assert flagged.status == "flagged"
    assert fixed.status == "created" and fixed.raw_id == flagged.raw_id
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(RawInbound)) == 1
