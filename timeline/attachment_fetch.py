"""Inbound files whose first download failed in a way that may pass, fetched again later.

A connector that cannot download a file (Twilio's media host times out, Telegram's
getFile answers 5xx) hands the message over anyway, with the attachment marked
`retry`. Ingestion stores the message at once, says in its text that the file is still
missing, and records a row in `attachment_fetches`. The worker then asks the channel's
connector for the file again, with a growing delay, until it arrives (the attachment
joins the message and the note goes) or the attempts run out (the note says so for good).
Rows are claimed by pushing `next_at` forward, so several workers never fetch one twice
at the same time, and a worker that dies mid-fetch only delays the next try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.base import Connector
from connectors.types import ChannelId, InboundAttachment
from timeline.clock import database_now
from timeline.events import Event, EventBus, publish_committed
from timeline.files import store_blob
from timeline.ids import new_id
from timeline.models import Attachment, AttachmentFetch, Message, TimelineEvent
from timeline.storable import REASON_LENGTH, cut

logger = logging.getLogger(__name__)


def pending_note(attachment: InboundAttachment) -> str:
    """The line a message's text carries while one of its files is still to be fetched."""
    return f"[{_name(attachment)} not stored yet ({attachment.error}); it will be fetched again]"


def final_note(attachment: InboundAttachment) -> str:
    """The line for a file that was not stored and will not be fetched again."""
    return f"[{_name(attachment)} not stored: {attachment.error}]"


def _name(attachment: InboundAttachment) -> str:
    return attachment.filename or attachment.content_type


def fetch_row(
    attachment: InboundAttachment,
    message_id: uuid.UUID,
    channel_id: uuid.UUID,
    now: datetime,
    first_delay: timedelta,
) -> dict[str, object]:
    """The `attachment_fetches` row for a file ingestion stored a message without."""
    return {
        "id": new_id(),
        "message_id": message_id,
        "channel_id": channel_id,
        "source": attachment.source or "",
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "note": pending_note(attachment),
        "error": attachment.error,
        "attempts": 0,
        "next_at": now + first_delay,
        "gave_up": False,
        "created_at": now,
    }


@dataclass(frozen=True, slots=True)
class FetchJob:
    """One claimed row: a file to ask the channel's connector for."""

    id: uuid.UUID
    message_id: uuid.UUID
    channel_id: uuid.UUID
    attempts: int  # including this one
    note: str
    attachment: InboundAttachment


class AttachmentFetcher:
    """The worker's loop over `attachment_fetches`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connectors: Callable[[], Collection[ChannelId]],
        connector: Callable[[ChannelId], Connector | None],
        bus: EventBus,
        *,
        data_dir: Path,
        batch_size: int = 10,
        fetch_timeout: float = 120.0,
        base_delay: timedelta = timedelta(minutes=1),
        max_delay: timedelta = timedelta(hours=1),
        max_attempts: int = 12,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if batch_size < 1 or max_attempts < 1 or fetch_timeout <= 0:
            raise ValueError("batch_size, max_attempts and fetch_timeout must be positive")
        self._sessions = sessions
        self._channels = connectors
        self._connector = connector
        self._bus = bus
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.fetch_timeout = fetch_timeout
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts
        # A claim lasts past the fetch's own timeout, so a slow fetch is never claimed twice.
        self.lease = timedelta(seconds=fetch_timeout * 2)
        self._clock = clock  # None: the database's clock

    async def run(self, stop: asyncio.Event, interval: float = 30.0) -> None:
        """Fetch due files until `stop` is set; a failing round is logged and retried."""
        while not stop.is_set():
            try:
                done = await self.run_once()
            except Exception:
                logger.exception("attachment fetch round failed; trying again")
                done = 0
            if done == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)

    async def run_once(self) -> int:
        """Claim the due files of channels running here and fetch each once; returns how
        many were tried."""
        jobs = await self._claim()
        for job in jobs:
            await self._fetch(job)
        return len(jobs)

    def delay(self, attempts: int) -> timedelta:
        """How long after its `attempts`-th failure a file is tried again."""
        factor = 1 << min(max(attempts - 1, 0), 30)
        return min(self.base_delay * factor, self.max_delay)

    async def _now(self, session: AsyncSession) -> datetime:
        return self._clock() if self._clock is not None else await database_now(session)

    async def _claim(self) -> list[FetchJob]:
        channels = [uuid.UUID(channel) for channel in self._channels()]
        if not channels:
            return []
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            rows = (
                await session.execute(
                    select(AttachmentFetch)
                    .where(
                        AttachmentFetch.gave_up.is_(False),
                        AttachmentFetch.next_at <= now,
                        AttachmentFetch.channel_id.in_(channels),
                    )
                    .order_by(AttachmentFetch.next_at, AttachmentFetch.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
            jobs = []
            for row in rows:
                row.next_at = now + self.lease
                row.attempts += 1
                jobs.append(
                    FetchJob(
                        row.id,
                        row.message_id,
                        row.channel_id,
                        row.attempts,
                        row.note,
                        InboundAttachment(
                            row.filename,
                            row.content_type,
                            b"",
                            size=row.size,
                            error=row.error,
                            source=row.source,
                            retry=True,
                        ),
                    )
                )
        return jobs

    async def _fetch(self, job: FetchJob) -> None:
        connector = self._connector(ChannelId(str(job.channel_id)))
        if connector is None:
            return  # the channel stopped here: its claim lapses and another worker tries
        try:
            result = await asyncio.wait_for(
                connector.fetch_attachment(job.attachment), self.fetch_timeout
            )
        except TimeoutError:
            result = _failed(job.attachment, "download timed out", retry=True)
        except Exception as err:
            # A connector's fault must not stop the loop for every other file.
            logger.exception("fetching attachment %s failed", job.id)
            result = _failed(job.attachment, f"download failed: {err!r}", retry=True)
        if result.error is None:
            await self._stored(job, result)
        else:
            await self._failed(job, result)

    async def _stored(self, job: FetchJob, result: InboundAttachment) -> None:
        digest, size = await asyncio.to_thread(store_blob, self.data_dir, result.data)
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            message = await session.get(Message, job.message_id, with_for_update=True)
            claimed = await session.scalar(
                delete(AttachmentFetch)
                .where(AttachmentFetch.id == job.id)
                .returning(AttachmentFetch.id)
            )
            if message is None or claimed is None:
                return  # the message was erased, or another worker finished the row
            session.add(
                Attachment(
                    id=new_id(),
                    message_id=message.id,
                    sha256=digest,
                    size=size,
                    content_type=cut(result.content_type, 255) or job.attachment.content_type,
                    filename=job.attachment.filename,
                    created_at=now,
                )
            )
            message.text = _without_line(message.text, job.note)
            session.add(_event(message, "attachment.fetched", now, job, None))
        await publish_committed(self._bus, [_bus_event(message, "message.updated")])
        logger.info("attachment %s of message %s fetched", job.id, job.message_id)

    async def _failed(self, job: FetchJob, result: InboundAttachment) -> None:
        error = cut(result.error, REASON_LENGTH) or "download failed"
        final = not result.retry or job.attempts >= self.max_attempts
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            if not final:
                await session.execute(
                    update(AttachmentFetch)
                    .where(AttachmentFetch.id == job.id)
                    .values(error=error, next_at=now + self.delay(job.attempts))
                )
                return
            message = await session.get(Message, job.message_id, with_for_update=True)
            await session.execute(
                update(AttachmentFetch)
                .where(AttachmentFetch.id == job.id)
                .values(error=error, gave_up=True)
            )
            if message is None:
                return
            note = final_note(_failed(job.attachment, error, retry=False))
            message.text = _replace_line(message.text, job.note, note)
            session.add(_event(message, "attachment.failed", now, job, error))
        await publish_committed(self._bus, [_bus_event(message, "message.updated")])
        logger.warning(
            "attachment %s of message %s given up after %d attempts: %s",
            job.id,
            job.message_id,
            job.attempts,
            error,
        )


def _failed(attachment: InboundAttachment, error: str, *, retry: bool) -> InboundAttachment:
    return InboundAttachment(
        attachment.filename,
        attachment.content_type,
        b"",
        size=attachment.size,
        error=error,
        source=attachment.source,
        retry=retry,
    )


def _without_line(text: str, line: str) -> str:
    return "\n".join(part for part in text.split("\n") if part != line)


def _replace_line(text: str, line: str, replacement: str) -> str:
    return "\n".join(replacement if part == line else part for part in text.split("\n"))


def _event(
    message: Message, kind: str, now: datetime, job: FetchJob, error: str | None
) -> TimelineEvent:
    data: dict[str, object] = {
        "channel_id": str(message.channel_id),
        "filename": job.attachment.filename,
        "content_type": job.attachment.content_type,
        "attempts": job.attempts,
    }
    if error is not None:
        data["error"] = error
    return TimelineEvent(
        id=new_id(),
        contact_id=message.contact_id,
        conversation_id=message.conversation_id,
        message_id=message.id,
        kind=kind,
        data=data,
        occurred_at=now,
    )


def _bus_event(message: Message, kind: str) -> Event:
    return Event(
        kind,
        {
            "message_id": str(message.id),
            "conversation_id": str(message.conversation_id),
            "contact_id": str(message.contact_id),
            "channel_id": str(message.channel_id),
        },
    )
