"""The durable outbox: queueing, claiming, retries, crash recovery and delivery reports.

Every test runs on SQLite and PostgreSQL (the `engine` fixture); event tests also run on
the in-process bus and on Redis. Time moves by an injected clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import pytest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.base import Capabilities, Connector, ConnectorContext
from connectors.errors import AuthError, PermanentError, TransientError
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
from timeline.models import (
    Channel,
    Contact,
    Conversation,
    Identity,
    JobState,
    Message,
    OutboundJob,
    TimelineEvent,
)
from timeline.outbox import (
    OUTCOME_UNKNOWN,
    apply_delivery_update,
    do_queue_outbound,
    queue_outbound,
    retry_message,
)

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
PHONE = "+14155550100"
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

    async def start(self, context: ConnectorContext) -> None:
        return None

    async def stop(self) -> None:
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
        return SendResult(ProviderMessageId(f"prov-{len(self.calls)}"))

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
    clock: Clock,
    bus: EventBus | None = None,
    worker_id: str = "w1",
    **options: Any,
) -> Dispatcher:
    return Dispatcher(
        sessions,
        registry(*connectors),
        bus or InProcessBus(),
        worker_id=worker_id,
        clock=clock,
        **options,
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


# --- sending and retrying -----------------------------------------------------------------


async def test_send_addresses_the_contacts_identity(sessions: Sessions) -> None:
    conversation = await make_conversation(
        sessions, kind="telegram", identity=("telegram", "424242")
    )
    message = await queue(sessions, conversation, "Hi there")
    connector = FakeConnector(conversation.channel_id)

    assert await dispatcher(sessions, connector, clock=Clock()).run_once() == 1

    [outbound] = connector.calls
    assert outbound.recipient == "424242"
    assert outbound.thread.chat_id == "424242"
    assert outbound.message_id == str(message.id)
    assert outbound.text == "Hi there"
    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.provider_message_id) == ("sent", "prov-1")
    assert (await get(sessions, OutboundJob, message_id=message.id)).state == "done"


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


async def test_gives_up_after_max_attempts(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id, always=TransientError("timed out"))
    clock = Clock()
    worker = dispatcher(sessions, connector, clock=clock, max_attempts=3, backoff_cap=10)

    for _ in range(5):
        await worker.run_once()
        clock.advance(10)

    assert len(connector.calls) == 3
    stored = await get(sessions, Message, id=message.id)
    assert stored.delivery_state == "failed_permanent"
    assert stored.delivery_error == "gave up after 3 attempts: timed out"
    assert (await get(sessions, OutboundJob, message_id=message.id)).state == "dead"


@pytest.mark.parametrize(
    ("failure", "running", "expected"),
    [
        (AuthError("401 bad token"), True, "the provider refused the channel's credentials"),
        (RuntimeError("connector bug"), True, "unexpected error: RuntimeError: connector bug"),
        (None, False, "is not running"),
    ],
    ids=["auth", "unexpected", "no-connector"],
)
async def test_other_failures_are_retried_with_the_error_recorded(
    sessions: Sessions, failure: BaseException | None, running: bool, expected: str
) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id, always=failure)
    worker = dispatcher(sessions, *([connector] if running else []), clock=Clock())

    assert await worker.run_once() == 1

    stored = await get(sessions, Message, id=message.id)
    assert stored.delivery_state == "failed_temporary"
    assert stored.delivery_error is not None and expected in stored.delivery_error
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
    assert stored.delivery_error == (
        "the message is 11 characters long; this channel carries at most 10"
    )
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
    conversation = await make_conversation(sessions)
    messages = [await queue(sessions, conversation, f"reply {n}") for n in range(30)]
    connector = FakeConnector(conversation.channel_id)
    # A second engine: the other worker has its own connections, as another process would.
    other_engine = create_engine(engine.url.render_as_string(hide_password=False))
    clock = Clock()
    workers = [
        dispatcher(sessions, connector, clock=clock, worker_id="a", batch_size=4),
        dispatcher(session_factory(other_engine), connector, clock=clock, worker_id="b"),
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

    sent_ids = [c.message_id for c in connector.calls]
    assert sorted(sent_ids) == sorted(str(m.id) for m in messages)  # each exactly once
    assert sum(totals) == 30
    async with sessions() as session:
        jobs = (await session.scalars(select(OutboundJob))).all()
        states = set((await session.scalars(select(Message.delivery_state))).all())
    assert {(j.state, j.attempts) for j in jobs} == {("done", 1)}
    assert states == {"sent"}


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
