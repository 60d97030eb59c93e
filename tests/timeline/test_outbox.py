"""The durable outbox: queueing, claiming, retries, crash recovery and delivery reports.

Every test runs on SQLite and PostgreSQL (the `engine` fixture); event tests also run on
the in-process bus and on Redis. Time moves by an injected clock, never by sleeping.
Patience (retry periods, parking, timeouts, concurrency, recording, the database clock)
is tested in test_dispatcher_patience.py with the helpers of this module.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.base import Capabilities, Connector
from connectors.email.connector import CAPABILITIES as EMAIL_CAPABILITIES
from connectors.errors import PermanentError, TransientError
from connectors.types import (
    ChannelId,
    DeliveryState,
    DeliveryUpdate,
    Outbound,
    ProviderMessageId,
    SendResult,
)
from timeline.db import create_engine, session_factory
from timeline.dispatcher import Dispatcher, retry_delay
from timeline.events import Event, EventBus, InProcessBus
from timeline.files import store_blob
from timeline.models import (
    Attachment,
    Channel,
    Contact,
    Conversation,
    DeliveryAttempt,
    Identity,
    JobState,
    Message,
    OutboundJob,
    PendingDeliveryReport,
    TimelineEvent,
)
from timeline.outbox import (
    OUTCOME_UNKNOWN,
    OutboundFile,
    apply_delivery_update,
    do_queue_outbound,
    queue_outbound,
    retry_message,
)

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
PHONE = "+14155550100"
# Tests that send no attachment never read it.
NO_DATA_DIR = Path("/nonexistent/switchboard-test-data")
Sessions = async_sessionmaker[AsyncSession]
M = TypeVar("M")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeConnector:
    """Stands in for a provider connector: records every send; raises what it is scripted to."""

    def __init__(
        self,
        channel_id: uuid.UUID,
        *,
        capabilities: Capabilities | None = None,
        failures: Sequence[BaseException] = (),
        always: BaseException | None = None,
    ) -> None:
        self.channel_id = ChannelId(str(channel_id))
        self.capabilities = capabilities or Capabilities()
        self.calls: list[Outbound] = []
        self.failures = list(failures)  # raised by the first sends, in order
        self.always = always  # raised by every send
        self.during_send: Callable[[], Awaitable[None]] | None = None
        self.called = asyncio.Event()
        self.rfc_message_id: str | None = None  # what an email connector would report

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, message: Outbound) -> SendResult:
        self.calls.append(message)
        self.called.set()
        await asyncio.sleep(0)  # let other workers run while "the provider" answers
        if self.during_send is not None:
            await self.during_send()
        if self.always is not None:
            raise self.always
        if self.failures:
            raise self.failures.pop(0)
        return SendResult(
            ProviderMessageId(f"prov-{len(self.calls)}"), rfc_message_id=self.rfc_message_id
        )

    def routes(self) -> list[web.RouteDef]:
        return []


def registry(*connectors: FakeConnector) -> Callable[[ChannelId], Connector | None]:
    by_id: dict[ChannelId, Connector] = {c.channel_id: c for c in connectors}
    return by_id.get


class CommitCheckingBus:
    """Wraps a bus; at each publish, reads the database to see what was committed."""

    def __init__(self, inner: EventBus, sessions: Sessions) -> None:
        self.inner = inner
        self.sessions = sessions
        self.seen: list[tuple[Event, str | None]] = []  # (event, committed delivery state)

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            async with self.sessions() as session:
                state = await session.scalar(
                    select(Message.delivery_state).where(
                        Message.id == uuid.UUID(event.data["message_id"])
                    )
                )
            self.seen.append((event, state))
        await self.inner.publish(events)

    def subscribe(self) -> Any:
        return self.inner.subscribe()

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)


async def make_conversation(
    sessions: Sessions, *, kind: str = "sms", identity: tuple[str, str] = ("phone", PHONE)
) -> Conversation:
    """A channel, a contact with one identity, and an open conversation waiting for us."""
    async with sessions() as session, session.begin():
        channel = Channel(kind=kind, name=f"{kind} test", config_encrypted="")
        contact = Contact(name="Ann Example")
        session.add_all([channel, contact])
        await session.flush()
        session.add(Identity(contact_id=contact.id, kind=identity[0], value=identity[1]))
        conversation = Conversation(
            contact_id=contact.id,
            channel_id=channel.id,
            last_activity_at=T0 - timedelta(hours=1),
            first_inbound_at=T0 - timedelta(hours=1),
            waiting_since=T0 - timedelta(hours=1),
            message_count=1,
        )
        session.add(conversation)
    return conversation


async def queue(sessions: Sessions, conversation: Conversation, text: str = "Hello") -> Message:
    async with sessions() as session, session.begin():
        return await queue_outbound(session, conversation_id=conversation.id, text=text, now=T0)


async def get(sessions: Sessions, model: type[M], **where: Any) -> M:
    async with sessions() as session:
        row = (await session.scalars(select(model).filter_by(**where))).one()
        return row


async def count(sessions: Sessions, model: type[Any]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def dispatcher(
    sessions: Sessions,
    *connectors: FakeConnector,
    clock: Clock | None,
    bus: EventBus | None = None,
    worker_id: str = "w1",
    running: dict[ChannelId, Connector] | None = None,
    data_dir: Path = NO_DATA_DIR,
    **options: Any,
) -> Dispatcher:
    """A worker; `running` is the live registry when a test starts or stops connectors."""
    return Dispatcher(
        sessions,
        running.get if running is not None else registry(*connectors),
        bus or InProcessBus(),
        worker_id=worker_id,
        data_dir=data_dir,
        clock=clock,
        **options,
    )


async def attempts_of(sessions: Sessions, message_id: uuid.UUID) -> list[DeliveryAttempt]:
    """The message's delivery history, oldest first."""
    async with sessions() as session:
        return list(
            await session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.message_id == message_id)
                .order_by(DeliveryAttempt.started_at, DeliveryAttempt.id)
            )
        )


# --- queueing -------------------------------------------------------------------------------


async def test_queue_outbound_stores_message_job_and_event_together(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    author = uuid.uuid4()
    async with sessions() as session, session.begin():
        message = await queue_outbound(
            session, conversation_id=conversation.id, text="Hi Ann", author_id=author, now=T0
        )

    stored = await get(sessions, Message, id=message.id)
    assert (stored.direction, stored.kind, stored.private) == ("out", "message", False)
    assert (stored.delivery_state, stored.delivery_rank) == ("queued", 0)
    assert stored.author_id == author
    assert (stored.channel_id, stored.contact_id) == (
        conversation.channel_id,
        conversation.contact_id,
    )
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts, job.next_attempt_at) == ("pending", 0, T0)
    event = await get(sessions, TimelineEvent, message_id=message.id)
    assert event.kind == "message.sent"
    conv = await get(sessions, Conversation, id=conversation.id)
    assert conv.message_count == 2
    assert conv.last_activity_at == conv.last_outbound_at == conv.first_response_at == T0
    assert conv.waiting_since is None


async def test_rolled_back_queue_leaves_neither_message_nor_job(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with sessions() as session, session.begin():
            await queue_outbound(session, conversation_id=conversation.id, text="x", now=T0)
            assert await session.scalar(select(func.count()).select_from(OutboundJob)) == 1
            raise Abort

    assert await count(sessions, Message) == 0
    assert await count(sessions, OutboundJob) == 0
    assert await count(sessions, TimelineEvent) == 0
    conv = await get(sessions, Conversation, id=conversation.id)
    assert conv.message_count == 1
    assert conv.waiting_since is not None


async def test_private_note_has_no_job_and_does_not_answer(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    async with sessions() as session, session.begin():
        note = await queue_outbound(
            session, conversation_id=conversation.id, text="VIP", private=True, now=T0
        )

    stored = await get(sessions, Message, id=note.id)
    assert (stored.kind, stored.private, stored.delivery_state) == ("note", True, None)
    assert await count(sessions, OutboundJob) == 0
    assert (await get(sessions, TimelineEvent, message_id=note.id)).kind == "note.added"
    conv = await get(sessions, Conversation, id=conversation.id)
    assert conv.first_response_at is None
    assert conv.waiting_since == T0 - timedelta(hours=1)
    assert conv.message_count == 2


async def test_do_queue_outbound_publishes_after_commit(sessions: Sessions, bus: EventBus) -> None:
    conversation = await make_conversation(sessions)
    checking = CommitCheckingBus(bus, sessions)
    async with bus.subscribe() as events:
        message = await do_queue_outbound(
            sessions, checking, conversation_id=conversation.id, text="Hi", now=T0
        )
        received = await events.get(timeout=5)
    assert received is not None
    assert received.type == "message.created"
    assert received.data["message_id"] == str(message.id)
    assert received.data["conversation_id"] == str(conversation.id)
    assert checking.seen[0][1] == "queued"  # the message was committed when published


async def test_queue_outbound_records_attachments_of_replies_and_notes(
    sessions: Sessions, tmp_path: Path
) -> None:
    conversation = await make_conversation(sessions)
    digest, size = store_blob(tmp_path, b"%PDF-1.7 quote")
    quote = OutboundFile("quote.pdf", "application/pdf", digest, size)
    photo = OutboundFile("site.jpg", "image/jpeg", *store_blob(tmp_path, b"\xff\xd8 jpeg"))
    async with sessions() as session, session.begin():
        reply = await queue_outbound(
            session, conversation_id=conversation.id, text="", attachments=[quote, photo], now=T0
        )
        note = await queue_outbound(
            session,
            conversation_id=conversation.id,
            text="scan",
            private=True,
            attachments=[quote],
            now=T0,
        )

    async with sessions() as session:
        files = (
            await session.scalars(select(Attachment).order_by(Attachment.created_at, Attachment.id))
        ).all()
    assert [
        (f.message_id, f.filename, f.content_type, f.sha256, f.size, f.inline) for f in files
    ] == [
        (reply.id, "quote.pdf", "application/pdf", digest, size, False),
        (reply.id, "site.jpg", "image/jpeg", photo.sha256, photo.size, False),
        (note.id, "quote.pdf", "application/pdf", digest, size, False),
    ]
    assert await count(sessions, OutboundJob) == 1  # the note is not sent


async def test_a_message_needs_text_or_an_attachment(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    with pytest.raises(ValueError, match="needs text or an attachment"):
        async with sessions() as session, session.begin():
            await queue_outbound(session, conversation_id=conversation.id, text="  ", now=T0)
    assert await count(sessions, Message) == 0


# --- sending and retrying -----------------------------------------------------------------


async def test_send_addresses_the_contacts_identity(sessions: Sessions) -> None:
    conversation = await make_conversation(
        sessions, kind="telegram", identity=("telegram", "424242")
    )
    message = await queue(sessions, conversation, "Hi there")
    connector = FakeConnector(conversation.channel_id)

    assert await dispatcher(sessions, connector, clock=Clock()).run_once() == 1

    [outbound] = connector.calls
    # The recipient kind comes from the registry; the connector knows a Telegram reply's
    # recipient is the chat id.
    assert outbound.recipient == "424242"
    assert outbound.thread.chat_id is None
    assert outbound.message_id == str(message.id)
    assert outbound.text == "Hi there"
    assert outbound.attachments == ()
    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.provider_message_id) == ("sent", "prov-1")
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert job.state == "done"
    [attempt] = await attempts_of(sessions, message.id)
    assert (attempt.id, attempt.attempt, attempt.worker) == (job.claim_id, 1, "w1")
    assert (attempt.outcome, attempt.provider_message_id, attempt.delivery_state) == (
        "accepted",
        "prov-1",
        "sent",
    )
    assert (attempt.started_at, attempt.finished_at) == (T0, T0)


async def test_transient_failure_is_retried_then_sent(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id, failures=[TransientError("provider 503")])
    clock = Clock()
    worker = dispatcher(sessions, connector, clock=clock)

    assert await worker.run_once() == 1
    failed = await get(sessions, Message, id=message.id)
    assert (failed.delivery_state, failed.delivery_error) == ("failed_temporary", "provider 503")
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts) == ("pending", 1)
    # base 2 s for the first retry, times a jitter in [0.5, 1.0]
    assert T0 + timedelta(seconds=1) <= job.next_attempt_at <= T0 + timedelta(seconds=2)

    assert await worker.run_once() == 0  # not due yet
    assert len(connector.calls) == 1

    clock.advance(2)
    assert await worker.run_once() == 1
    sent = await get(sessions, Message, id=message.id)
    assert (sent.delivery_state, sent.provider_message_id, sent.delivery_error) == (
        "sent",
        "prov-2",
        None,
    )
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts) == ("done", 2)
    assert [c.message_id for c in connector.calls] == [str(message.id)] * 2
    history = await attempts_of(sessions, message.id)
    assert [(a.attempt, a.outcome, a.error, a.provider_message_id) for a in history] == [
        (1, "failed", "provider 503", None),
        (2, "accepted", None, "prov-2"),
    ]


async def test_a_providers_reason_with_nul_and_broken_unicode_is_recorded(
    sessions: Sessions,
) -> None:
    # PostgreSQL refuses NUL in text: the provider's words must not stop the recording.
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    raw_reply = "451 \x00try later \ud800" + "x" * 5000
    connector = FakeConnector(conversation.channel_id, failures=[TransientError(raw_reply)])
    clock = Clock()
    worker = dispatcher(sessions, connector, clock=clock)
    assert await worker.run_once() == 1
    failed = await get(sessions, Message, id=message.id)
    assert failed.delivery_state == "failed_temporary"
    assert failed.delivery_error is not None
    assert failed.delivery_error.startswith("451 try later \ufffd")
    assert len(failed.delivery_error) == 2000
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert job.last_error == failed.delivery_error

    clock.advance(10)
    assert await worker.run_once() == 1  # sent, as prov-2
    changed = await apply_delivery_update(
        sessions,
        DeliveryUpdate(
            ChannelId(str(conversation.channel_id)),
            ProviderMessageId("prov-2"),
            DeliveryState.FAILED_PERMANENT,
            error="30003\x00 unreachable",
        ),
    )
    assert changed is True
    assert (await get(sessions, Message, id=message.id)).delivery_error == "30003 unreachable"


async def test_permanent_failure_keeps_the_reason_and_is_not_retried(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(
        conversation.channel_id, failures=[PermanentError("21610: recipient unsubscribed")]
    )
    clock = Clock()
    worker = dispatcher(sessions, connector, clock=clock)

    assert await worker.run_once() == 1
    clock.advance(3600)
    assert await worker.run_once() == 0

    assert len(connector.calls) == 1
    stored = await get(sessions, Message, id=message.id)
    assert stored.delivery_state == "failed_permanent"
    assert stored.delivery_error == "21610: recipient unsubscribed"
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts) == ("dead", 1)


async def test_gives_up_once_the_retry_period_has_passed(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id, always=TransientError("timed out"))
    clock = Clock()
    worker = dispatcher(
        sessions, connector, clock=clock, retry_period=timedelta(hours=1), backoff_cap=600
    )

    # Every retry is due within the cap (600 s): attempts at T0, T0+10 min, ... T0+1 h.
    for _ in range(6):
        assert await worker.run_once() == 1
        stored = await get(sessions, Message, id=message.id)
        assert (stored.delivery_state, stored.delivery_error) == ("failed_temporary", "timed out")
        clock.advance(600)
    assert await worker.run_once() == 1
    clock.advance(3600)
    assert await worker.run_once() == 0

    assert len(connector.calls) == 7
    stored = await get(sessions, Message, id=message.id)
    assert stored.delivery_state == "failed_permanent"
    assert stored.delivery_error == "gave up after 7 attempts over 1 hours: timed out"
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts) == ("dead", 7)


async def test_an_unexpected_error_is_retried_with_the_error_recorded(
    sessions: Sessions,
) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id, always=RuntimeError("connector bug"))
    worker = dispatcher(sessions, connector, clock=Clock())

    assert await worker.run_once() == 1

    stored = await get(sessions, Message, id=message.id)
    assert stored.delivery_state == "failed_temporary"
    assert stored.delivery_error == "unexpected error: RuntimeError: connector bug"
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts) == ("pending", 1)
    assert job.next_attempt_at > T0


async def test_retry_after_from_the_provider_is_honoured(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(
        conversation.channel_id, failures=[TransientError("429", retry_after=300)]
    )
    await dispatcher(sessions, connector, clock=Clock()).run_once()
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert job.next_attempt_at == T0 + timedelta(seconds=300)


def test_retry_delay_grows_exponentially_up_to_the_cap() -> None:
    assert retry_delay(1, base=2, cap=600, jitter=1.0) == 2
    assert retry_delay(4, base=2, cap=600, jitter=1.0) == 16
    assert retry_delay(4, base=2, cap=600, jitter=0.5) == 8
    assert retry_delay(30, base=2, cap=600, jitter=1.0) == 600
    assert retry_delay(1, base=2, cap=600, jitter=1.0, retry_after=30) == 30
    assert 1.0 <= retry_delay(1, base=2, cap=600) <= 2.0


async def test_over_long_text_fails_without_calling_the_provider(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation, "x" * 11)
    connector = FakeConnector(
        conversation.channel_id, capabilities=Capabilities(max_text_length=10)
    )

    assert await dispatcher(sessions, connector, clock=Clock()).run_once() == 1

    assert connector.calls == []
    stored = await get(sessions, Message, id=message.id)
    assert stored.delivery_state == "failed_permanent"
    assert stored.delivery_error == "this channel carries at most 10 characters; this text has 11"
    assert (await get(sessions, OutboundJob, message_id=message.id)).state == "dead"


async def test_contact_without_an_address_on_the_channel_fails_clearly(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions, kind="email", identity=("phone", PHONE))
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id)

    await dispatcher(sessions, connector, clock=Clock()).run_once()

    assert connector.calls == []
    stored = await get(sessions, Message, id=message.id)
    assert stored.delivery_state == "failed_permanent"
    assert stored.delivery_error == "the contact has no email to send to on this channel"


async def test_two_dispatchers_never_send_a_job_twice(
    sessions: Sessions, engine: AsyncEngine
) -> None:
    conversations = [
        await make_conversation(sessions, identity=("phone", f"+1415555011{n}")) for n in range(3)
    ]
    messages = [
        await queue(sessions, conversation, f"reply {n}")
        for n in range(10)
        for conversation in conversations
    ]
    connectors = [FakeConnector(c.channel_id) for c in conversations]
    # A second engine: the other worker has its own connections, as another process would.
    other_engine = create_engine(engine.url.render_as_string(hide_password=False))
    clock = Clock()
    workers = [
        dispatcher(sessions, *connectors, clock=clock, worker_id="a", batch_size=4),
        dispatcher(session_factory(other_engine), *connectors, clock=clock, worker_id="b"),
    ]

    async def drain(worker: Dispatcher) -> int:
        total = 0
        while handled := await worker.run_once():
            total += handled
        return total

    try:
        totals = await asyncio.gather(*(drain(w) for w in workers))
    finally:
        await other_engine.dispose()

    sent_ids = [c.message_id for connector in connectors for c in connector.calls]
    assert sorted(sent_ids) == sorted(str(m.id) for m in messages)  # each exactly once
    # Each channel sent its replies in the order they were queued.
    for conversation, connector in zip(conversations, connectors, strict=True):
        queued = [str(m.id) for m in messages if m.conversation_id == conversation.id]
        assert [c.message_id for c in connector.calls] == queued
    assert sum(totals) == 30
    async with sessions() as session:
        jobs = (await session.scalars(select(OutboundJob))).all()
        states = set((await session.scalars(select(Message.delivery_state))).all())
    assert {(j.state, j.attempts) for j in jobs} == {("done", 1)}
    assert states == {"sent"}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_later_reply_never_overtakes_one_another_worker_is_claiming(
    sessions: Sessions, engine: AsyncEngine
) -> None:
    # Another worker has locked the channel's first job (it is between picking it and
    # taking the channel's claim lock); this worker must not send the second one first.
    conversation = await make_conversation(sessions)
    first, second = (
        await queue(sessions, conversation, "1"),
        await queue(sessions, conversation, "2"),
    )
    connector = FakeConnector(conversation.channel_id)
    worker = dispatcher(sessions, connector, clock=Clock(), worker_id="a")
    async with engine.connect() as other:
        await other.execute(
            select(OutboundJob.id)
            .where(OutboundJob.message_id == first.id)
            .with_for_update(skip_locked=True)
        )
        assert await worker.run_once() == 0
        assert connector.calls == []
        await other.rollback()
    while await worker.run_once():
        pass
    assert [c.message_id for c in connector.calls] == [str(first.id), str(second.id)]


async def test_attachments_are_sent_from_the_blob_store(sessions: Sessions, tmp_path: Path) -> None:
    conversation = await make_conversation(sessions)
    files = [
        OutboundFile("a.txt", "text/plain", *store_blob(tmp_path, b"first file")),
        OutboundFile("b.png", "image/png", *store_blob(tmp_path, b"\x89PNG second")),
    ]
    async with sessions() as session, session.begin():
        message = await queue_outbound(
            session,
            conversation_id=conversation.id,
            text="see attached",
            attachments=files,
            now=T0,
        )
    connector = FakeConnector(
        conversation.channel_id,
        capabilities=Capabilities(supports_attachments=True, max_attachment_bytes=1024),
    )

    assert await dispatcher(sessions, connector, clock=Clock(), data_dir=tmp_path).run_once() == 1

    [outbound] = connector.calls
    assert [(a.filename, a.content_type, a.data) for a in outbound.attachments] == [
        ("a.txt", "text/plain", b"first file"),
        ("b.png", "image/png", b"\x89PNG second"),
    ]
    assert (await get(sessions, Message, id=message.id)).delivery_state == "sent"


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [
        (Capabilities(), "this channel cannot send attachments"),
        (
            Capabilities(supports_attachments=True, max_attachment_bytes=10),
            "this channel carries at most 10 bytes of attachments in total; these are 20 bytes",
        ),
        (Capabilities(can_send=False), "this channel cannot send replies"),
    ],
    ids=["unsupported", "too-large", "cannot-send"],
)
async def test_a_reply_the_channel_cannot_carry_fails_without_calling_the_provider(
    sessions: Sessions, tmp_path: Path, capabilities: Capabilities, expected: str
) -> None:
    conversation = await make_conversation(sessions)
    files = [
        OutboundFile("a.txt", "text/plain", *store_blob(tmp_path, b"0123456789")),
        OutboundFile("b.txt", "text/plain", *store_blob(tmp_path, b"abcdefghij")),
    ]
    async with sessions() as session, session.begin():
        message = await queue_outbound(
            session, conversation_id=conversation.id, text="hi", attachments=files, now=T0
        )
    connector = FakeConnector(conversation.channel_id, capabilities=capabilities)

    assert await dispatcher(sessions, connector, clock=Clock(), data_dir=tmp_path).run_once() == 1

    assert connector.calls == []
    stored = await get(sessions, Message, id=message.id)
    assert stored.delivery_state == "failed_permanent"
    assert stored.delivery_error is not None and stored.delivery_error.startswith(expected)
    assert (await get(sessions, OutboundJob, message_id=message.id)).state == "dead"


async def test_a_missing_attachment_file_fails_permanently(
    sessions: Sessions, tmp_path: Path
) -> None:
    conversation = await make_conversation(sessions)
    gone = OutboundFile("contract.pdf", "application/pdf", "ab" * 32, 1234)  # never stored
    async with sessions() as session, session.begin():
        message = await queue_outbound(
            session, conversation_id=conversation.id, text="hi", attachments=[gone], now=T0
        )
    connector = FakeConnector(
        conversation.channel_id, capabilities=Capabilities(supports_attachments=True)
    )

    await dispatcher(sessions, connector, clock=Clock(), data_dir=tmp_path).run_once()

    assert connector.calls == []
    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.delivery_error) == (
        "failed_permanent",
        "the attachment 'contract.pdf' is missing from the file store",
    )


async def test_a_channel_kind_without_replies_refuses_them(sessions: Sessions) -> None:
    conversation = await make_conversation(
        sessions, kind="webform", identity=("webform", "visitor-1")
    )
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id)

    await dispatcher(sessions, connector, clock=Clock()).run_once()

    assert connector.calls == []
    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.delivery_error) == (
        "failed_permanent",
        "replies cannot be sent on a webform channel",
    )


async def test_the_message_id_an_email_went_out_with_is_stored(sessions: Sessions) -> None:
    conversation = await make_conversation(
        sessions, kind="email", identity=("email", "ann@example.com")
    )
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id)
    connector.rfc_message_id = " <reply-1@switchboard.example> "

    await dispatcher(sessions, connector, clock=Clock()).run_once()

    [outbound] = connector.calls
    assert outbound.recipient == "ann@example.com"
    stored = await get(sessions, Message, id=message.id)
    # Stored as ingestion looks it up when a customer's reply cites it.
    assert stored.rfc_message_id == "reply-1@switchboard.example"


# --- crash recovery ---------------------------------------------------------------------------


async def crash_while_sending(sessions: Sessions, connector: FakeConnector, clock: Clock) -> None:
    """A worker claims the job and dies while the provider call is in flight."""
    never = asyncio.Event()

    async def provider_never_answers() -> None:
        await never.wait()

    connector.during_send = provider_never_answers
    doomed = dispatcher(sessions, connector, clock=clock, worker_id="doomed", lease_seconds=120)
    task = asyncio.create_task(doomed.run_once())
    await asyncio.wait_for(connector.called.wait(), timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    connector.during_send = None


async def test_expired_lease_without_idempotent_send_is_not_resent(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id)
    clock = Clock()
    await crash_while_sending(sessions, connector, clock)
    survivor = dispatcher(sessions, connector, clock=clock, worker_id="survivor")

    assert await survivor.run_once() == 0  # the lease still runs: the job is left alone
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.worker) == ("sending", "doomed")

    clock.advance(121)
    assert await survivor.run_once() == 1
    clock.advance(3600)
    assert await survivor.run_once() == 0

    assert len(connector.calls) == 1
    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.delivery_error) == ("failed_permanent", OUTCOME_UNKNOWN)
    assert (await get(sessions, OutboundJob, message_id=message.id)).state == "dead"


async def test_expired_lease_with_idempotent_send_is_resent(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(
        conversation.channel_id, capabilities=Capabilities(idempotent_send=True)
    )
    clock = Clock()
    await crash_while_sending(sessions, connector, clock)

    clock.advance(121)
    assert await dispatcher(sessions, connector, clock=clock, worker_id="survivor").run_once() == 2

    assert [c.message_id for c in connector.calls] == [str(message.id)] * 2
    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.provider_message_id) == ("sent", "prov-2")
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts, job.worker) == ("done", 2, "survivor")


async def test_send_returning_after_its_lease_was_recovered_is_recorded_once(
    sessions: Sessions,
) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id)
    clock = Clock()
    other = dispatcher(sessions, connector, clock=clock, worker_id="other")

    async def slow_provider() -> None:
        # While the provider takes its time, the lease runs out and another worker
        # declares the outcome unknown.
        clock.advance(121)
        assert await other.run_once() == 1
        assert (await get(sessions, Message, id=message.id)).delivery_error == OUTCOME_UNKNOWN

    connector.during_send = slow_provider
    await dispatcher(sessions, connector, clock=clock, worker_id="slow").run_once()

    assert len(connector.calls) == 1
    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.provider_message_id) == ("sent", "prov-1")
    assert stored.delivery_error is None
    assert (await get(sessions, OutboundJob, message_id=message.id)).state == "done"


async def test_agent_retry_of_a_failed_message_sends_it_again(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id, failures=[PermanentError("blocked")])
    clock = Clock()
    worker = dispatcher(sessions, connector, clock=clock)
    await worker.run_once()

    async with sessions() as session, session.begin():
        assert await retry_message(session, message.id, now=clock()) is True
    queued = await get(sessions, Message, id=message.id)
    assert (queued.delivery_state, queued.delivery_rank, queued.delivery_error) == (
        "queued",
        0,
        None,
    )
    assert await worker.run_once() == 1

    stored = await get(sessions, Message, id=message.id)
    assert stored.delivery_state == "sent"
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts) == ("done", 1)
    async with sessions() as session, session.begin():
        assert await retry_message(session, message.id) is False  # only failed messages


# --- delivery reports -----------------------------------------------------------------------


async def test_delivery_reports_only_move_forward(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id)
    await dispatcher(sessions, connector, clock=Clock()).run_once()
    channel = ChannelId(str(conversation.channel_id))
    provider_id = ProviderMessageId("prov-1")

    async def report(state: DeliveryState, error: str | None = None) -> bool:
        return await apply_delivery_update(
            sessions, DeliveryUpdate(channel, provider_id, state, error=error, at=T0)
        )

    async def state() -> str | None:
        return (await get(sessions, Message, id=message.id)).delivery_state

    assert await report(DeliveryState.DELIVERED) is True
    assert await state() == "delivered"
    assert await report(DeliveryState.SENT) is False  # late "sent"
    assert await state() == "delivered"
    assert await report(DeliveryState.READ) is True
    assert await state() == "read"
    assert await report(DeliveryState.FAILED_PERMANENT, "30005") is False
    assert await state() == "read"
    unknown = DeliveryUpdate(channel, ProviderMessageId("nope"), DeliveryState.READ)
    assert await apply_delivery_update(sessions, unknown) is False


async def test_failure_report_after_sent_records_the_error(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    await dispatcher(sessions, FakeConnector(conversation.channel_id), clock=Clock()).run_once()

    changed = await apply_delivery_update(
        sessions,
        DeliveryUpdate(
            ChannelId(str(conversation.channel_id)),
            ProviderMessageId("prov-1"),
            DeliveryState.FAILED_PERMANENT,
            error="30003: unreachable handset",
        ),
    )

    assert changed is True
    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.delivery_error) == (
        "failed_permanent",
        "30003: unreachable handset",
    )


async def test_a_report_before_the_send_is_recorded_is_kept_and_applied(
    sessions: Sessions, bus: EventBus
) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    channel = ChannelId(str(conversation.channel_id))
    connector = FakeConnector(conversation.channel_id)
    # Twilio's status callback beats its own API answer.
    early = DeliveryUpdate(channel, ProviderMessageId("prov-1"), DeliveryState.DELIVERED, at=T0)
    assert await apply_delivery_update(sessions, early) is False
    kept = await get(sessions, PendingDeliveryReport, provider_message_id="prov-1")
    assert (kept.channel_id, kept.state) == (conversation.channel_id, "delivered")

    async with bus.subscribe() as events:
        await dispatcher(sessions, connector, clock=Clock(), bus=bus).run_once()
        received = [await events.get(timeout=5) for _ in range(2)]

    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.provider_message_id) == ("delivered", "prov-1")
    assert [e.data["state"] for e in received if e] == ["sent", "delivered"]
    assert await count(sessions, PendingDeliveryReport) == 0
    [attempt] = await attempts_of(sessions, message.id)
    assert attempt.delivery_state == "delivered"


async def test_a_kept_report_that_raced_the_record_is_applied_by_the_next_round(
    sessions: Sessions,
) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    worker = dispatcher(sessions, FakeConnector(conversation.channel_id), clock=Clock())
    await worker.run_once()
    # Kept by a report whose transaction did not yet see the send's record.
    async with sessions() as session, session.begin():
        session.add(
            PendingDeliveryReport(
                channel_id=conversation.channel_id,
                provider_message_id="prov-1",
                state="failed_permanent",
                error="30003: unreachable handset",
                received_at=T0,
            )
        )

    await worker.run_once()

    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.delivery_error) == (
        "failed_permanent",
        "30003: unreachable handset",
    )
    assert await count(sessions, PendingDeliveryReport) == 0


async def test_kept_reports_nobody_claims_are_dropped_after_a_week(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    channel = ChannelId(str(conversation.channel_id))
    stray = DeliveryUpdate(channel, ProviderMessageId("SM-unknown"), DeliveryState.DELIVERED)
    assert await apply_delivery_update(sessions, stray, now=T0) is False
    clock = Clock()
    worker = dispatcher(sessions, clock=clock)

    clock.advance(6 * 86400)
    await worker.run_once()
    assert await count(sessions, PendingDeliveryReport) == 1
    clock.advance(2 * 86400)
    await worker.run_once()
    assert await count(sessions, PendingDeliveryReport) == 0


async def test_a_retried_message_keeps_the_old_provider_id_in_history(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    channel = ChannelId(str(conversation.channel_id))
    clock = Clock()
    worker = dispatcher(sessions, FakeConnector(conversation.channel_id), clock=clock)
    await worker.run_once()
    undelivered = DeliveryUpdate(
        channel, ProviderMessageId("prov-1"), DeliveryState.FAILED_PERMANENT, error="30005"
    )
    assert await apply_delivery_update(sessions, undelivered) is True

    async with sessions() as session, session.begin():
        assert await retry_message(session, message.id, now=clock()) is True
    assert (await get(sessions, Message, id=message.id)).provider_message_id is None
    await worker.run_once()
    # A late report about the first attempt lands in its history, not on the message.
    late = DeliveryUpdate(channel, ProviderMessageId("prov-1"), DeliveryState.READ)
    assert await apply_delivery_update(sessions, late) is False

    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.provider_message_id) == ("sent", "prov-2")
    history = await attempts_of(sessions, message.id)
    assert [(a.provider_message_id, a.delivery_state, a.error) for a in history] == [
        ("prov-1", "read", "30005"),
        ("prov-2", "sent", None),
    ]
    assert await count(sessions, PendingDeliveryReport) == 0


# --- events ---------------------------------------------------------------------------------


async def test_delivery_events_are_published_after_commit(
    sessions: Sessions, bus: EventBus
) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id, failures=[TransientError("busy")])
    checking = CommitCheckingBus(bus, sessions)
    clock = Clock()
    worker = dispatcher(sessions, connector, clock=clock, bus=checking)

    async with bus.subscribe() as events:
        await worker.run_once()
        clock.advance(10)
        await worker.run_once()
        await apply_delivery_update(
            sessions,
            DeliveryUpdate(
                ChannelId(str(conversation.channel_id)),
                ProviderMessageId("prov-2"),
                DeliveryState.DELIVERED,
            ),
            checking,
        )
        received = [await events.get(timeout=5) for _ in range(3)]

    expected = [("failed_temporary", "busy"), ("sent", None), ("delivered", None)]
    assert [(e.data["state"], e.data["error"]) for e in received if e] == expected
    for event in received:
        assert event is not None and event.type == "message.delivery"
        assert event.data["message_id"] == str(message.id)
        assert event.data["conversation_id"] == str(conversation.id)
    # At each publish the database already held the state the event announces.
    assert [(e.data["state"], committed) for e, committed in checking.seen] == [
        (s, s) for s, _ in expected
    ]


class StopSignal(asyncio.Event):
    """The `stop` event of `Dispatcher.run`; tells the test when the worker went idle."""

    def __init__(self) -> None:
        super().__init__()
        self.idle = asyncio.Event()

    async def wait(self) -> Literal[True]:
        self.idle.set()  # run() waits on stop only while idle
        return await super().wait()


async def test_wake_sends_a_fresh_reply_without_waiting(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    connector = FakeConnector(conversation.channel_id)
    worker = dispatcher(sessions, connector, clock=Clock())
    stop = StopSignal()
    # An idle interval far longer than the test's guard below: only wake() can end it.
    task = asyncio.create_task(worker.run(stop, idle_interval=600))
    try:
        await asyncio.wait_for(stop.idle.wait(), timeout=30)
        await queue(sessions, conversation)
        worker.wake()
        await asyncio.wait_for(connector.called.wait(), timeout=30)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    assert len(connector.calls) == 1


async def test_run_survives_a_failing_job_and_sends_the_next(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    first = await queue(sessions, conversation, "one")
    second = await queue(sessions, conversation, "two")
    connector = FakeConnector(conversation.channel_id, failures=[RuntimeError("kaput")])
    worker = dispatcher(sessions, connector, clock=Clock())
    stop = asyncio.Event()

    async def stop_after_second() -> None:
        if len(connector.calls) == 2:
            stop.set()

    connector.during_send = stop_after_second
    await asyncio.wait_for(worker.run(stop, idle_interval=600), timeout=30)

    assert (await get(sessions, Message, id=first.id)).delivery_state == "failed_temporary"
    assert (await get(sessions, Message, id=second.id)).delivery_state == "sent"
    assert (await get(sessions, OutboundJob, message_id=first.id)).state == JobState.PENDING


async def test_a_channels_sends_are_spaced_at_its_provider_rate_across_workers(
    sessions: Sessions,
) -> None:
    conversation = await make_conversation(sessions, kind="sms")
    for number in range(5):
        await queue(sessions, conversation, f"reply {number}")
    rate = 10.0  # sends a second: each send holds the channel for up to 0.1 s
    connector = FakeConnector(
        conversation.channel_id, capabilities=Capabilities(sends_per_second=rate)
    )
    log: list[tuple[str, float]] = []
    all_held = asyncio.Event()

    async def note_start() -> None:
        log.append(("send", 0.0))

    async def hold(seconds: float) -> None:
        log.append(("hold", seconds))
        await asyncio.sleep(0)  # let the other worker try to claim the channel meanwhile
        if sum(1 for kind, _ in log if kind == "hold") == 5:
            all_held.set()

    connector.during_send = note_start
    workers = [dispatcher(sessions, connector, clock=None, worker_id=name) for name in ("w1", "w2")]
    for worker in workers:
        worker.hold = hold
    stop = asyncio.Event()
    running = [asyncio.create_task(worker.run(stop, idle_interval=0.01)) for worker in workers]
    try:
        await asyncio.wait_for(all_held.wait(), 60)
    finally:
        stop.set()
        await asyncio.gather(*running)
    # Every send is followed by its hold before the channel's next send starts, whichever
    # worker takes it: the pace is kept across workers.
    assert [kind for kind, _ in log] == ["send", "hold"] * 5
    assert all(0 <= seconds <= 1 / rate for kind, seconds in log if kind == "hold")
    assert [call.text for call in connector.calls] == [f"reply {n}" for n in range(5)]


# --- replies on another channel than the conversation's ----------------------------------------


async def add_channel(sessions: Sessions, kind: str) -> uuid.UUID:
    async with sessions() as session, session.begin():
        channel = Channel(kind=kind, name=f"another {kind}", config_encrypted="")
        session.add(channel)
    return channel.id


async def add_inbound(
    sessions: Sessions,
    conversation: Conversation,
    *,
    identity: tuple[str, str],
    external_id: str,
    rfc_message_id: str | None = None,
    subject: str | None = None,
    at: datetime = T0 - timedelta(hours=1),
    channel_id: uuid.UUID | None = None,
) -> Message:
    """A customer's message in the conversation from their identity (created if new)."""
    async with sessions() as session, session.begin():
        kind, value = identity
        known = await session.scalar(
            select(Identity).where(Identity.kind == kind, Identity.value == value)
        )
        if known is None:
            known = Identity(contact_id=conversation.contact_id, kind=kind, value=value)
            session.add(known)
            await session.flush()
        stored = await session.get(Conversation, conversation.id, with_for_update=True)
        assert stored is not None
        stored.last_seq += 1
        message = Message(
            conversation_id=conversation.id,
            channel_id=channel_id or conversation.channel_id,
            contact_id=conversation.contact_id,
            direction="in",
            external_id=external_id,
            rfc_message_id=rfc_message_id,
            sender_identity_id=known.id,
            subject=subject,
            text="hello",
            sent_at=at,
            arrived_at=at,
            seq=stored.last_seq,
        )
        session.add(message)
    return message


async def test_a_reply_queued_on_another_channel_is_sent_there(sessions: Sessions) -> None:
    form = await make_conversation(sessions, kind="webform", identity=("email", "ann@example.com"))
    await add_inbound(
        sessions,
        form,
        identity=("email", "ann@example.com"),
        external_id="form-1",
        subject="Form: Pricing enquiry",
    )
    email = await add_channel(sessions, "email")
    async with sessions() as session, session.begin():
        message = await queue_outbound(
            session, conversation_id=form.id, text="20 seats: 400 EUR", now=T0, channel_id=email
        )

    stored = await get(sessions, Message, id=message.id)
    # In the form's conversation, on the email channel.
    assert (stored.conversation_id, stored.channel_id) == (form.id, email)
    assert (await get(sessions, OutboundJob, message_id=message.id)).channel_id == email
    event = await get(sessions, TimelineEvent, message_id=message.id)
    assert (event.kind, event.data["channel_id"]) == ("message.sent", str(email))
    conv = await get(sessions, Conversation, id=form.id)
    assert (conv.channel_id, conv.first_response_at, conv.waiting_since) == (
        form.channel_id,
        T0,
        None,
    )

    on_email = FakeConnector(email, capabilities=Capabilities(supports_subject=True))
    on_form = FakeConnector(form.channel_id)
    assert await dispatcher(sessions, on_email, on_form, clock=Clock()).run_once() == 1
    assert on_form.calls == []
    [outbound] = on_email.calls
    assert (outbound.channel_id, outbound.recipient) == (str(email), "ann@example.com")
    # A form message has no Message-ID: nothing to cite, the form's subject to answer.
    assert (outbound.thread.in_reply_to, outbound.thread.references) == (None, ())
    assert outbound.subject == outbound.thread.subject == "Form: Pricing enquiry"
    assert (await get(sessions, Message, id=message.id)).delivery_state == "sent"


async def test_a_switched_email_reply_cites_only_the_threads_emails(sessions: Sessions) -> None:
    conversation = await make_conversation(
        sessions, kind="email", identity=("email", "ann@example.com")
    )
    await add_inbound(
        sessions,
        conversation,
        identity=("email", "ann@example.com"),
        external_id="m-1",
        rfc_message_id="ann-1@example.com",
        subject="Seats",
    )
    other_mailbox = await add_channel(sessions, "email")
    async with sessions() as session, session.begin():
        await queue_outbound(
            session, conversation_id=conversation.id, text="Hi", now=T0, channel_id=other_mailbox
        )
    connector = FakeConnector(other_mailbox, capabilities=EMAIL_CAPABILITIES)
    await dispatcher(sessions, connector, clock=Clock()).run_once()
    [outbound] = connector.calls
    assert outbound.thread.in_reply_to == "ann-1@example.com"
    assert outbound.thread.references == ("ann-1@example.com",)
    assert outbound.thread.subject == "Seats"


async def test_a_switched_reply_goes_to_the_number_they_used_on_that_channel(
    sessions: Sessions,
) -> None:
    conversation = await make_conversation(
        sessions, kind="email", identity=("email", "ann@example.com")
    )
    sms = await add_channel(sessions, "sms")
    # Her first number, then the one she texted the SMS channel from (another conversation).
    async with sessions() as session, session.begin():
        session.add(Identity(contact_id=conversation.contact_id, kind="phone", value=PHONE))
    async with sessions() as session, session.begin():
        texts = Conversation(
            contact_id=conversation.contact_id, channel_id=sms, last_activity_at=T0
        )
        session.add(texts)
    await add_inbound(sessions, texts, identity=("phone", "+14155550111"), external_id="SM1")
    async with sessions() as session, session.begin():
        await queue_outbound(
            session, conversation_id=conversation.id, text="Hi", now=T0, channel_id=sms
        )
    connector = FakeConnector(sms)
    await dispatcher(sessions, connector, clock=Clock()).run_once()
    [outbound] = connector.calls
    assert outbound.recipient == "+14155550111"


async def test_a_switched_reply_quotes_no_message_of_another_channel(sessions: Sessions) -> None:
    conversation = await make_conversation(
        sessions, kind="telegram", identity=("telegram", "424242")
    )
    asked = await add_inbound(
        sessions, conversation, identity=("telegram", "424242"), external_id="77"
    )
    other_bot = await add_channel(sessions, "telegram")
    async with sessions() as session, session.begin():
        await queue_outbound(
            session,
            conversation_id=conversation.id,
            text="Answer",
            now=T0,
            reply_to_id=asked.id,
            channel_id=other_bot,
        )
        await queue_outbound(
            session, conversation_id=conversation.id, text="Same bot", now=T0, reply_to_id=asked.id
        )
    elsewhere, here = FakeConnector(other_bot), FakeConnector(conversation.channel_id)
    await dispatcher(sessions, elsewhere, here, clock=Clock()).run_once()
    # Telegram numbers messages per chat: message 77 of one bot is no message of another.
    assert [(o.text, o.reply_to) for o in elsewhere.calls] == [("Answer", None)]
    assert [(o.text, o.reply_to) for o in here.calls] == [("Same bot", "77")]


async def test_a_private_note_takes_no_channel(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    email = await add_channel(sessions, "email")
    with pytest.raises(ValueError, match="takes no channel"):
        async with sessions() as session, session.begin():
            await queue_outbound(
                session,
                conversation_id=conversation.id,
                text="internal",
                private=True,
                channel_id=email,
            )
    assert await count(sessions, Message) == 0


async def test_do_queue_outbound_passes_the_channel_on(sessions: Sessions, bus: EventBus) -> None:
    conversation = await make_conversation(sessions)
    email = await add_channel(sessions, "email")
    async with bus.subscribe() as events:
        message = await do_queue_outbound(
            sessions, bus, conversation_id=conversation.id, text="Hi", channel_id=email
        )
        received = await events.get(timeout=5)
    assert (await get(sessions, Message, id=message.id)).channel_id == email
    assert received is not None
    assert (received.type, received.data["channel_id"]) == ("message.created", str(email))
