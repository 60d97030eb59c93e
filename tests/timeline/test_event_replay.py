"""Event ids and replay: every bus numbers events in delivery order and can hand a
reconnecting client exactly what it missed, or say it cannot (the client resyncs)."""

from __future__ import annotations

import uuid

import pytest

from timeline.events import Event, EventBus, InProcessBus, RedisBus, event_order


async def test_ids_follow_delivery_order_and_replay_gives_what_followed(bus: EventBus) -> None:
    assert await bus.latest_id() is None
    async with bus.subscribe() as events:
        await bus.publish([Event("a", {"n": 1}), Event("b", {"changes": [], "x": {}})])
        await bus.publish([Event("c", {"n": 3})])
        received = [await events.get(timeout=5) for _ in range(3)]
    assert all(event is not None and event.id is not None for event in received)
    ids = [event.id for event in received if event is not None and event.id is not None]
    orders = [event_order(i) for i in ids]
    assert None not in orders and orders == sorted(orders) and len(set(ids)) == 3
    # The JSON keeps its exact shape through the bus (an empty list stays a list).
    assert received[1] == Event("b", {"changes": [], "x": {}})
    assert await bus.latest_id() == ids[2]

    replayed = await bus.replay(ids[0])
    assert replayed is not None
    assert [(e.id, e.type, e.data) for e in replayed] == [
        (ids[1], "b", {"changes": [], "x": {}}),
        (ids[2], "c", {"n": 3}),
    ]
    assert await bus.replay(ids[2]) == []
    for unknown in ("", "nonsense", "1-2-3", "99999999999999-0", "0-0", "1" * 30 + "-1"):
        assert await bus.replay(unknown) is None


@pytest.mark.parametrize("impl", ["memory", "redis"])
async def test_an_id_older_than_the_log_means_resync(impl: str, redis_url: str) -> None:
    bus: EventBus
    if impl == "memory":
        bus = InProcessBus(log_size=5)
    else:
        # MAXLEN ~ trims whole nodes (100 entries by default): publish well past that.
        bus = RedisBus(redis_url, topic=f"test:{uuid.uuid4().hex}", log_size=5)
    try:
        async with bus.subscribe() as events:
            await bus.publish([Event("first")])
            first = await events.get(timeout=5)
            assert first is not None and first.id is not None
            await bus.publish([Event("n", {"i": i}) for i in range(300)])
            latest = await bus.latest_id()
        assert latest is not None
        assert await bus.replay(first.id) is None
        recent = await bus.replay(latest)
        assert recent == []
    finally:
        await bus.close()


async def test_an_id_of_an_earlier_in_process_bus_is_unknown() -> None:
    earlier, later = InProcessBus(epoch=1000), InProcessBus(epoch=2000)
    await earlier.publish([Event("a")])
    old_id = await earlier.latest_id()
    assert old_id == "1000-1"
    await later.publish([Event("a"), Event("b")])
    # The same count in another process life: never mistaken for ours.
    assert await later.replay(old_id) is None
    assert [e.type for e in await later.replay("2000-1") or []] == ["b"]


async def test_hubs_on_two_databases_of_one_redis_do_not_hear_each_other(redis_url: str) -> None:
    # Pub/sub ignores the database number; the bus must not.
    server = redis_url.rsplit("/", 1)[0]
    topic = f"test:{uuid.uuid4().hex}"
    first, second = RedisBus(f"{server}/13", topic), RedisBus(f"{server}/14", topic)
    try:
        async with first.subscribe() as heard_by_first, second.subscribe() as heard_by_second:
            await second.publish([Event("for-the-second")])
            await first.publish([Event("for-the-first")])
            got = await heard_by_first.get(timeout=5)
            assert got is not None and got.type == "for-the-first"
            got = await heard_by_second.get(timeout=5)
            assert got is not None and got.type == "for-the-second"
    finally:
        await first.close()
        await second.close()
