"""Pure pieces of IMAP progress: the per-folder cursor and how candidate mail is batched."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

MIB = 1024 * 1024
BATCH_BYTES = 20 * MIB  # per batch, so a mailbox of big attachments never holds much memory


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far a folder is imported: every UID up to `last_uid` under `uidvalidity`."""

    uidvalidity: int
    last_uid: int

    def __str__(self) -> str:
        return f"{self.uidvalidity}:{self.last_uid}"


def cursor_key(folder: str) -> str:
    """The CursorStore key of a folder."""
    return f"imap:{folder}"


def parse_cursor(value: str | None) -> Cursor | None:
    """Reads a stored cursor; None when absent or unreadable (then the folder is read
    from the start, which ingestion deduplicates)."""
    if not value:
        return None
    uidvalidity, sep, last_uid = value.partition(":")
    if not sep or not uidvalidity.isdigit() or not last_uid.isdigit():
        return None
    return Cursor(int(uidvalidity), int(last_uid))


def start_after(stored: Cursor | None, uidvalidity: int) -> int:
    """The last UID already imported under this UIDVALIDITY: 0 on first start and after a
    reset (a changed UIDVALIDITY invalidates every UID, RFC 3501 2.3.1.1)."""
    if stored is None or stored.uidvalidity != uidvalidity:
        return 0
    return stored.last_uid


def plan_batches(
    uids: Sequence[int],
    sizes: Mapping[int, int],
    *,
    max_count: int,
    max_bytes: int = BATCH_BYTES,
    max_message_bytes: int,
) -> Iterator[list[int]]:
    """Splits ascending UIDs into consecutive batches of at most `max_count` messages and
    `max_bytes` (a single larger message is a batch of its own). An oversized message counts
    as nothing: only its header is fetched. UIDs without a size (vanished) ride along so the
    cursor can pass them."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        weight = 0 if size > max_message_bytes else size
        if batch and (len(batch) >= max_count or total + weight > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += weight
    if batch:
        yield batch
