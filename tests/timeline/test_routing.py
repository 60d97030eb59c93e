"""Routing decisions as a pure function: which conversation a message joins, no database."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from connectors.base import Grouping
from timeline.routing import CHAT_THREAD, Arrival, Candidate, Route, Router, route

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=7)
CHANNEL, OTHER_CHANNEL = uuid.uuid4(), uuid.uuid4()
ANN, BOB = uuid.uuid4(), uuid.uuid4()


def conv(
    status: str = "open",
    key: str | None = CHAT_THREAD,
    *,
    contact: uuid.UUID = ANN,
    channel: uuid.UUID = CHANNEL,
    resolved_at: datetime | None = None,
) -> Candidate:
    return Candidate(uuid.uuid4(), channel, contact, status, key, resolved_at)


def nothing_cited(_: str) -> Candidate | None:
    return None


def email(*refs: str, message_id: str | None = "new@x") -> Arrival:
    return Arrival(CHANNEL, ANN, Grouping.THREAD, tuple(refs), message_id)


CHAT = Arrival(CHANNEL, ANN, Grouping.CONTACT)


def test_chat_joins_the_open_conversation_whatever_its_waiting_state() -> None:
    for status in ("open", "pending", "snoozed"):
        mine = conv(status)
        assert route(CHAT, [mine], nothing_cited, CUTOFF) == Route(mine.id)


def test_chat_reopens_the_latest_resolved_within_the_window_only() -> None:
    old = conv("resolved", resolved_at=NOW - timedelta(days=2))
    recent = conv("resolved", resolved_at=NOW - timedelta(hours=1))
    assert route(CHAT, [old, recent], nothing_cited, CUTOFF) == Route(recent.id)
    stale = conv("resolved", resolved_at=NOW - timedelta(days=30))
    assert route(CHAT, [stale], nothing_cited, CUTOFF) == Route(None, CHAT_THREAD)


def test_chat_never_joins_another_contacts_or_channels_conversation() -> None:
    others = [conv(contact=BOB), conv(channel=OTHER_CHANNEL)]
    assert route(CHAT, others, nothing_cited, CUTOFF) == Route(None, CHAT_THREAD)


def test_every_web_form_submission_is_a_new_conversation() -> None:
    arrival = Arrival(CHANNEL, ANN, Grouping.MESSAGE)
    assert route(arrival, [conv(key=None), conv()], nothing_cited, CUTOFF) == Route(None)


def test_new_email_citing_nothing_starts_its_own_thread_beside_an_open_one() -> None:
    open_thread = conv(key="root-1@x")
    assert route(email(), [open_thread], nothing_cited, CUTOFF) == Route(None, "new@x")


def test_email_citing_a_known_message_joins_its_conversation() -> None:
    thread = conv(key="root@x")
    cited = {"a@x": thread}
    assert route(email("a@x", "root@x"), [thread], cited.get, CUTOFF) == Route(thread.id)


def test_email_citing_only_our_outbound_message_threads() -> None:
    # Our replies' Message-IDs are in the cited map like any other message's.
    thread = conv(key="root@x")
    assert route(email("ours@hub"), [], {"ours@hub": thread}.get, CUTOFF) == Route(thread.id)


def test_email_citing_another_contacts_message_is_never_attached_to_it() -> None:
    theirs = conv(key="root@x", contact=BOB)
    assert route(email("a@x"), [], {"a@x": theirs}.get, CUTOFF) == Route(None, "a@x")


def test_email_whose_cited_messages_are_unknown_joins_the_open_thread_of_its_root() -> None:
    # References list the root first; normalized references are most relevant first.
    thread = conv(key="root@x")
    assert route(email("b@x", "root@x"), [thread], nothing_cited, CUTOFF) == Route(thread.id)


def test_reply_to_resolved_thread_reopens_within_the_window_and_restarts_after() -> None:
    recent = conv("resolved", "root@x", resolved_at=NOW - timedelta(days=1))
    assert route(email("root@x"), [], {"root@x": recent}.get, CUTOFF) == Route(recent.id)
    old = conv("resolved", "root@x", resolved_at=NOW - timedelta(days=30))
    assert route(email("root@x"), [], {"root@x": old}.get, CUTOFF) == Route(None, "root@x")


def test_reply_to_resolved_thread_joins_the_thread_someone_restarted() -> None:
    resolved = conv("resolved", "root@x", resolved_at=NOW - timedelta(days=1))
    restarted = conv("open", "root@x")
    decision = route(email("root@x"), [restarted], {"root@x": resolved}.get, CUTOFF)
    assert decision == Route(restarted.id)


def test_a_subject_alone_never_merges() -> None:
    # Subjects are not routing input at all: an email without any Message-ID is alone.
    assert route(email(message_id=None), [conv(key="root@x")], nothing_cited, CUTOFF) == Route(None)


def test_router_lets_later_messages_of_a_batch_see_earlier_decisions() -> None:
    ids = (uuid.UUID(int=n) for n in itertools.count(1))
    resolved = conv("resolved", CHAT_THREAD, resolved_at=NOW - timedelta(hours=1))
    router = Router([resolved], {}, CUTOFF, lambda: next(ids))
    first_email = router.route(email(message_id="m1@x"))
    reply = router.route(email("m1@x", message_id="m2@x"))
    chat_1, chat_2 = router.route(CHAT), router.route(CHAT)
    assert first_email.id in router.opened and reply.id == first_email.id
    assert chat_1.id == chat_2.id == resolved.id and chat_1.status == "open"
    assert set(router.opened) == {first_email.id}
