"""Outgoing webhooks from the timeline to a local receiver: fan-out, signed delivery,
retries on an injected clock, 410, the SSRF guard, two workers, erasure, and the
worker loop."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from inbox.webhook_delivery import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    WebhookSender,
    encode_secret,
    redeliver,
    scrub_contact_deliveries,
)
from inbox.webhook_fanout import WebhookFanout, floor_id, id_millis
from inbox.webhook_models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from inbox.webhook_signing import SIGNATURE_HEADER, new_secret
from tests.inbox.test_webhook_signing import receiver_verifies
from tests.inbox.webhook_receiver import receiving
from timeline.crypto import SecretBox
from timeline.db import SessionFactory, create_engine, session_factory
from timeline.events import Event, InProcessBus
from timeline.ids import new_id
from timeline.models import Contact, TimelineEvent
from web.webhook_loop import run

BOX = SecretBox("webhook-tests-secret-key-0123456789abcdef")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the sender and the fan-out."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def subscribe(
    sessions: SessionFactory,
    url: str,
    kinds: Sequence[str] = ("*",),
    created_at: datetime | None = None,
) -> tuple[uuid.UUID, str]:
    secret = new_secret()
    row = WebhookSubscription(
        url=url,
        event_types=list(kinds),
        secret_encrypted=encode_secret(BOX, secret),
        created_at=created_at or datetime.now(UTC),
        updated_at=T0,
    )
    async with sessions() as session, session.begin():
        session.add(row)
    return row.id, secret


async def contact(sessions: SessionFactory) -> uuid.UUID:
    row = Contact(name="Ann")
    async with sessions() as session, session.begin():
        session.add(row)
    return row.id


async def event(
    sessions: SessionFactory,
    contact_id: uuid.UUID,
    kind: str,
    event_id: uuid.UUID | None = None,
    data: dict[str, object] | None = None,
) -> uuid.UUID:
    row = TimelineEvent(
        id=event_id or new_id(),
        contact_id=contact_id,
        kind=kind,
        data=data if data is not None else {"text": "hé\u2028llo", "n": 1},
        occurred_at=T0,
    )
    async with sessions() as session, session.begin():
        session.add(row)
    return row.id


def id_at(millis: int) -> uuid.UUID:
    """A UUIDv7 of that millisecond, as a writer's clock would have drawn it."""
    return uuid.UUID(int=floor_id(millis).int | 0x7000_8000_0000_0001)


def sender(
    sessions: SessionFactory,
    clock: Clock | None = None,
    *,
    allow_private: bool = True,
    max_attempts: int = 30,
    concurrency: int = 8,
) -> WebhookSender:
    return WebhookSender(
        sessions,
        BOX,
        allow_private=allow_private,
        clock=clock,
        jitter=lambda: 0.5,  # no spread: delays are exactly 30 s, 60 s, ...
        max_attempts=max_attempts,
        concurrency=concurrency,
    )


async def deliveries(sessions: SessionFactory) -> list[WebhookDelivery]:
    async with sessions() as session:
        return list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


async def test_events_are_fanned_out_signed_and_delivered_once(sessions: SessionFactory) -> None:
    ann = await contact(sessions)
    # Drawn before any subscription existed: never delivered.
    before = await event(
        sessions, ann, "message.received", event_id=id_at(int(time.time() * 1000) - 2000)
    )
    async with receiving() as receiver:
        all_id, all_secret = await subscribe(sessions, receiver.url("/all"))
        some_id, some_secret = await subscribe(
            sessions, receiver.url("/some"), ["message.received", "contact.created"]
        )
        received = await event(sessions, ann, "message.received")
        note = await event(sessions, ann, "note.added")
        fanout = WebhookFanout(sessions)
        assert await fanout.run_once() == 3  # all: received + note; some: received
        # A transaction that drew its id earlier but committed after the round: inside
        # the overlap window, so the next round finds it. A re-read adds nothing else.
        late = await event(sessions, ann, "contact.created", event_id=id_at(id_millis(note) - 1))
        assert await fanout.run_once() == 2
        assert await WebhookFanout(sessions).run_once() == 0  # a fresh worker: no cache
        posted = sender(sessions)
        assert await posted.run_once() == 5
        assert await posted.run_once() == 0
        await posted.close()

    assert sorted(r.path for r in receiver.received) == ["/all"] * 3 + ["/some"] * 2
    for request in receiver.received:
        secret = all_secret if request.path == "/all" else some_secret
        signature = request.headers[SIGNATURE_HEADER]
        assert receiver_verifies(secret, signature, request.body)
        other = some_secret if request.path == "/all" else all_secret
        assert not receiver_verifies(other, signature, request.body)
        payload = json.loads(request.body)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers[DELIVERY_HEADER] == payload["id"]
        assert request.headers[EVENT_HEADER] == payload["event"]
        assert set(payload) == {
            "id",
            "event",
            "event_id",
            "occurred_at",
            "contact_id",
            "conversation_id",
            "message_id",
            "data",
        }
        assert payload["contact_id"] == str(ann)
        assert payload["data"] == {"text": "hé\u2028llo", "n": 1}
        assert datetime.fromisoformat(payload["occurred_at"]) == T0
    events = {(r.path, json.loads(r.body)["event_id"]) for r in receiver.received}
    assert events == {
        ("/all", str(received)),
        ("/all", str(note)),
        ("/all", str(late)),
        ("/some", str(received)),
        ("/some", str(late)),
    }
    assert str(before) not in {e for _, e in events}
    rows = await deliveries(sessions)
    assert {row.status for row in rows} == {DeliveryStatus.DELIVERED.value}
    assert all(row.attempts == 1 and row.last_status_code == 200 for row in rows)
    assert {row.subscription_id for row in rows} == {all_id, some_id}

    # Redelivered on request: the same delivery id again, once.
    async with receiving() as again:
        async with sessions() as session, session.begin():
            row = await session.get(WebhookDelivery, rows[0].id)
            assert row is not None
            sub = await session.get(WebhookSubscription, row.subscription_id)
            assert sub is not None
            sub.url = again.url("/again")
            assert await redeliver(session, row.id, datetime.now(UTC))
        posted = sender(sessions)
        assert await posted.run_once() == 1
        await posted.close()
    assert [r.headers[DELIVERY_HEADER] for r in again.received] == [str(rows[0].id)]


async def test_a_receiver_that_fails_gets_it_after_a_retry(sessions: SessionFactory) -> None:
    ann = await contact(sessions)
    clock = Clock(T0)
    async with receiving() as receiver:
        receiver.script = {"/flaky": [500, 200], "/gone": [410], "/down": [503], "/moved": [301]}
        flaky, _ = await subscribe(sessions, receiver.url("/flaky"))
        gone, _ = await subscribe(sessions, receiver.url("/gone"))
        await subscribe(sessions, receiver.url("/down"))
        await subscribe(sessions, receiver.url("/moved"))
        await event(sessions, ann, "message.received")
        await WebhookFanout(sessions, clock=clock).run_once()
        posted = sender(sessions, clock, max_attempts=2)
        assert await posted.run_once() == 4
        by_path = {r.path: r for r in receiver.received}
        assert set(by_path) == {"/flaky", "/gone", "/down", "/moved"}

        async with sessions() as session:
            rows = {
                row.subscription_id: row for row in await session.scalars(select(WebhookDelivery))
            }
            gone_sub = await session.get(WebhookSubscription, gone)
        assert gone_sub is not None and gone_sub.active is False
        assert gone_sub.inactive_reason is not None and "410" in gone_sub.inactive_reason
        assert rows[gone].status == "failed" and rows[gone].last_status_code == 410
        first = rows[flaky]
        assert (first.status, first.attempts, first.last_status_code) == ("queued", 1, 500)
        assert first.last_error == "HTTP 500: answer 500"
        assert first.next_attempt_at == T0 + timedelta(seconds=30)

        # Not due yet: nothing is posted however often the worker looks.
        clock.now = T0 + timedelta(seconds=29)
        assert await posted.run_once() == 0
        clock.now = T0 + timedelta(seconds=31)
        assert await posted.run_once() == 3  # flaky, down, moved; gone is inactive
        await posted.close()
        assert len(receiver.at("/flaky")) == 2 and len(receiver.at("/gone")) == 1
        # The same delivery, the same id, both times.
        ids = {r.headers[DELIVERY_HEADER] for r in receiver.at("/flaky")}
        assert ids == {str(first.id)}

    async with sessions() as session:
        final = {r.subscription_id: r for r in await session.scalars(select(WebhookDelivery))}
    assert final[flaky].status == "delivered" and final[flaky].attempts == 2
    assert final[flaky].delivered_at == clock.now
    down = next(r for r in final.values() if r.last_status_code == 503)
    assert down.status == "failed" and down.last_error is not None
    assert down.last_error.startswith("gave up after 2 attempt(s): HTTP 503")
    moved = next(r for r in final.values() if r.last_status_code == 301)
    assert moved.last_error is not None and "redirects are not followed" in moved.last_error


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_backoff_doubles_to_an_hour_with_jitter_and_gives_up_after_a_day(
    sessions: SessionFactory,
) -> None:
    spread = WebhookSender(sessions, BOX, allow_private=True, jitter=lambda: 0.0)
    exact = sender(sessions)
    assert [exact.delay(n).total_seconds() for n in (1, 2, 3, 7, 8, 20)] == [
        30,
        60,
        120,
        1920,
        3600,
        3600,
    ]
    assert spread.delay(1).total_seconds() == 22.5  # jitter spreads by up to ±25%
    # A receiver down for good: retried until the 24 h period is over, then failed.
    ann = await contact(sessions)
    clock = Clock(T0)
    async with receiving() as receiver:
        receiver.script = {"/down": [503]}
        await subscribe(sessions, receiver.url("/down"))
        await event(sessions, ann, "task.due")
        await WebhookFanout(sessions, clock=clock).run_once()
        retrying = sender(sessions, clock, max_attempts=100)  # the period decides
        while await retrying.run_once():
            [row] = await deliveries(sessions)
            if row.status == "queued":
                clock.now = row.next_attempt_at
        await retrying.close()
    [row] = await deliveries(sessions)
    assert row.status == "failed" and row.last_error is not None
    assert row.last_error.startswith(f"gave up after {row.attempts} attempt(s)")
    # Attempts 1-8 are 30+60+...+1920 = 3810 s apart in all, then one an hour: attempt 30
    # comes at 3810 + 22 * 3600 = 83010 s; a 31st would be at 86610 s, past 24 h.
    assert row.attempts == len(receiver.received) == 30
    assert clock.now - T0 == timedelta(seconds=83010)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_production_refuses_private_addresses(sessions: SessionFactory) -> None:
    ann = await contact(sessions)
    async with receiving() as receiver:
        await subscribe(sessions, receiver.url("/hook"))
        await subscribe(sessions, "http://localhost:9/hook")  # a name resolving to loopback
        await event(sessions, ann, "message.received")
        await WebhookFanout(sessions).run_once()
        guarded = sender(sessions, allow_private=False)
        assert await guarded.run_once() == 2
        await guarded.close()
    assert receiver.received == []
    rows = await deliveries(sessions)
    assert [row.status for row in rows] == ["failed", "failed"]
    assert all(row.last_error and row.last_error.startswith("refused:") for row in rows)


async def test_erasure_empties_payloads_and_stops_queued_ones(sessions: SessionFactory) -> None:
    ann, bob = await contact(sessions), await contact(sessions)
    async with receiving() as receiver:
        await subscribe(sessions, receiver.url("/hook"))
        await event(sessions, ann, "message.received")
        await event(sessions, bob, "message.received")
        await WebhookFanout(sessions).run_once()
        async with sessions() as session, session.begin():
            assert await scrub_contact_deliveries(session, [ann]) == 1
            assert await scrub_contact_deliveries(session, []) == 0
        posted = sender(sessions)
        assert await posted.run_once() == 1
        await posted.close()
    [request] = receiver.received
    assert json.loads(request.body)["contact_id"] == str(bob)
    rows = {row.contact_id: row for row in await deliveries(sessions)}
    assert rows[ann].payload == {} and rows[ann].status == "failed"
    assert rows[bob].payload["data"]["text"] == "hé\u2028llo"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_workers_deliver_each_event_once(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(2)]
    factories = [session_factory(engine) for engine in engines]
    try:
        ann = await contact(factories[0])
        async with receiving() as receiver:
            await subscribe(factories[0], receiver.url("/a"))
            await subscribe(factories[0], receiver.url("/b"), ["message.received"])
            for n in range(40):
                await event(factories[n % 2], ann, "message.received", data={"n": n})
            workers = [(WebhookFanout(f), sender(f, concurrency=4)) for f in factories]

            async def work(fanout: WebhookFanout, posted: WebhookSender) -> None:
                while True:
                    await fanout.run_once()
                    if not await posted.run_once():
                        return

            await asyncio.gather(*(work(f, s) for f, s in workers))
            for _, posted in workers:
                await posted.close()
        ids = [r.headers[DELIVERY_HEADER] for r in receiver.received]
        assert len(ids) == 80 and len(set(ids)) == 80
        numbers = sorted(json.loads(r.body)["data"]["n"] for r in receiver.at("/b"))
        assert numbers == list(range(40))
        rows = await deliveries(factories[0])
        assert len(rows) == 80 and {row.status for row in rows} == {"delivered"}
    finally:
        for engine in engines:
            await engine.dispose()


async def test_the_worker_loop_delivers_what_the_timeline_records(
    sessions: SessionFactory,
) -> None:
    bus = InProcessBus()
    ann = await contact(sessions)
    async with receiving() as receiver:
        _, secret = await subscribe(sessions, receiver.url("/hook"), ["contact.created"])
        stop = asyncio.Event()
        fanout, posted = WebhookFanout(sessions), sender(sessions)
        task = asyncio.create_task(run(fanout, posted, bus, stop, interval=60.0))
        try:
            created = await event(sessions, ann, "contact.created")
            await event(sessions, ann, "note.added")
            # The bus only wakes the loop (well before its 60 s poll).
            await bus.publish([Event("contact.created", {"contact_id": str(ann)})])
            await receiver.wait_for(1)
        finally:
            stop.set()
            await task
            await posted.close()
    [request] = receiver.received
    assert json.loads(request.body)["event_id"] == str(created)
    assert receiver_verifies(secret, request.headers[SIGNATURE_HEADER], request.body)
    assert int(request.headers[SIGNATURE_HEADER].split(",")[0][2:]) <= time.time() + 1
