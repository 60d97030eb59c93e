"""What chat channels bring: group members as authors, edits, replies, files not fetched."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from sqlalchemy import func, select

from connectors.types import (
    ExternalId,
    IdentityKind,
    InboundAttachment,
    SenderHandle,
)
from tests.timeline.conftest import MakeChannel
from tests.timeline.test_ingest import T0, inbound
from timeline.db import SessionFactory
from timeline.ingest import Ingestor
from timeline.models import Attachment, Conversation, Identity, Message, TimelineEvent


def tg(channel: object, external_id: str, user: str = "1001", **changes: object) -> object:
    message = inbound(channel, external_id, IdentityKind.TELEGRAM, user)  # type: ignore[arg-type]
    return dataclasses.replace(message, **changes)  # type: ignore[arg-type]


async def test_group_messages_share_the_groups_conversation_with_each_author(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("telegram")
    group = SenderHandle(IdentityKind.TELEGRAM, "-100777", "Printer owners")
    ann = SenderHandle(IdentityKind.TELEGRAM, "1001", "Ann")
    bob = SenderHandle(IdentityKind.TELEGRAM, "1002", "Bob")
    first, second = await asyncio.gather(
        ingestor.ingest(tg(channel, "-100777:1", sender=group, author=ann)),  # type: ignore[arg-type]
        ingestor.ingest(tg(channel, "-100777:2", sender=group, author=bob)),  # type: ignore[arg-type]
    )
    assert first.conversation_id == second.conversation_id
    assert first.contact_id == second.contact_id  # the group
    async with sessions() as session:
        authors = (
            await session.scalars(
                select(Identity.value)
                .join(Message, Message.sender_identity_id == Identity.id)
                .where(Message.conversation_id == first.conversation_id)
                .order_by(Identity.value)
            )
        ).all()
        rows = await session.execute(select(Identity.value, Identity.display_name))
        names = {value: name for value, name in rows}
    assert authors == ["1001", "1002"]
    assert names["-100777"] == "Printer owners" and names["1001"] == "Ann"


async def test_an_edit_changes_the_original_and_keeps_the_earlier_text(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("telegram")
    original = await ingestor.ingest(tg(channel, "5:1", text="Helo"))  # type: ignore[arg-type]
    later = T0 + timedelta(minutes=2)
    earlier = T0 + timedelta(minutes=1)
    newest = tg(
        channel, "5:1:edit:2", text="Hello, world", sent_at=later, edit_of=ExternalId("5:1")
    )
    older = tg(channel, "5:1:edit:1", text="Hello", sent_at=earlier, edit_of=ExternalId("5:1"))
    # The newer edit arrives first; the older one, arriving late, changes nothing.
    applied = await ingestor.ingest(newest)  # type: ignore[arg-type]
    late = await ingestor.ingest(older)  # type: ignore[arg-type]
    again = await ingestor.ingest(newest)  # type: ignore[arg-type]
    assert applied.status == "edited" and applied.message_id == original.message_id
    assert late.status == "edited"
    assert again.status == "duplicate"
    async with sessions() as session:
        message = await session.get(Message, original.message_id)
        assert message is not None
        assert message.text == "Hello, world" and message.edited_at == later
        count = await session.scalar(select(func.count()).select_from(Message))
        edits = (
            await session.scalars(
                select(TimelineEvent.data).where(TimelineEvent.kind == "message.edited")
            )
        ).all()
    assert count == 1
    assert [e["previous_text"] for e in edits] == ["Helo"]


async def test_an_edit_of_an_unknown_message_is_kept_as_a_message(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("telegram")
    result = await ingestor.ingest(
        tg(channel, "6:9:edit:1", text="changed", edit_of=ExternalId("6:9"))  # type: ignore[arg-type]
    )
    assert result.status == "created"


async def test_a_reply_links_to_the_message_it_answers(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("telegram")
    asked = await ingestor.ingest(tg(channel, "7:1", text="Question"))  # type: ignore[arg-type]
    # One earlier message, and one of the same batch.
    answer, same_batch = await ingestor.ingest_many(
        [
            tg(channel, "7:2", text="More", reply_to=ExternalId("7:1")),  # type: ignore[list-item]
            tg(channel, "7:3", text="And", reply_to=ExternalId("7:2")),  # type: ignore[list-item]
        ]
    )
    unknown = await ingestor.ingest(tg(channel, "7:4", reply_to=ExternalId("7:404")))  # type: ignore[arg-type]
    async with sessions() as session:
        reply = await session.get(Message, answer.message_id)
        chained = await session.get(Message, same_batch.message_id)
        orphan = await session.get(Message, unknown.message_id)
    assert reply is not None and reply.reply_to_id == asked.message_id
    assert chained is not None and chained.reply_to_id == answer.message_id
    assert orphan is not None and orphan.reply_to_id is None


async def test_a_file_that_could_not_be_fetched_is_noted_not_lost(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    channel = await make_channel("sms")
    missing = InboundAttachment(
        "photo.jpg", "image/jpeg", b"", error="download failed: 502", source="https://m/1"
    )
    present = InboundAttachment("a.txt", "text/plain", b"hello")
    message = dataclasses.replace(
        inbound(channel, "SM1", IdentityKind.PHONE, "+14155550100", text="see photo"),
        attachments=(missing, present),
    )
    result = await ingestor.ingest(message)
    async with sessions() as session:
        stored = await session.get(Message, result.message_id)
        files = (await session.scalars(select(Attachment.filename))).all()
        conversations = await session.scalar(select(func.count()).select_from(Conversation))
    assert stored is not None
    assert stored.text.startswith("see photo")
    assert "[photo.jpg not stored: download failed: 502]" in stored.text
    assert files == ["a.txt"]
    assert conversations == 1


async def test_an_edit_in_the_same_batch_as_its_original_edits_it(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor
) -> None:
    """A poller catching up hands over a message and its edit together, in either order."""
    channel = await make_channel("telegram")
    edit = tg(
        channel,
        "5:1:edit:1",
        text="Hello, world",
        sent_at=T0 + timedelta(minutes=1),
        edit_of=ExternalId("5:1"),
    )
    edited, original = await ingestor.ingest_many(
        [edit, tg(channel, "5:1", text="Helo")]  # type: ignore[list-item]
    )
    assert original.status == "created"
    assert edited.status == "edited" and edited.message_id == original.message_id
    async with sessions() as session:
        texts = (await session.scalars(select(Message.text))).all()
        events = (
            await session.scalars(
                select(TimelineEvent.data).where(TimelineEvent.kind == "message.edited")
            )
        ).all()
    assert texts == ["Hello, world"]
    assert [event["previous_text"] for event in events] == ["Helo"]
