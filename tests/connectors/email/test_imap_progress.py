"""The pure parts of IMAP progress: cursors and batch planning."""

from __future__ import annotations

import pytest

from connectors.email.imap_progress import (
    Cursor,
    cursor_key,
    parse_cursor,
    plan_batches,
    start_after,
)


def test_cursor_round_trips_through_its_stored_form() -> None:
    cursor = Cursor(1795453356, 42)
    assert str(cursor) == "1795453356:42"
    assert parse_cursor(str(cursor)) == cursor
    assert cursor_key("INBOX") == "imap:INBOX"


@pytest.mark.parametrize("stored", [None, "", "42", "a:1", "1:b", ":", "1:-2"])
def test_an_unreadable_cursor_means_start_from_the_beginning(stored: str | None) -> None:
    assert parse_cursor(stored) is None
    assert start_after(parse_cursor(stored), 7) == 0


def test_start_after_resumes_only_under_the_same_uidvalidity() -> None:
    assert start_after(Cursor(7, 30), 7) == 30
    assert start_after(Cursor(7, 30), 8) == 0  # a reset: every UID is void


def test_batches_are_capped_by_count_and_keep_uid_order() -> None:
    uids = list(range(1, 12))
    sizes = dict.fromkeys(uids, 100)
    batches = list(plan_batches(uids, sizes, max_count=5, max_message_bytes=10_000))
    assert batches == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11]]


def test_batches_are_capped_by_bytes_and_a_big_message_goes_alone() -> None:
    sizes = {1: 40, 2: 40, 3: 40, 4: 150, 5: 10}
    batches = list(
        plan_batches([1, 2, 3, 4, 5], sizes, max_count=50, max_bytes=100, max_message_bytes=200)
    )
    assert batches == [[1, 2], [3], [4], [5]]


def test_oversized_and_vanished_messages_weigh_nothing() -> None:
    # 2 is over the limit (only its header is fetched); 3 vanished (no size).
    sizes = {1: 60, 2: 10_000, 4: 30}
    batches = list(
        plan_batches([1, 2, 3, 4], sizes, max_count=50, max_bytes=100, max_message_bytes=1000)
    )
    assert batches == [[1, 2, 3, 4]]
