"""Files whose first download failed are fetched again by the worker: joined to their
message when they arrive, given up with a clear note when they never do."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from connectors.types import ChannelId, IdentityKind, InboundAttachment
from tests.timeline.conftest import MakeChannel
from tests.timeline.test_ingest import T0, inbound
from timeline.attachment_fetch import AttachmentFetcher
from timeline.db import SessionFactory
from timeline.events import Event, InProcessBus
from timeline.files import blob_path
from timeline.ingest import Ingestor
from timeline.models import Attachment, AttachmentFetch, Message, TimelineEvent

PHOTO = b"\xff\xd8\xff\xe0 a jpeg"


class FakeConnector:
    """Answers `fetch_attachment` from a script of results; counts the calls."""

    def __init__(self, *answers: InboundAttachment | Exception) -> None:
        self.answers = list(answers)
        self.asked: list[InboundAttachment] = []

    async def fetch_attachment(self, attachment: InboundAttachment) -> InboundAttachment:
        self.asked.append(attachment)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(attachment: InboundAttachment) -> InboundAttachment:
    return dataclasses.replace(attachment, data=PHOTO, size=len(PHOTO), error=None)


def failed(attachment: InboundAttachment, why: str, retry: bool = True) -> InboundAttachment:
    return dataclasses.replace(attachment, error=why, retry=retry)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


MISSING = InboundAttachment(
    "photo.jpg",
    "image/jpeg",
    b"",
    size=len(PHOTO),
    error="download timed out",
    source="https://api.twilio.com/media/ME1",
    retry=True,
)


async def _message_with_missing_file(
    make_channel: MakeChannel, ingestor: Ingestor
) -> tuple[uuid.UUID, uuid.UUID]:
    channel = await make_channel("sms")
    message = dataclasses.replace(
        inbound(channel, "SM1", IdentityKind.PHONE, "+14155550100", text="see the photo"),
        attachments=(MISSING,),
    )
    result = await ingestor.ingest(message)
    assert result.message_id is not None
    return channel, result.message_id


def _fetcher(
    sessions: SessionFactory,
    channel: uuid.UUID,
    connector: FakeConnector | None,
    clock: Callable[[], datetime],
    data_dir: Path,
    bus: InProcessBus | None = None,
    **options: object,
) -> AttachmentFetcher:
    running = [ChannelId(str(channel))] if connector is not None else []
    return AttachmentFetcher(
        sessions,
        lambda: running,
        lambda _: connector,  # type: ignore[arg-type,return-value]
        bus or InProcessBus(),
        data_dir=data_dir,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


async def _due_in(sessions: SessionFactory) -> AttachmentFetch:
    async with sessions() as session:
        return (await session.scalars(select(AttachmentFetch))).one()


async def test_a_file_fetched_later_joins_its_message_and_the_note_goes(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor, tmp_path: Path
) -> None:
    channel, message_id = await _message_with_missing_file(make_channel, ingestor)
    row = await _due_in(sessions)
    clock = Clock(row.next_at - timedelta(seconds=1))
    connector = FakeConnector(ok(MISSING))
    bus = InProcessBus()
    fetcher = _fetcher(sessions, channel, connector, clock, tmp_path / "data", bus)
    async with bus.subscribe() as subscription:
        assert await fetcher.run_once() == 0  # not due yet
        clock.now = row.next_at
        assert await fetcher.run_once() == 1
        event = await subscription.get(timeout=5)
    assert [a.source for a in connector.asked] == [MISSING.source]
    async with sessions() as session:
        message = await session.get(Message, message_id)
        files = (await session.scalars(select(Attachment))).all()
        left = (await session.scalars(select(AttachmentFetch))).all()
        kinds = (await session.scalars(select(TimelineEvent.kind))).all()
    assert message is not None and message.text == "see the photo"
    [file] = files
    assert (file.message_id, file.filename, file.content_type, file.size) == (
        message_id,
        "photo.jpg",
        "image/jpeg",
        len(PHOTO),
    )
    assert blob_path(tmp_path / "data", file.sha256).read_bytes() == PHOTO
    assert left == []
    assert "attachment.fetched" in kinds
    assert event == Event(
        "message.updated",
        {
            "message_id": str(message_id),
            "conversation_id": str(message.conversation_id),
            "contact_id": str(message.contact_id),
            "channel_id": str(channel),
        },
    )


async def test_failures_back_off_and_the_last_one_is_said_for_good(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor, tmp_path: Path
) -> None:
    channel, message_id = await _message_with_missing_file(make_channel, ingestor)
    clock = Clock((await _due_in(sessions)).next_at)
    connector = FakeConnector(
        failed(MISSING, "download failed: HTTP 503"),
        RuntimeError("connector bug"),
        failed(MISSING, "download failed: HTTP 502"),
    )
    fetcher = _fetcher(
        sessions,
        channel,
        connector,
        clock,
        tmp_path / "data",
        max_attempts=3,
        base_delay=timedelta(minutes=1),
    )
    waits = []
    for _ in range(3):
        before = clock.now
        assert await fetcher.run_once() == 1
        row = await _due_in(sessions)
        waits.append(row.next_at - before)
        clock.now = row.next_at
    assert waits[:2] == [timedelta(minutes=1), timedelta(minutes=2)]
    assert (row.attempts, row.gave_up, row.error) == (3, True, "download failed: HTTP 502")
    assert await fetcher.run_once() == 0  # given up: never asked again
    assert len(connector.asked) == 3
    async with sessions() as session:
        message = await session.get(Message, message_id)
        failure = (
            await session.scalars(
                select(TimelineEvent).where(TimelineEvent.kind == "attachment.failed")
            )
        ).one()
    assert message is not None
    assert message.text.split("\n") == [
        "see the photo",
        "[photo.jpg not stored: download failed: HTTP 502]",
    ]
    assert failure.message_id == message_id and failure.data["attempts"] == 3


async def test_a_failure_that_cannot_pass_ends_at_once(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor, tmp_path: Path
) -> None:
    channel, message_id = await _message_with_missing_file(make_channel, ingestor)
    clock = Clock((await _due_in(sessions)).next_at)
    connector = FakeConnector(failed(MISSING, "download failed: HTTP 404 Not Found", False))
    fetcher = _fetcher(sessions, channel, connector, clock, tmp_path / "data")
    assert await fetcher.run_once() == 1
    row = await _due_in(sessions)
    assert (row.attempts, row.gave_up) == (1, True)
    async with sessions() as session:
        message = await session.get(Message, message_id)
    assert message is not None
    assert message.text.endswith("[photo.jpg not stored: download failed: HTTP 404 Not Found]")


async def test_only_channels_running_here_are_claimed(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor, tmp_path: Path
) -> None:
    channel, _ = await _message_with_missing_file(make_channel, ingestor)
    clock = Clock((await _due_in(sessions)).next_at)
    idle = _fetcher(sessions, channel, None, clock, tmp_path / "data")
    assert await idle.run_once() == 0
    row = await _due_in(sessions)
    assert row.attempts == 0  # untouched, for the worker that runs the channel


async def test_a_claim_hides_the_row_until_it_lapses(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor, tmp_path: Path
) -> None:
    """A worker that died mid-fetch delays the file; it never loses it or fetches it twice
    at the same time."""
    channel, message_id = await _message_with_missing_file(make_channel, ingestor)
    clock = Clock((await _due_in(sessions)).next_at)
    first = _fetcher(sessions, channel, FakeConnector(), clock, tmp_path / "a")
    jobs = await first._claim()  # claimed, then the worker "dies"
    assert [job.message_id for job in jobs] == [message_id]
    connector = FakeConnector(ok(MISSING))
    second = _fetcher(sessions, channel, connector, clock, tmp_path / "b")
    assert await second.run_once() == 0
    clock.now += first.lease
    assert await second.run_once() == 1
    assert len(connector.asked) == 1
    async with sessions() as session:
        assert len((await session.scalars(select(Attachment))).all()) == 1


async def test_two_workers_at_once_fetch_each_file_once(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor, tmp_path: Path
) -> None:
    channel = await make_channel("sms")
    for n in range(6):
        message = dataclasses.replace(
            inbound(channel, f"SM{n}", IdentityKind.PHONE, f"+1415555010{n}"),
            attachments=(dataclasses.replace(MISSING, source=f"https://api.twilio.com/m/{n}"),),
        )
        await ingestor.ingest(message)
    async with sessions() as session, session.begin():
        await session.execute(update(AttachmentFetch).values(next_at=T0))
    clock = Clock(T0)
    connectors = [FakeConnector(*[ok(MISSING)] * 6) for _ in range(2)]
    workers = [
        _fetcher(sessions, channel, c, clock, tmp_path / "data", batch_size=2) for c in connectors
    ]
    while sum(await asyncio.gather(*(w.run_once() for w in workers))):
        pass
    asked = [a.source for c in connectors for a in c.asked]
    assert sorted(asked) == sorted(f"https://api.twilio.com/m/{n}" for n in range(6))
    async with sessions() as session:
        assert len((await session.scalars(select(Attachment))).all()) == 6
        assert (await session.scalars(select(AttachmentFetch))).all() == []


async def test_an_erased_message_ends_its_fetch_quietly(
    sessions: SessionFactory, make_channel: MakeChannel, ingestor: Ingestor, tmp_path: Path
) -> None:
    channel, message_id = await _message_with_missing_file(make_channel, ingestor)
    clock = Clock((await _due_in(sessions)).next_at)
    connector = FakeConnector(ok(MISSING))
    fetcher = _fetcher(sessions, channel, connector, clock, tmp_path / "data")
    jobs = await fetcher._claim()
    async with sessions() as session, session.begin():
        message = await session.get(Message, message_id)
        await session.delete(message)
    for job in jobs:
        await fetcher._fetch(job)
    async with sessions() as session:
        assert (await session.scalars(select(Attachment))).all() == []
        assert (await session.scalars(select(AttachmentFetch))).all() == []


@pytest.mark.parametrize("attempts", [1, 2, 5, 7, 40])
def test_the_delay_doubles_up_to_its_cap(attempts: int, tmp_path: Path) -> None:
    fetcher = AttachmentFetcher(
        None,  # type: ignore[arg-type]
        list,
        lambda _: None,
        InProcessBus(),
        data_dir=tmp_path,
        base_delay=timedelta(minutes=1),
        max_delay=timedelta(hours=1),
    )
    expected = min(timedelta(minutes=2 ** (attempts - 1)), timedelta(hours=1))
    assert fetcher.delay(attempts) == expected
