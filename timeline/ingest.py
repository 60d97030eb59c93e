"""The one ingestion pipeline: every inbound message from every channel goes through here.

`Ingestor.ingest(inbound)` makes the message storable (timeline/storable.py), then
hands it to a group-commit loop: messages arriving together are stored in one
transaction (timeline/ingest_batch.py), and each caller gets its own result only after
that transaction commits. Events are published on the bus after the commit, never
before. Content never makes ingestion raise: a message the database still refuses is
isolated from its batch and kept raw and flagged in a transaction of its own
(`switchboard reprocess` retries it), so a connector's cursor never sticks behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from connectors.base import Grouping
from connectors.registry import spec_for
from connectors.types import Inbound, SenderHandle
from timeline.attachment_fetch import final_note, pending_note
from timeline.crypto import SecretBox, SecretBoxError
from timeline.db import SessionFactory, is_conflict, is_unavailable
from timeline.events import EventBus, publish_committed
from timeline.files import store_blob
from timeline.identity import IdentityError, normalize_identity
from timeline.ingest_batch import (
    IngestResult,
    Prepared,
    RetryBatch,
    StoredAttachment,
    flag_refused,
    ingest_batch,
)
from timeline.models import Channel, utcnow
from timeline.storable import bounded_key, clean, storable_inbound

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_ERROR_LENGTH = 2000

__all__ = ["IngestError", "IngestResult", "Ingestor", "check_inbound"]


class IngestError(ValueError):
    """The inbound value itself is unusable (no key to store it under); nothing was stored."""


@dataclass(frozen=True, slots=True)
class _ChannelInfo:
    grouping: Grouping
    region: str | None
    loaded: float


def check_inbound(inbound: Inbound) -> uuid.UUID:
    """Validate what ingestion cannot store without; returns the channel's UUID.

    Only a connector's programming errors fail here: content (text, names, dates, ids
    of any length) is made storable, never refused.
    """
    try:
        channel = uuid.UUID(str(inbound.channel_id))
    except ValueError as err:
        raise IngestError(f"channel id {inbound.channel_id!r} is not a UUID") from err
    if not isinstance(inbound.external_id, str) or not clean(inbound.external_id).strip():
        raise IngestError("external_id is required: it is the message's idempotency key")
    if not isinstance(inbound.sent_at, datetime) or inbound.sent_at.tzinfo is None:
        raise IngestError("sent_at must be a timezone-aware datetime")
    if not isinstance(inbound.text, str):
        raise IngestError("text must be a string")
    if inbound.form is not None:
        try:
            uuid.UUID(inbound.form.form_id)
        except ValueError as err:
            raise IngestError(f"form id {inbound.form.form_id!r} is not a UUID") from err
    return channel


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    cleaned = value.strip().strip("<>").strip()
    return bounded_key(cleaned) if cleaned else None


def _inbound_json(inbound: Inbound, attachments: Sequence[StoredAttachment]) -> dict[str, Any]:
    """The normalized inbound, attachments by digest, to re-ingest a flagged message."""
    return {
        "sender": _handle_json(inbound.sender),
        "author": _handle_json(inbound.author),
        "identities": [_handle_json(handle) for handle in inbound.identities],
        "attribution": [list(pair) for pair in inbound.attribution],
        "attribution_event": inbound.attribution_event,
        "new_contact_stage": inbound.new_contact_stage,
        "language": inbound.language,
        "form": None
        if inbound.form is None
        else {
            "form_id": inbound.form.form_id,
            "attribution": [list(pair) for pair in inbound.form.attribution],
            "ip": inbound.form.ip,
        },
        "edit_of": inbound.edit_of,
        "reply_to": inbound.reply_to,
        "text": inbound.text,
        "reply_text": inbound.reply_text,
        "html": inbound.html,
        "sent_at": inbound.sent_at.isoformat(),
        "thread": {
            "message_id": inbound.thread.message_id,
            "in_reply_to": inbound.thread.in_reply_to,
            "references": list(inbound.thread.references),
            "chat_id": inbound.thread.chat_id,
            "subject": inbound.thread.subject,
        },
        "auto_submitted": inbound.auto_submitted,
        "attachments": [
            {
                "filename": a.source.filename,
                "content_type": a.source.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "inline": a.source.inline,
                "content_id": a.source.content_id,
            }
            for a in attachments
        ],
    }


def _handle_json(handle: SenderHandle | None) -> dict[str, Any] | None:
    if handle is None:
        return None
    return {"kind": str(handle.kind), "value": handle.value, "display_name": handle.display_name}


class Ingestor:
    """Stores inbound messages exactly once, grouping concurrent arrivals into one commit."""

    def __init__(
        self,
        sessions: SessionFactory,
        bus: EventBus,
        *,
        reopen_window: timedelta,
        data_dir: Path,
        secret_box: SecretBox | None = None,
        max_batch: int = 200,
        workers: int | None = None,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._reopen_window = reopen_window
        self._data_dir = data_dir
        self._secret_box = secret_box
        self._max_batch = max_batch
        engine = sessions.kw["bind"]
        # SQLite has one writer: more than one batch at a time would only queue on its lock.
        self._workers = workers or (1 if engine.dialect.name == "sqlite" else 2)
        self._queue: asyncio.Queue[tuple[Prepared, asyncio.Future[IngestResult]]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._channels: dict[uuid.UUID, _ChannelInfo] = {}
        self._channel_lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the group-commit workers."""
        for number in range(self._workers):
            task = asyncio.create_task(self._run(), name=f"ingest-{number}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        await self._queue.join()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def data_dir(self) -> Path:
        """Where attachment blobs are stored."""
        return self._data_dir

    async def ingest(self, inbound: Inbound) -> IngestResult:
        """Store one inbound message; returns after it is committed (or found stored).

        Never raises for content: a message the database refuses is kept raw and flagged.
        Raises IngestError for a connector's programming error (no channel, no external
        id) and database errors while the database is unavailable.
        """
        prepared = await self.prepare(inbound)
        if not self._tasks:
            outcome = await self._commit_isolated([prepared])
            return outcome[0]
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((prepared, future))
        return await future

    async def ingest_many(
        self, inbounds: Sequence[Inbound], *, history: bool = False
    ) -> list[IngestResult]:
        """Store several inbound messages (e.g. an import) in as few transactions as possible.

        One message's failure never fails another's. With `history`, the messages are
        imported history: their own dates (never later than now) place them in their
        conversations and drive last activity, instead of their arrival.
        """
        prepared = [await self.prepare(inbound, history=history) for inbound in inbounds]
        results: list[IngestResult] = []
        for start in range(0, len(prepared), self._max_batch):
            results.extend(await self._commit_isolated(prepared[start : start + self._max_batch]))
        return results

    async def prepare(self, inbound: Inbound, *, history: bool = False) -> Prepared:
        """Check and normalize outside the transaction; attachment bytes go to the blob store."""
        channel_uuid = check_inbound(inbound)
        info = await self._channel(channel_uuid)
        inbound = storable_inbound(inbound, utcnow())
        identity: tuple[str, str] | None = None
        reason: str | None = None
        if inbound.sender is None:
            reason = "no sender identity in the provider input"
        else:
            try:
                value = normalize_identity(
                    inbound.sender.kind, inbound.sender.value, region=info.region
                )
                identity = (str(inbound.sender.kind), value)
            except IdentityError as err:
                reason = clean(str(err))[:MAX_ERROR_LENGTH]
        author: tuple[str, str] | None = None
        if inbound.author is not None and identity is not None:
            try:
                author_value = normalize_identity(
                    inbound.author.kind, inbound.author.value, region=info.region
                )
                author = (str(inbound.author.kind), author_value)
            except IdentityError as err:
                # The message is the group's either way; only who wrote it is unknown.
                logger.warning("inbound %s: unusable author: %s", inbound.external_id, err)
        offered = self._offered(inbound, identity, info.region)
        missing = [a for a in inbound.attachments if a.error is not None]
        # Files whose download may work later are fetched again (timeline/attachment_fetch).
        deferred = tuple(a for a in missing if a.retry and a.source and identity is not None)
        if missing:
            # The message is kept without the file; what is missing, and why, stays visible.
            notes = [pending_note(a) if a in deferred else final_note(a) for a in missing]
            inbound = dataclasses.replace(
                inbound,
                text="\n".join(part for part in (inbound.text, *notes) if part),
                attachments=tuple(a for a in inbound.attachments if a.error is None),
            )
        attachments: tuple[StoredAttachment, ...] = ()
        if inbound.attachments:
            stored = []
            for attachment in inbound.attachments:
                digest, size = await asyncio.to_thread(store_blob, self._data_dir, attachment.data)
                stored.append(StoredAttachment(attachment, digest, size))
            attachments = tuple(stored)
        hints = inbound.thread
        references: list[str] = []
        for ref in (hints.in_reply_to, *reversed(hints.references)):
            cleaned = _message_id(ref)
            if cleaned and cleaned not in references:
                references.append(cleaned)
        return Prepared(
            inbound=inbound,
            channel_uuid=channel_uuid,
            external_id=bounded_key(inbound.external_id),
            identity=identity,
            flag_reason=reason,
            inbound_json=None if identity else _inbound_json(inbound, attachments),
            grouping=info.grouping,
            attachments=attachments,
            references=tuple(references),
            rfc_message_id=_message_id(hints.message_id),
            history=history,
            author=author,
            edit_of=inbound.edit_of,
            reply_to=inbound.reply_to,
            deferred=deferred,
            offered=offered,
        )

    @staticmethod
    def _offered(
        inbound: Inbound, identity: tuple[str, str] | None, region: str | None
    ) -> tuple[tuple[str, str, str | None], ...]:
        """The other identities a message vouches for, normalized; unusable ones are
        logged and left out (the message itself is fine)."""
        if identity is None:
            return ()
        offered: dict[tuple[str, str], str | None] = {}
        for handle in inbound.identities:
            try:
                value = normalize_identity(handle.kind, handle.value, region=region)
            except IdentityError as err:
                logger.info("inbound %s: offered identity not used: %s", inbound.external_id, err)
                continue
            key = (str(handle.kind), value)
            if key != identity:
                offered.setdefault(key, handle.display_name)
        return tuple((kind, value, name) for (kind, value), name in offered.items())

    async def region(self, channel_id: uuid.UUID) -> str | None:
        """The region the channel's national phone numbers are read in (None: none set)."""
        return (await self._channel(channel_id)).region

    async def _channel(self, channel_id: uuid.UUID) -> _ChannelInfo:
        cached = self._channels.get(channel_id)
        # Refreshed every minute so a changed default region applies without a restart.
        if cached is not None and time.monotonic() - cached.loaded < 60:
            return cached
        # One lookup at a time: a burst of arrivals must not each read the channel.
        async with self._channel_lock:
            cached = self._channels.get(channel_id)
            if cached is not None and time.monotonic() - cached.loaded < 60:
                return cached
            return await self._load_channel(channel_id)

    async def _load_channel(self, channel_id: uuid.UUID) -> _ChannelInfo:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Channel.kind, Channel.config_encrypted).where(Channel.id == channel_id)
                )
            ).one_or_none()
        if row is None:
            raise IngestError(f"unknown channel {channel_id}")
        spec = spec_for(row.kind)
        region = None
        if spec.region_key is not None and self._secret_box is not None:
            try:
                region = self._secret_box.decrypt(row.config_encrypted).get(spec.region_key)
            except SecretBoxError:
                logger.error(
                    "cannot read channel %s configuration; phone region unknown", channel_id
                )
        info = _ChannelInfo(
            spec.capabilities.grouping,
            region if isinstance(region, str) else None,
            time.monotonic(),
        )
        self._channels[channel_id] = info
        return info

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._run_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _run_batch(self, batch: list[tuple[Prepared, asyncio.Future[IngestResult]]]) -> None:
        try:
            results = await self._commit_isolated([item for item, _ in batch])
        except Exception as err:
            # The database is unavailable: every caller keeps its message and retries.
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _commit_isolated(self, items: list[Prepared]) -> list[IngestResult]:
        """Commit `items`; a message the database refuses is flagged, never failing others.

        A failed batch is split in halves until the refused messages stand alone, so a
        poison message among 200 costs about 2·log2(200) extra transactions, not 200.
        Raises only while the database is unavailable.
        """
        try:
            return await self._commit(items)
        except Exception as err:
            if is_unavailable(err):
                raise
            if len(items) > 1:
                logger.warning(
                    "batch of %d failed (%s); isolating the message at fault", len(items), err
                )
                middle = len(items) // 2
                return [
                    *await self._commit_isolated(items[:middle]),
                    *await self._commit_isolated(items[middle:]),
                ]
            logger.exception(
                "channel %s message %s refused by the database; kept and flagged",
                items[0].channel_uuid,
                items[0].external_id,
            )
            return [await self._flag(items[0], err)]

    async def _flag(self, item: Prepared, err: Exception) -> IngestResult:
        reason = clean(f"the database refused the message: {_reason(err)}")[:MAX_ERROR_LENGTH]
        if item.inbound_json is None:
            item = dataclasses.replace(
                item, inbound_json=_inbound_json(item.inbound, item.attachments)
            )
        async with self._sessions() as session, session.begin():
            raw_id = await flag_refused(await session.connection(), item, reason, utcnow())
        if raw_id is None:
            # A concurrent delivery stored it after all: answer what it stored.
            return (await self._commit([item]))[0]
        return IngestResult("flagged", raw_id=raw_id, error=reason)

    async def _commit(self, items: list[Prepared]) -> list[IngestResult]:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self._sessions() as session, session.begin():
                    connection = await session.connection()
                    outcome = await ingest_batch(
                        connection, items, reopen_window=self._reopen_window, now=utcnow()
                    )
                break
            except (IntegrityError, DBAPIError, RetryBatch) as err:
                # Races other processes won (a reopened thread, a deadlock) resolve on
                # retry: the next attempt reads what they committed.
                retryable = (
                    not isinstance(err, DBAPIError)
                    or isinstance(err, IntegrityError)
                    or is_conflict(err)
                )
                if not retryable or attempt == MAX_ATTEMPTS:
                    raise
                logger.info("ingestion transaction conflicted (%s); retry %d", err, attempt)
                await asyncio.sleep(0.01 * attempt)
        await publish_committed(self._bus, outcome.events)
        return outcome.results


def _reason(err: Exception) -> str:
    if isinstance(err, DBAPIError) and err.orig is not None:
        return f"{type(err.orig).__name__}: {err.orig}"
    return f"{type(err).__name__}: {err}"
