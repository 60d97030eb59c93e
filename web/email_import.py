"""`switchboard import email`: exported mail (mbox, Maildir, a folder of .eml files) into a
channel's timeline, through the email parser and the one ingestion path.

Each message's idempotency key is its Message-ID (or one derived from its bytes), so a
second run of the same import adds nothing, and mail the channel already fetched over
IMAP is not stored twice. Messages are imported as history: their own dates place them.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from connectors.email.mailbox_files import ExportedMail, count_messages, iter_messages
from connectors.email.parse import inbound_from, parse_email
from connectors.types import ChannelId, Inbound
from timeline.ingest import Ingestor

# Messages parsed and committed together: large enough for few transactions, small
# enough that memory stays flat whatever the size of the export.
CHUNK = 200
_MAX_REASONS_SHOWN = 20


@dataclass(slots=True)
class ImportSummary:
    """What an import did, message by message."""

    seen: int = 0
    imported: int = 0
    duplicates: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    def lines(self) -> list[str]:
        """The summary as printed at the end of an import."""
        out = [
            f"{self.seen} message(s) read: {self.imported} imported, "
            f"{self.duplicates} skipped as duplicate, {len(self.refused)} refused"
        ]
        for key, reason in self.refused[:_MAX_REASONS_SHOWN]:
            out.append(f"  refused {key}: {reason}")
        if len(self.refused) > _MAX_REASONS_SHOWN:
            out.append(f"  ... and {len(self.refused) - _MAX_REASONS_SHOWN} more refused")
        return out


class Progress:
    """A one-line progress bar on a terminal; a line every few seconds otherwise."""

    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self._total = total
        self._out = out
        self._tty = out.isatty()
        self._last = 0.0
        self._started = time.monotonic()

    def update(self, done: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.2 if self._tty else 5.0):
            return
        self._last = now
        rate = done / max(now - self._started, 1e-9)
        total = max(self._total, done)
        share = done / total if total else 1.0
        filled = int(share * 30)
        line = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} ({rate:.0f}/s)"
        if self._tty:
            self._out.write("\r" + line + ("\n" if final else ""))
        else:
            self._out.write(line + "\n")
        self._out.flush()


async def import_email(
    ingestor: Ingestor,
    channel_id: uuid.UUID,
    path: Path,
    *,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import every message under `path` into the channel; never stops for one bad message."""
    summary = ImportSummary()
    channel = ChannelId(str(channel_id))
    for chunk in _chunks(iter_messages(path), CHUNK):
        # A file that could not be read has nothing to keep: it is reported, not stored.
        unread = [mail for mail in chunk if mail.error is not None]
        readable = [mail for mail in chunk if mail.error is None]
        parsed = await asyncio.to_thread(_parse_chunk, channel, readable)
        results = await ingestor.ingest_many([inbound for inbound, _ in parsed], history=True)
        for mail in unread:
            summary.seen += 1
            summary.refused.append((mail.key, mail.error or "unreadable"))
        for mail, (_, parse_error), result in zip(readable, parsed, results, strict=True):
            summary.seen += 1
            if result.status == "created":
                summary.imported += 1
            elif result.status == "duplicate":
                summary.duplicates += 1
            else:
                # Kept raw and flagged (`switchboard reprocess` retries it); the parser's
                # reason says more than "no sender" when the file is not a message at all.
                summary.refused.append((mail.key, parse_error or result.error or "refused"))
        if progress is not None:
            progress.update(summary.seen)
    if progress is not None:
        progress.update(summary.seen, final=True)
    return summary


def total_messages(path: Path) -> int:
    """How many messages `path` holds (for the progress bar)."""
    return count_messages(path)


def _parse_chunk(
    channel: ChannelId, chunk: Sequence[ExportedMail]
) -> list[tuple[Inbound, str | None]]:
    out = []
    for mail in chunk:
        parsed = parse_email(mail.data)
        out.append((inbound_from(channel, parsed, mail.data), parsed.error))
    return out


def _chunks(items: Iterator[ExportedMail], size: int) -> Iterator[list[ExportedMail]]:
    chunk: list[ExportedMail] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
