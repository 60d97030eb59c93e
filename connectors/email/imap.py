"""The receiving side of the email channel: IMAP fetch with IDLE and UID checkpoints.

Lose nothing, double nothing: every folder's progress is its UIDVALIDITY and the last UID
handed over, saved in the CursorStore only after the handler has committed the batch. A
first start reads the whole folder, a UIDVALIDITY change reads it again (ingestion
deduplicates by Message-ID), and neither \\Seen nor UNSEEN is ever used: mail read on a
phone is still imported, and the mailbox is left untouched (BODY.PEEK, no flags, no
deletion) unless `imap_move_to` asks to move imported mail away.

imapclient is synchronous: each connection lives on a thread of its own and the event
loop only awaits it. With several folders the first one is watched with IDLE (when the
server offers it), and every folder (the watched one too, as a safety net) is re-synced
every `poll_seconds`; without IDLE every folder is polled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from imapclient import IMAPClient

from connectors.base import CursorStore, HealthSink
from connectors.email.config import EmailConfig
from connectors.email.imap_progress import (
    Cursor,
    cursor_key,
    parse_cursor,
    plan_batches,
    start_after,
)
from connectors.email.imap_session import (
    ConnectFailed,
    CredentialsRefused,
    FolderMissing,
    Session,
    TlsFailed,
    close_quietly,
    open_client,
)
from connectors.errors import AuthError, PermanentError, TransientError
from connectors.types import ChannelHealth, ChannelId

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# How long one IDLE wait blocks the connection's thread: the bound on how late a
# cancellation or a poll deadline is noticed while idling.
_IDLE_SLICE_SECONDS = 1.0
# UIDs whose sizes are asked for at once; bodies then follow in batches.
_SIZES_PER_ROUND = 500
# How long a stopping receiver waits for its polite LOGOUT before leaving it to the thread.
_LOGOUT_WAIT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class FetchedMail:
    """One message as fetched from a folder."""

    folder: str
    uid: int
    data: bytes  # the whole RFC 822 message, or only its header when oversized
    size: int  # RFC822.SIZE
    oversized: bool  # size > the limit: `data` holds only the header (BODY.PEEK[HEADER])


MailHandler = Callable[[Sequence[FetchedMail]], Awaitable[None]]
"""Called with one batch; returns only after every mail of the batch is committed (or
durably refused). Raising means: nothing of this batch is acknowledged; fetch it again."""


class _HandlerFailed(Exception):
    """The handler raised: the batch is not acknowledged and will be fetched again."""


class _Connection:
    """A Session and the one thread that may touch it."""

    def __init__(self, executor: ThreadPoolExecutor, session: Session) -> None:
        self.executor = executor
        self.session = session
        self.selected: str | None = None
        self.cursors: dict[str, Cursor] = {}

    async def call(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(func, *args, **kwargs))


class ImapReceiver:
    """Fetches new mail from the configured folders and hands it over batch by batch."""

    def __init__(
        self,
        channel_id: ChannelId,
        config: EmailConfig,
        cursors: CursorStore,
        health: HealthSink,
        handle: MailHandler,
        *,
        idle_renew_seconds: float = 25 * 60,
        poll_seconds: float = 60.0,
        backoff_cap_seconds: float = 300.0,
        timeout_seconds: float = 60.0,
    ) -> None:
        self._channel_id = channel_id
        self._config = config
        self._cursors = cursors
        self._health = health
        self._handle = handle
        # RFC 2177: servers may drop an IDLE after 30 minutes; renew well before.
        self._idle_renew = idle_renew_seconds
        self._poll = poll_seconds
        self._backoff_cap = backoff_cap_seconds
        self._timeout = timeout_seconds
        self._synced = False

    async def run(self) -> None:
        """Receives until cancelled, reconnecting with capped exponential backoff.

        Raises AuthError when the server refuses the credentials and PermanentError for a
        configuration only a person can fix (TLS, STARTTLS missing, `imap_move_to` missing);
        health is reported before either is raised."""
        failures = 0
        while True:
            self._synced = False
            try:
                await self._connected()
            except AuthError as err:
                await self._report(ChannelHealth.BAD_CREDENTIALS, str(err))
                raise
            except PermanentError as err:
                await self._report(ChannelHealth.CONFIG_ERROR, str(err))
                raise
            except TransientError as err:
                log.warning("IMAP channel %s: %s", self._channel_id, err)
                await self._report(ChannelHealth.TRANSIENT_DISCONNECT, str(err))
            except _HandlerFailed as err:
                log.error("IMAP channel %s: %s", self._channel_id, err, exc_info=err.__cause__)
                await self._report(ChannelHealth.TRANSIENT_DISCONNECT, str(err))
            except Exception as err:
                # A bug must not stop the mailbox for good: log it, back off, try again.
                log.exception("IMAP channel %s failed unexpectedly", self._channel_id)
                await self._report(ChannelHealth.TRANSIENT_DISCONNECT, f"unexpected error: {err!r}")
            if self._synced:
                failures = 0
            await asyncio.sleep(self._backoff(failures))
            failures += 1

    def _backoff(self, failures: int) -> float:
        base = min(self._backoff_cap, 2.0**failures)
        # Jitter, so channels that failed together do not all come back in the same second.
        return min(self._backoff_cap, base * random.uniform(0.75, 1.25))

    async def _report(self, health: ChannelHealth, reason: str | None) -> None:
        try:
            await self._health(self._channel_id, health, reason)
        except Exception:
            log.exception("IMAP channel %s: recording health %s failed", self._channel_id, health)

    async def _connected(self) -> None:
        """One connection's life: connect, then sync and wait, until something fails."""
        name = f"imap-{self._channel_id}"
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        connection: _Connection | None = None
        try:
            opening = executor.submit(open_client, self._config, self._timeout)
            try:
                client = await asyncio.wrap_future(opening)
            except asyncio.CancelledError:
                # The thread may still finish logging in: log that connection out then.
                opening.add_done_callback(_close_if_opened)
                raise
            connection = _Connection(executor, Session(client))
            idle = await connection.call(connection.session.capability, "IDLE")
            while True:
                watched = await self._sync_all(connection)
                self._synced = True
                if idle and watched is not None:
                    await self._idle(connection, watched)
                else:
                    await asyncio.sleep(self._poll)
        finally:
            closing = executor.submit(connection.session.close) if connection else None
            executor.shutdown(wait=False)
            if closing is not None:
                await asyncio.wait([asyncio.wrap_future(closing)], timeout=_LOGOUT_WAIT_SECONDS)

    async def _sync_all(self, connection: _Connection) -> str | None:
        """Imports new mail of every folder; reports health; answers the folder to watch."""
        move_to = self._config.imap_move_to
        if move_to is not None and not await connection.call(
            connection.session.folder_exists, move_to
        ):
            raise FolderMissing(move_to, "imap_move_to")
        missing: list[FolderMissing] = []
        present: list[str] = []
        for folder in self._config.imap_folders:
            try:
                await self._sync_folder(connection, folder)
            except FolderMissing as err:
                log.warning("IMAP channel %s: %s", self._channel_id, err)
                missing.append(err)
            else:
                present.append(folder)
        if missing:
            reason = "; ".join(str(err) for err in missing)
            await self._report(ChannelHealth.CONFIG_ERROR, reason)
        else:
            await self._report(ChannelHealth.CONNECTED, None)
        return present[0] if present else None

    async def _sync_folder(self, connection: _Connection, folder: str) -> None:
        session = connection.session
        state = await connection.call(
            session.select, folder, readonly=self._config.imap_move_to is None
        )
        connection.selected = folder
        stored = connection.cursors.get(folder)
        if stored is None:
            loaded = await self._cursors.load(self._channel_id, cursor_key(folder))
            stored = parse_cursor(loaded)
        cursor = Cursor(state.uidvalidity, start_after(stored, state.uidvalidity))
        if stored != cursor:
            if stored is not None:
                log.warning(
                    "IMAP channel %s: %r changed UIDVALIDITY %s -> %s; reading it again",
                    self._channel_id,
                    folder,
                    stored.uidvalidity,
                    state.uidvalidity,
                )
            await self._save(folder, cursor, connection)
        if state.uidnext is not None and state.uidnext <= cursor.last_uid + 1:
            return
        # Searched again after each pass, and after an empty search that came with an
        # announcement: mail that arrives during a command is announced in that
        # command's answer only, never again in the IDLE that follows.
        while True:
            uids = await connection.call(session.uids_after, cursor.last_uid)
            if not uids:
                if await connection.call(session.mail_announced):
                    continue
                return
            for start in range(0, len(uids), _SIZES_PER_ROUND):
                chunk = uids[start : start + _SIZES_PER_ROUND]
                sizes = await connection.call(session.sizes, chunk)
                for batch in plan_batches(
                    chunk,
                    sizes,
                    max_count=self._config.imap_batch_size,
                    max_message_bytes=self._config.imap_max_message_bytes,
                ):
                    await self._deliver(connection, folder, batch, sizes)
                    cursor = Cursor(cursor.uidvalidity, batch[-1])
                    await self._save(folder, cursor, connection)

    async def _deliver(
        self, connection: _Connection, folder: str, batch: list[int], sizes: dict[int, int]
    ) -> None:
        """Fetches one batch and hands it over; moves it when asked. UIDs that vanished
        since the search are skipped."""
        session = connection.session
        limit = self._config.imap_max_message_bytes
        whole = [uid for uid in batch if uid in sizes and sizes[uid] <= limit]
        oversized = [uid for uid in batch if uid in sizes and sizes[uid] > limit]
        bodies = await connection.call(session.bodies, whole, header_only=False)
        headers = await connection.call(session.bodies, oversized, header_only=True)
        mails = [
            FetchedMail(folder, uid, data, sizes[uid], uid in headers)
            for uid in batch
            if (data := bodies.get(uid, headers.get(uid))) is not None
        ]
        if len(mails) < len(batch):
            log.info(
                "IMAP channel %s: %d message(s) of %r vanished before they were fetched",
                self._channel_id,
                len(batch) - len(mails),
                folder,
            )
        if not mails:
            return
        try:
            await self._handle(mails)
        except Exception as err:
            raise _HandlerFailed(
                f"storing mail from {folder!r} (UIDs {mails[0].uid}-{mails[-1].uid}) failed: "
                f"{err!r}"
            ) from err
        if self._config.imap_move_to is not None:
            moved = [mail.uid for mail in mails]
            await connection.call(session.move, moved, self._config.imap_move_to)

    async def _save(self, folder: str, cursor: Cursor, connection: _Connection) -> None:
        await self._cursors.save(self._channel_id, cursor_key(folder), str(cursor))
        connection.cursors[folder] = cursor

    async def _idle(self, connection: _Connection, folder: str) -> None:
        """Waits in IDLE on `folder` until it gets mail, the IDLE is due for renewal, or
        every folder is due for a re-sync."""
        session = connection.session
        if connection.selected != folder:
            try:
                state = await connection.call(
                    session.select, folder, readonly=self._config.imap_move_to is None
                )
            except FolderMissing:
                return  # deleted since the sync round; the next round reports it
            connection.selected = folder
            cursor = connection.cursors.get(folder)
            # Mail that came while the other folders were synced is counted in this
            # SELECT's answer and will not be announced in the IDLE.
            uidnext = state.uidnext
            if cursor is not None and uidnext is not None and uidnext > cursor.last_uid + 1:
                return
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Every folder is also re-synced every poll_seconds while idling: the other
        # folders, and this one as a safety net for a notification that never came.
        limit = min(self._idle_renew, self._poll)
        await connection.call(session.idle_start)
        while loop.time() - started < limit:
            if await connection.call(session.idle_wait, _IDLE_SLICE_SECONDS):
                break
        await connection.call(session.idle_stop)


def _close_if_opened(opening: Future[IMAPClient]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        close_quietly(opening.result())


async def check_imap(config: EmailConfig, *, timeout: float = 15.0) -> dict[str, str]:
    """The IMAP half of "test connection": logs in, opens each folder, logs out.

    Answers {} when all is well, else field errors keyed by configuration key
    (imap_host, imap_security, imap_password, imap_folders, imap_move_to). Never raises
    for what the server answers."""
    try:
        return await asyncio.to_thread(_check_imap, config, timeout)
    except Exception as err:
        log.exception("checking IMAP for %s failed unexpectedly", config.imap_host)
        return {"imap_host": f"unexpected error while checking {config.imap_host}: {err}"}


def _check_imap(config: EmailConfig, timeout: float) -> dict[str, str]:
    try:
        client = open_client(config, timeout)
    except (ConnectFailed, TlsFailed, CredentialsRefused) as err:
        return {err.field: str(err)}
    except TransientError as err:
        return {"imap_host": str(err)}
    session = Session(client)
    errors: dict[str, str] = {}
    try:
        missing: list[str] = []
        for folder in config.imap_folders:
            try:
                session.select(folder, readonly=True)
            except FolderMissing as err:
                missing.append(str(err))
        if missing:
            errors["imap_folders"] = "; ".join(missing)
        move_to = config.imap_move_to
        if move_to is not None and not session.folder_exists(move_to):
            errors["imap_move_to"] = f"folder {move_to!r} does not exist"
    except TransientError as err:
        errors["imap_host"] = str(err)
    finally:
        session.close()
    return errors
