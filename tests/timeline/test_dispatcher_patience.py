"""The outbox is patient, bounded and concurrent.

Retry periods per channel kind, parking while a channel cannot send, send timeouts,
concurrent channels, outcomes recorded through database errors, and leases on the
database's clock. Every test runs on SQLite and PostgreSQL; time moves by an injected
clock or by waiting on events, never by asserting how long something took.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import timeline.models
import timeline.outbox
from connectors.base import Capabilities, Connector
from connectors.errors import AuthError, TransientError
from connectors.types import ChannelHealth, ChannelId
from tests.timeline.test_outbox import (
    T0,
    Clock,
    FakeConnector,
    Sessions,
    attempts_of,
    dispatcher,
    get,
    make_conversation,
    queue,
)
from timeline.channel_state import HEALTH_CHANGED, record_health
from timeline.clock import database_now
from timeline.dispatcher import Dispatcher
from timeline.events import InProcessBus, Subscription
from timeline.models import Channel, Conversation, Message, OutboundJob
from timeline.outbox import OUTCOME_UNKNOWN, queue_outbound
from timeline.parking import NOT_RUNNING
from web.settings import Settings

WAIT = 30  # seconds: a generous guard for events, never a measurement

REFUSED = "the provider refused the channel's credentials: 401 bad token"


def channel_of(conversation: Conversation) -> ChannelId:
    return ChannelId(str(conversation.channel_id))


async def conversations(sessions: Sessions, n: int, kind: str = "sms") -> list[Conversation]:
    """`n` conversations, each on its own channel with its own contact."""
    return [
        await make_conversation(sessions, kind=kind, identity=("phone", f"+1415555012{i}"))
        for i in range(n)
    ]


# --- retry period ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "identity", "after_two_days"),
    [
        ("sms", ("phone", "+14155550100"), "gave up after 2 attempts over 48 hours: 421 busy"),
        ("email", ("email", "ann@example.com"), None),
    ],
    ids=["sms-24h", "email-5d"],
)
async def test_the_retry_period_depends_on_the_channel_kind(
    sessions: Sessions, kind: str, identity: tuple[str, str], after_two_days: str | None
) -> None:
    conversation = await make_conversation(sessions, kind=kind, identity=identity)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id, always=TransientError("421 busy"))
    clock = Clock()
    worker = dispatcher(sessions, connector, clock=clock)  # default period: 24 hours

    await worker.run_once()
    clock.advance(2 * 86400)
    await worker.run_once()

    stored = await get(sessions, Message, id=message.id)
    if after_two_days is None:
        # Mail keeps trying for five days.
        assert (stored.delivery_state, stored.delivery_error) == ("failed_temporary", "421 busy")
        clock.advance(3 * 86400)
        await worker.run_once()
        stored = await get(sessions, Message, id=message.id)
        after_two_days = "gave up after 3 attempts over 120 hours: 421 busy"
    assert (stored.delivery_state, stored.delivery_error) == ("failed_permanent", after_two_days)


# --- parking ----------------------------------------------------------------------------------


async def test_a_channel_that_is_not_running_parks_its_jobs_until_it_runs(
    sessions: Sessions,
) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    running: dict[ChannelId, Connector] = {}
    clock = Clock()
    worker = dispatcher(sessions, clock=clock, running=running)

    assert await worker.run_once() == 1
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts, job.parked_for, job.parked_at) == (
        "parked",
        0,
        "not_running",
        T0,
    )
    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.delivery_error) == ("failed_temporary", NOT_RUNNING)
    channel = await get(sessions, Channel, id=conversation.channel_id)
    assert (channel.health, channel.health_reason) == ("unknown", NOT_RUNNING)
    [attempt] = await attempts_of(sessions, message.id)
    assert attempt.outcome == "parked"

    # Parked for longer than the retry period: waiting for the channel costs nothing.
    clock.advance(30 * 3600)
    assert await worker.run_once() == 0
    connector = FakeConnector(conversation.channel_id)
    running[connector.channel_id] = connector
    assert await worker.run_once() == 1

    assert len(connector.calls) == 1
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts, job.parked_for) == ("done", 1, None)
    assert job.retry_from == T0 + timedelta(hours=30)
    assert (await get(sessions, Message, id=message.id)).delivery_state == "sent"
    channel = await get(sessions, Channel, id=conversation.channel_id)
    assert (channel.health, channel.health_reason) == ("connected", None)


async def test_parked_time_does_not_count_against_the_retry_period(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    running: dict[ChannelId, Connector] = {}
    clock = Clock()
    worker = dispatcher(sessions, clock=clock, running=running, retry_period=timedelta(hours=1))
    await worker.run_once()  # parked at T0
    clock.advance(5 * 3600)
    connector = FakeConnector(conversation.channel_id, always=TransientError("503"))
    running[connector.channel_id] = connector

    await worker.run_once()  # resumed at T0+5h: its hour starts now
    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.delivery_error) == ("failed_temporary", "503")
    clock.advance(3600)
    await worker.run_once()

    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.delivery_error) == (
        "failed_permanent",
        "gave up after 2 attempts over 1 hours: 503",
    )


async def test_refused_credentials_park_the_channel_and_show_in_its_health(
    sessions: Sessions,
) -> None:
    conversation = await make_conversation(sessions)
    messages = [await queue(sessions, conversation, f"reply {n}") for n in range(3)]
    connector = FakeConnector(conversation.channel_id, always=AuthError("401 bad token"))
    bus = InProcessBus()
    worker = dispatcher(sessions, connector, clock=Clock(), bus=bus)

    async with bus.subscribe() as events:
        await worker.run_once()
        told = await health_news(events)

    # The channels screen hears of it at once.
    assert told == [
        {
            "channel_id": str(conversation.channel_id),
            "health": "bad_credentials",
            "health_reason": REFUSED,
            "last_sync_at": None,
        }
    ]
    # One refusal parks the whole channel: the provider is not asked again and again.
    assert len(connector.calls) == 1
    for message in messages:
        job = await get(sessions, OutboundJob, message_id=message.id)
        assert (job.state, job.attempts, job.parked_for) == ("parked", 0, "bad_credentials")
        stored = await get(sessions, Message, id=message.id)
        assert (stored.delivery_state, stored.delivery_error) == ("failed_temporary", REFUSED)
    channel = await get(sessions, Channel, id=conversation.channel_id)
    assert (channel.health, channel.health_reason) == ("bad_credentials", REFUSED)
    assert await worker.run_once() == 0
    assert len(connector.calls) == 1

    # An admin fixes the configuration; the connector reports it connected.
    connector.always = None
    await record_health(sessions, channel_of(conversation), ChannelHealth.CONNECTED, None)
    await worker.run_once()

    assert [c.text for c in connector.calls[1:]] == ["reply 0", "reply 1", "reply 2"]
    for message in messages:
        job = await get(sessions, OutboundJob, message_id=message.id)
        assert (job.state, job.attempts) == ("done", 1)


async def test_a_channel_refused_again_after_recovery_parks_again(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(conversation.channel_id, always=AuthError("401 bad token"))
    worker = dispatcher(sessions, connector, clock=Clock())
    await worker.run_once()

    # A connector's good sync (IMAP may work while SMTP does not) resumes the jobs once.
    await record_health(sessions, channel_of(conversation), ChannelHealth.CONNECTED, None)
    await worker.run_once()
    await worker.run_once()

    assert len(connector.calls) == 2
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert (job.state, job.attempts) == ("parked", 0)
    channel = await get(sessions, Channel, id=conversation.channel_id)
    assert channel.health == "bad_credentials"


async def test_a_parked_channel_is_probed_slowly_and_resumes_when_a_probe_succeeds(
    sessions: Sessions,
) -> None:
    conversation = await make_conversation(sessions)
    messages = [await queue(sessions, conversation, f"reply {n}") for n in range(3)]
    connector = FakeConnector(conversation.channel_id, always=AuthError("401 bad token"))
    clock = Clock()
    bus = InProcessBus()
    worker = dispatcher(sessions, connector, clock=clock, park_probe_seconds=900, bus=bus)
    await worker.run_once()

    clock.advance(899)
    assert await worker.run_once() == 0
    clock.advance(1)
    await worker.run_once()  # one probe, refused again
    assert [c.text for c in connector.calls] == ["reply 0", "reply 0"]
    clock.advance(899)
    assert await worker.run_once() == 0

    # The credentials were fixed at the provider; Switchboard's health still says bad.
    connector.always = None
    clock.advance(1)
    async with bus.subscribe() as events:
        await worker.run_once()
        told = await health_news(events)

    # Told once, by the first send that went through, not by each of the three.
    assert [(news["health"], news["health_reason"]) for news in told] == [("connected", None)]
    assert [c.text for c in connector.calls[2:]] == ["reply 0", "reply 1", "reply 2"]
    for message in messages:
        assert (await get(sessions, Message, id=message.id)).delivery_state == "sent"
        assert (await get(sessions, OutboundJob, message_id=message.id)).attempts == 1
    # The health the outbox set when it parked the channel is taken back.
    channel = await get(sessions, Channel, id=conversation.channel_id)
    assert (channel.health, channel.health_reason) == ("connected", None)


async def test_a_send_leaves_a_connectors_own_health_verdict_alone(sessions: Sessions) -> None:
    conversation = await make_conversation(sessions)
    await queue(sessions, conversation)
    # The IMAP side was refused; SMTP still works.
    await record_health(
        sessions, channel_of(conversation), ChannelHealth.BAD_CREDENTIALS, "IMAP login failed"
    )

    await dispatcher(sessions, FakeConnector(conversation.channel_id), clock=Clock()).run_once()

    channel = await get(sessions, Channel, id=conversation.channel_id)
    assert (channel.health, channel.health_reason) == ("bad_credentials", "IMAP login failed")


async def health_news(events: Subscription) -> list[dict[str, Any]]:
    """The data of the channel health events published so far."""
    told = []
    while (event := await events.get(timeout=0.05)) is not None:
        if event.type == HEALTH_CHANGED:
            told.append(event.data)
    return told


# --- timeouts and concurrency -------------------------------------------------------------------


class Hang:
    """Makes a connector's send wait until released; counts sends in flight."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
async def test_a_send_that_times_out_has_an_unknown_outcome(
    sessions: Sessions, idempotent: bool
) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    connector = FakeConnector(
        conversation.channel_id, capabilities=Capabilities(idempotent_send=idempotent)
    )
    connector.during_send = Hang()  # never released: only the timeout ends it
    worker = dispatcher(sessions, connector, clock=Clock(), send_timeout=0.05, lease_seconds=60)

    await asyncio.wait_for(worker.run_once(), timeout=WAIT)

    stored = await get(sessions, Message, id=message.id)
    job = await get(sessions, OutboundJob, message_id=message.id)
    [attempt] = await attempts_of(sessions, message.id)
    assert attempt.outcome == "unknown"
    if idempotent:
        # The provider drops a repeat of the same message id: sending again is safe.
        assert (stored.delivery_state, job.state) == ("failed_temporary", "pending")
        assert stored.delivery_error == (
            "the send timed out after 0.05 s; sending again (the channel drops duplicates)"
        )
    else:
        assert (stored.delivery_state, job.state) == ("failed_permanent", "dead")
        assert stored.delivery_error == (
            "delivery outcome unknown: the send timed out after 0.05 s; "
            "not resent automatically to avoid a duplicate"
        )


async def test_a_hanging_provider_never_blocks_another_channel(sessions: Sessions) -> None:
    stuck, healthy = await conversations(sessions, 2)
    first = await queue(sessions, stuck, "stuck 1")
    second = await queue(sessions, stuck, "stuck 2")
    other = await queue(sessions, healthy, "fine")
    hang = Hang()
    hanging = FakeConnector(stuck.channel_id)
    hanging.during_send = hang
    working = FakeConnector(healthy.channel_id)
    bus = InProcessBus()
    worker = dispatcher(sessions, hanging, working, clock=None, bus=bus)
    stop = asyncio.Event()

    async with bus.subscribe() as events:
        task = asyncio.create_task(worker.run(stop, idle_interval=600))
        try:
            await asyncio.wait_for(hanging.called.wait(), timeout=WAIT)
            while True:
                event = await events.get(timeout=WAIT)
                assert event is not None, "the healthy channel's reply was never sent"
                if event.data["message_id"] == str(other.id) and event.data["state"] == "sent":
                    break
            # Meanwhile the hanging channel holds its first reply; its second waits its turn.
            assert (await get(sessions, Message, id=first.id)).delivery_state == "sending"
            assert (await get(sessions, Message, id=second.id)).delivery_state == "queued"
            assert [c.text for c in hanging.calls] == ["stuck 1"]

            hang.release.set()
            while (await get(sessions, Message, id=second.id)).delivery_state != "sent":
                event = await events.get(timeout=WAIT)
                assert event is not None, "the stuck channel never resumed"
        finally:
            hang.release.set()  # run() lets the sends in flight finish before it returns
            stop.set()
            await asyncio.wait_for(task, timeout=WAIT)

    assert [c.text for c in hanging.calls] == ["stuck 1", "stuck 2"]
    assert hang.most_in_flight == 1  # one send per channel at a time


async def test_concurrent_sends_are_bounded(sessions: Sessions) -> None:
    convs = await conversations(sessions, 3)
    for conversation in convs:
        await queue(sessions, conversation)
    hang = Hang()  # shared: counts the sends in flight across all three channels
    connectors = [FakeConnector(c.channel_id) for c in convs]
    for connector in connectors:
        connector.during_send = hang
    worker = dispatcher(sessions, *connectors, clock=None, concurrency=2)

    task = asyncio.create_task(worker.run_once())
    try:
        await asyncio.wait_for(
            asyncio.gather(*(c.called.wait() for c in connectors[:2])), timeout=WAIT
        )
    finally:
        hang.release.set()
    assert await asyncio.wait_for(task, timeout=WAIT) == 3

    assert all(len(c.calls) == 1 for c in connectors)
    assert hang.most_in_flight == 2


# --- recording through database errors ------------------------------------------------------


class FlakySessions(async_sessionmaker[AsyncSession]):
    """A session factory whose next `failures` sessions fail as if the database were down."""

    failures = 0
    failed = 0

    def __call__(self, **local_kw: Any) -> AsyncSession:
        if self.failures > 0:
            self.failures -= 1
            self.failed += 1
            raise OperationalError("BEGIN", {}, ConnectionRefusedError("database is down"))
        return super().__call__(**local_kw)


@pytest.mark.parametrize(
    ("failure", "expected"),
    [(None, "sent"), (TransientError("503"), "failed_temporary")],
    ids=["accepted", "failed"],
)
async def test_an_outcome_is_recorded_once_the_database_answers_again(
    sessions: Sessions, failure: Exception | None, expected: str
) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    flaky = FlakySessions(sessions.kw["bind"], expire_on_commit=False)
    connector = FakeConnector(conversation.channel_id, failures=[failure] if failure else [])

    async def database_goes_down() -> None:
        flaky.failures = 3  # the next three sessions are the attempts to record

    connector.during_send = database_goes_down
    worker = dispatcher(flaky, connector, clock=Clock(), record_retry_base=0.01)

    assert await asyncio.wait_for(worker.run_once(), timeout=WAIT) == 1

    assert flaky.failed == 3
    stored = await get(sessions, Message, id=message.id)
    assert stored.delivery_state == expected
    assert stored.delivery_error != OUTCOME_UNKNOWN
    assert len(connector.calls) == 1


class RefusingSessions(async_sessionmaker[AsyncSession]):
    """A session factory whose next `refuse` sessions fail as a database refusing values."""

    refuse = 0
    refused = 0

    def __call__(self, **local_kw: Any) -> AsyncSession:
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            raise DataError("UPDATE", {}, ValueError("invalid byte sequence"))
        return super().__call__(**local_kw)


async def test_an_outcome_the_database_refuses_is_not_retried_forever(
    sessions: Sessions,
) -> None:
    conversation = await make_conversation(sessions)
    message = await queue(sessions, conversation)
    refusing = RefusingSessions(sessions.kw["bind"], expire_on_commit=False)
    connector = FakeConnector(conversation.channel_id)

    async def database_refuses() -> None:
        refusing.refuse = 1  # the attempt to record; a retry would be the second

    connector.during_send = database_refuses
    worker = dispatcher(refusing, connector, clock=Clock(), record_retry_base=0.01)

    assert await asyncio.wait_for(worker.run_once(), timeout=WAIT) == 1
    assert refusing.refused == 1  # one refusal, no retry loop
    job = await get(sessions, OutboundJob, message_id=message.id)
    assert job.state == "sending"  # left for its lease to settle
    assert len(connector.calls) == 1


# --- the database's clock -----------------------------------------------------------------------


@pytest.mark.parametrize("skew_hours", [5, -5], ids=["ahead", "behind"])
async def test_leases_follow_the_database_clock_whatever_the_workers_clock_says(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch, skew_hours: int
) -> None:
    # This process's own clock is hours off (SQLite's clock is the host's, left alone).
    real_utcnow = timeline.models.utcnow
    skewed = lambda: real_utcnow() + timedelta(hours=skew_hours)  # noqa: E731
    monkeypatch.setattr(timeline.models, "utcnow", skewed)
    monkeypatch.setattr(timeline.outbox, "utcnow", skewed)
    conversation = await make_conversation(sessions)
    async with sessions() as session, session.begin():
        message = await queue_outbound(session, conversation_id=conversation.id, text="Hi")
    hang = Hang()
    connector = FakeConnector(conversation.channel_id)
    connector.during_send = hang
    holder = dispatcher(sessions, connector, clock=None, worker_id="holder")
    other = dispatcher(sessions, connector, clock=None, worker_id="other")

    sending = asyncio.create_task(holder.run_once())
    try:
        await asyncio.wait_for(connector.called.wait(), timeout=WAIT)
        # The job was due at once, and its lease runs two minutes on the database's clock.
        job = await get(sessions, OutboundJob, message_id=message.id)
        async with sessions() as session:
            now = await database_now(session)
        assert job.lease_until is not None
        assert now < job.lease_until <= now + timedelta(seconds=120)
        assert await other.run_once() == 0  # a live lease is left alone
        assert (await get(sessions, OutboundJob, message_id=message.id)).worker == "holder"
    finally:
        sending.cancel()  # the holder dies mid-send
        with pytest.raises(asyncio.CancelledError):
            await sending

    # Two minutes pass on the database's clock.
    async with sessions() as session, session.begin():
        await session.execute(
            sql_update(OutboundJob)
            .where(OutboundJob.message_id == message.id)
            .values(lease_until=job.lease_until - timedelta(seconds=121))
        )
    assert await other.run_once() == 1

    stored = await get(sessions, Message, id=message.id)
    assert (stored.delivery_state, stored.delivery_error) == ("failed_permanent", OUTCOME_UNKNOWN)


async def test_database_now_is_timezone_aware_utc(sessions: Sessions) -> None:
    async with sessions() as session:
        first = await database_now(session)
        second = await database_now(await session.connection())
    assert first.utcoffset() == timedelta(0)
    assert first <= second


# --- configuration ------------------------------------------------------------------------------


def test_the_lease_must_outlast_the_send_timeout(tmp_path: Any) -> None:
    with pytest.raises(ValidationError, match="SEND_TIMEOUT_SECONDS"):
        Settings(outbox_send_timeout_seconds=60, outbox_lease_seconds=60)
    settings = Settings(outbox_send_timeout_seconds=30, outbox_lease_seconds=60)
    assert (settings.outbox_retry_hours, settings.outbox_concurrency) == (24, 16)
    with pytest.raises(ValueError, match="lease_seconds longer"):
        Dispatcher(
            async_sessionmaker(),
            {}.get,
            InProcessBus(),
            worker_id="w",
            data_dir=tmp_path,
            send_timeout=60,
            lease_seconds=60,
        )


async def test_jobs_of_other_channels_are_claimed_while_one_is_parked(
    sessions: Sessions,
) -> None:
    refused, fine = await conversations(sessions, 2)
    parked = await queue(sessions, refused)
    sent = await queue(sessions, fine)
    worker = dispatcher(
        sessions,
        FakeConnector(refused.channel_id, always=AuthError("401 bad token")),
        FakeConnector(fine.channel_id),
        clock=Clock(),
    )

    await worker.run_once()

    assert (await get(sessions, OutboundJob, message_id=parked.id)).state == "parked"
    assert (await get(sessions, Message, id=sent.id)).delivery_state == "sent"
    async with sessions() as session:
        rows = (await session.execute(select(Channel.id, Channel.health))).all()
    healths = {row.id: row.health for row in rows}
    assert healths == {refused.channel_id: "bad_credentials", fine.channel_id: "unknown"}
