"""ImapReceiver against a real Dovecot: nothing lost, nothing doubled, mailbox untouched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import pytest
from imapclient import IMAPClient

from connectors.email.imap import FetchedMail, ImapReceiver
from connectors.email.imap_session import Session
from connectors.errors import AuthError, PermanentError
from connectors.types import ChannelHealth, ChannelId
from tests.connectors.email.conftest import (
    HealthLog,
    Mailbox,
    MemoryCursors,
    Recorder,
    message,
    running,
)

CHANNEL = ChannelId("channel-1")


def receiver(
    mailbox: Mailbox,
    cursors: MemoryCursors,
    health: HealthLog,
    handle: Any,
    *,
    config: dict[str, Any] | None = None,
    **options: Any,
) -> ImapReceiver:
    options.setdefault("poll_seconds", 3600.0)
    return ImapReceiver(
        CHANNEL, mailbox.config(**(config or {})), cursors, health, handle, **options
    )


def inbox_cursor(cursors: MemoryCursors) -> str:
    return cursors.values.get((CHANNEL, "imap:INBOX"), "")


def uidvalidity(mailbox: Mailbox, folder: str = "INBOX") -> int:
    answer = mailbox.run(lambda c: c.select_folder(folder, readonly=True))
    return int(answer[b"UIDVALIDITY"])


def flags_and_count(mailbox: Mailbox, folder: str = "INBOX") -> tuple[int, dict[int, Any]]:
    def read(client: IMAPClient) -> tuple[int, dict[int, Any]]:
        exists = int(client.select_folder(folder, readonly=True)[b"EXISTS"])
        found = client.fetch(client.search("ALL"), ["FLAGS"]) if exists else {}
        return exists, {uid: sorted(data[b"FLAGS"]) for uid, data in found.items()}

    result: tuple[int, dict[int, Any]] = mailbox.run(read)
    return result


async def test_first_start_imports_everything_also_mail_already_read(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    await mailbox.append(message(1), flags=[b"\\Seen"])
    await mailbox.append(message(2))
    await mailbox.append(message(3))
    # Someone reads message 3 on a phone: a plain FETCH BODY[] marks it \Seen.
    mailbox.run(lambda c: (c.select_folder("INBOX"), c.fetch([3], ["BODY[]"])))
    assert b"\\Seen" in flags_and_count(mailbox)[1][3]

    async with running(receiver(mailbox, cursors, health, recorder)):
        await recorder.wait_until(lambda: len(recorder.uids()) >= 3)
        await health.wait_until(lambda: ChannelHealth.CONNECTED in health.states())

    assert recorder.uids() == [1, 2, 3]
    assert [mail.data for mail in recorder.mails()] == [message(n) for n in (1, 2, 3)]
    assert all(mail.folder == "INBOX" and not mail.oversized for mail in recorder.mails())
    assert [mail.size for mail in recorder.mails()] == [len(message(n)) for n in (1, 2, 3)]
    assert inbox_cursor(cursors) == f"{uidvalidity(mailbox)}:3"


async def test_mailbox_is_left_untouched(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    await mailbox.append(message(1))
    await mailbox.append(message(2), flags=[b"\\Flagged"])
    await mailbox.append(message(3), flags=[b"\\Seen", b"\\Answered"])
    before = flags_and_count(mailbox)

    async with running(receiver(mailbox, cursors, health, recorder)):
        await recorder.wait_until(lambda: len(recorder.uids()) >= 3)

    assert recorder.uids() == [1, 2, 3]
    assert flags_and_count(mailbox) == before
    assert before[0] == 3 and b"\\Seen" not in before[1][1]


async def test_move_to_folder_after_import(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    mailbox.run(lambda c: c.create_folder("Imported"))
    await mailbox.append(message(1), message(2))
    config = {"imap_move_to": "Imported"}

    async with running(receiver(mailbox, cursors, health, recorder, config=config)):
        await recorder.wait_until(lambda: len(recorder.uids()) >= 2)
        await cursors.wait_until(lambda: inbox_cursor(cursors).endswith(":2"))
        await mailbox.append(message(3))
        await recorder.wait_until(lambda: len(recorder.uids()) >= 3)
        await cursors.wait_until(lambda: inbox_cursor(cursors).endswith(":3"))

    assert recorder.uids() == [1, 2, 3]
    assert flags_and_count(mailbox)[0] == 0

    def read_imported(client: IMAPClient) -> dict[int, Any]:
        client.select_folder("Imported", readonly=True)
        found: dict[int, Any] = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
        return found

    moved = mailbox.run(read_imported)
    assert sorted(data[b"BODY[]"] for data in moved.values()) == sorted(
        message(n) for n in (1, 2, 3)
    )


async def test_move_to_a_missing_folder_is_a_configuration_error(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    await mailbox.append(message(1))
    config = {"imap_move_to": "Archive/Nowhere"}
    with pytest.raises(Exception, match="Archive/Nowhere"):
        await asyncio.wait_for(
            receiver(mailbox, cursors, health, recorder, config=config).run(), 30
        )
    assert health.reports[-1][0] == ChannelHealth.CONFIG_ERROR
    assert "Archive/Nowhere" in (health.reports[-1][1] or "")
    assert recorder.uids() == []  # nothing imported that could not be moved away
    assert flags_and_count(mailbox)[0] == 1


async def test_mail_appended_while_idling_arrives_without_a_poll(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    await mailbox.append(message(1))
    # Polling is an hour away: only IDLE can bring the second message.
    async with running(receiver(mailbox, cursors, health, recorder, poll_seconds=3600)):
        await recorder.wait_until(lambda: recorder.uids() == [1])
        await health.wait_until(lambda: ChannelHealth.CONNECTED in health.states())
        await mailbox.append(message(2))
        await recorder.wait_until(lambda: recorder.uids() == [1, 2])
        await mailbox.append(message(3))
        await recorder.wait_until(lambda: recorder.uids() == [1, 2, 3])
    assert [batch[0].data for batch in recorder.batches] == [message(n) for n in (1, 2, 3)]


async def test_idle_is_renewed_and_keeps_delivering(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    idle_renew = receiver(mailbox, cursors, health, recorder, idle_renew_seconds=0.5)
    async with running(idle_renew):
        # Each renewal (DONE, then a sync round, then IDLE again) reports CONNECTED.
        await health.wait_until(lambda: health.states().count(ChannelHealth.CONNECTED) >= 3)
        await mailbox.append(message(1))
        await recorder.wait_until(lambda: recorder.uids() == [1])
    assert set(health.states()) == {ChannelHealth.CONNECTED}


async def test_polls_when_asked_for_several_folders(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    mailbox.run(lambda c: c.create_folder("Support"))
    await mailbox.append(message(1), folder="Support")
    config = {"imap_folders": ["INBOX", "Support"]}
    # INBOX is watched with IDLE; Support is polled every half second.
    async with running(
        receiver(mailbox, cursors, health, recorder, config=config, poll_seconds=0.5)
    ):
        await recorder.wait_until(lambda: len(recorder.uids()) >= 1)
        await mailbox.append(message(2), folder="Support")
        await mailbox.append(message(3), folder="INBOX")
        await recorder.wait_until(lambda: len(recorder.uids()) >= 3)
    got = sorted((mail.folder, mail.uid, mail.data) for mail in recorder.mails())
    assert got == [("INBOX", 1, message(3)), ("Support", 1, message(1)), ("Support", 2, message(2))]
    assert cursors.values[(CHANNEL, "imap:Support")].endswith(":2")
    assert inbox_cursor(cursors).endswith(":1")


async def test_a_missing_folder_is_reported_and_the_others_keep_working(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    await mailbox.append(message(1))
    config = {"imap_folders": ["Gone", "INBOX"]}
    async with running(receiver(mailbox, cursors, health, recorder, config=config)):
        await recorder.wait_until(lambda: recorder.uids() == [1])
        await health.wait_until(lambda: bool(health.reports))
        await mailbox.append(message(2))  # INBOX is watched with IDLE although it is second
        await recorder.wait_until(lambda: recorder.uids() == [1, 2])
    state, reason = health.reports[0]
    assert state == ChannelHealth.CONFIG_ERROR
    assert "folder 'Gone' does not exist" in (reason or "")
    assert (CHANNEL, "imap:Gone") not in cursors.values


async def test_mail_announced_with_the_last_search_is_fetched_before_idling(
    mailbox: Mailbox,
    cursors: MemoryCursors,
    health: HealthLog,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await mailbox.append(message(1))
    real_search = Session.uids_after
    raced: list[list[int]] = []

    def search_raced_by_new_mail(self: Session, last_uid: int) -> list[int]:
        found = real_search(self, last_uid)
        if not found and not raced:
            # Mail lands while the empty search is answered: the server announces it
            # (EXISTS) with that answer and never again in the IDLE that follows.
            mailbox.append_sync([message(2)])
            raced.append(real_search(self, last_uid))
        return found

    monkeypatch.setattr(Session, "uids_after", search_raced_by_new_mail)
    # Polling is an hour away: only the announcement can bring the second message.
    async with running(receiver(mailbox, cursors, health, recorder, poll_seconds=3600)):
        await recorder.wait_until(lambda: recorder.uids() == [1, 2])
    # The search that raced the mail did not see it: only its announcement told.
    assert raced == [[]]


async def test_mail_that_came_while_other_folders_were_synced_is_fetched_before_idling(
    mailbox: Mailbox,
    cursors: MemoryCursors,
    health: HealthLog,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mailbox.run(lambda c: c.create_folder("Support"))
    await mailbox.append(message(1))
    real_select = Session.select
    selected: list[str] = []

    def select_watching(self: Session, folder: str, *, readonly: bool) -> Any:
        if selected == ["INBOX"] and folder == "Support":
            # INBOX gets mail while the second folder is being synced.
            mailbox.append_sync([message(2)])
        selected.append(folder)
        return real_select(self, folder, readonly=readonly)

    monkeypatch.setattr(Session, "select", select_watching)
    config = {"imap_folders": ["INBOX", "Support"]}
    async with running(
        receiver(mailbox, cursors, health, recorder, config=config, poll_seconds=3600)
    ):
        await recorder.wait_until(lambda: recorder.uids() == [1, 2])
    # INBOX was selected again to be watched, and synced again instead of idling.
    assert selected[:4] == ["INBOX", "Support", "INBOX", "INBOX"]


async def test_cursor_is_saved_only_after_the_handler_returns(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog
) -> None:
    await mailbox.append(message(1), message(2), message(3))
    seen: list[list[int]] = []
    cursor_during_handle: list[str | None] = []

    async def handle(mails: Sequence[FetchedMail]) -> None:
        seen.append([mail.uid for mail in mails])
        cursor_during_handle.append(cursors.values.get((CHANNEL, "imap:INBOX")))
        if len(seen) == 1:
            raise RuntimeError("database is down")

    async with running(receiver(mailbox, cursors, health, handle)):
        await health.wait_until(lambda: ChannelHealth.CONNECTED in health.states())

    valid = uidvalidity(mailbox)
    assert seen == [[1, 2, 3], [1, 2, 3]]  # the failed batch is fetched again, whole
    assert cursor_during_handle == [f"{valid}:0", f"{valid}:0"]
    assert inbox_cursor(cursors) == f"{valid}:3"
    failure = health.reports[0]
    assert failure[0] == ChannelHealth.TRANSIENT_DISCONNECT
    assert "database is down" in (failure[1] or "")


async def test_stopped_in_the_middle_of_a_batch_loses_and_doubles_nothing(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog
) -> None:
    await mailbox.append(*(message(n) for n in range(1, 21)))
    first = Recorder()
    stuck = asyncio.Event()

    async def handle(mails: Sequence[FetchedMail]) -> None:
        if len(first.batches) == 2:  # the third batch never commits: the process stops
            stuck.set()
            await asyncio.Event().wait()
        await first(mails)

    config = {"imap_batch_size": 5}
    async with running(receiver(mailbox, cursors, health, handle, config=config)):
        await asyncio.wait_for(stuck.wait(), 30)
    assert first.uids() == list(range(1, 11))
    assert inbox_cursor(cursors).endswith(":10")

    second = Recorder()
    async with running(receiver(mailbox, cursors, health, second, config=config)):
        await second.wait_until(lambda: len(second.uids()) >= 10)
        await cursors.wait_until(lambda: inbox_cursor(cursors).endswith(":20"))
    assert second.uids() == list(range(11, 21))
    assert [len(batch) for batch in second.batches] == [5, 5]


async def test_uidvalidity_reset_reads_the_folder_again(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    await mailbox.append(message(1), message(2), message(3))
    async with running(receiver(mailbox, cursors, health, recorder)):
        await recorder.wait_until(lambda: len(recorder.uids()) >= 3)
    old = uidvalidity(mailbox)
    assert inbox_cursor(cursors) == f"{old}:3"

    # The server's mailbox index is rebuilt (a migration, a restore): every UID is void.
    new = old + 1000
    mailbox.server.doveadm(
        "mailbox", "update", "-u", mailbox.user, "--uid-validity", str(new), "INBOX"
    )
    assert uidvalidity(mailbox) == new

    again = Recorder()
    async with running(receiver(mailbox, cursors, health, again)):
        await again.wait_until(lambda: len(again.uids()) >= 3)
        await cursors.wait_until(lambda: inbox_cursor(cursors) == f"{new}:3")
    assert [mail.data for mail in again.mails()] == [message(n) for n in (1, 2, 3)]


async def test_a_backlog_of_500_is_delivered_once_in_uid_order(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    await asyncio.to_thread(mailbox.append_sync, [message(n) for n in range(1, 501)])
    async with running(receiver(mailbox, cursors, health, recorder)):
        await recorder.wait_until(lambda: len(recorder.uids()) >= 500, timeout=120)
        await health.wait_until(lambda: ChannelHealth.CONNECTED in health.states())
    assert recorder.uids() == list(range(1, 501))
    assert [mail.data for mail in recorder.mails()] == [message(n) for n in range(1, 501)]
    assert max(len(batch) for batch in recorder.batches) == 50
    assert inbox_cursor(cursors) == f"{uidvalidity(mailbox)}:500"


async def test_an_oversized_message_comes_as_its_header_and_blocks_nothing(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    limit = 64 * 1024
    huge = message(2, body="x" * 76 + ("\r\n" + "y" * 76) * 1000)
    assert len(huge) > limit
    await mailbox.append(message(1), huge, message(3))
    config = {"imap_max_message_bytes": limit}
    async with running(receiver(mailbox, cursors, health, recorder, config=config)):
        await recorder.wait_until(lambda: len(recorder.uids()) >= 3)

    first, big, last = recorder.mails()
    assert (first.data, first.oversized) == (message(1), False)
    assert (last.data, last.oversized) == (message(3), False)
    assert big.oversized and big.uid == 2 and big.size == len(huge)
    assert b"Message-ID: <m2@example.com>" in big.data
    assert big.data.endswith(b"\r\n\r\n") and b"xxxx" not in big.data


async def test_a_message_that_vanishes_before_its_fetch_is_skipped(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    await mailbox.append(*(message(n) for n in range(1, 5)))

    def expunge_third(client: IMAPClient) -> None:
        client.select_folder("INBOX")
        client.add_flags([3], [b"\\Deleted"])
        client.uid_expunge([3])

    async def handle(mails: Sequence[FetchedMail]) -> None:
        if not recorder.batches:  # another client deletes UID 3 after it was searched
            await asyncio.to_thread(mailbox.run, expunge_third)
        await recorder(mails)

    config = {"imap_batch_size": 2}
    async with running(receiver(mailbox, cursors, health, handle, config=config)):
        await recorder.wait_until(lambda: recorder.uids()[-1:] == [4])
        await cursors.wait_until(lambda: inbox_cursor(cursors).endswith(":4"))
    assert [[mail.uid for mail in batch] for batch in recorder.batches] == [[1, 2], [4]]


async def test_wrong_password_is_bad_credentials_and_auth_error(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    config = {"imap_password": "not-the-password"}
    with pytest.raises(AuthError, match="refused the user name or password"):
        await asyncio.wait_for(
            receiver(mailbox, cursors, health, recorder, config=config).run(), 30
        )
    assert len(health.reports) == 1
    state, reason = health.reports[0]
    assert state == ChannelHealth.BAD_CREDENTIALS
    assert "AUTHENTICATIONFAILED" in (reason or "")


async def test_cancel_while_idling_logs_out(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    async with running(receiver(mailbox, cursors, health, recorder)) as task:
        await health.wait_until(lambda: ChannelHealth.CONNECTED in health.states())
    assert task.cancelled()
    log_file = mailbox.server.root / "log"

    def logged_out() -> bool:
        return any(
            f"imap({mailbox.user})" in line and "Logged out" in line
            for line in log_file.read_text().splitlines()
        )

    # Dovecot's log process writes a moment later; look again until it has.
    for _ in range(100):
        if logged_out():
            break
        await asyncio.sleep(0.1)
    assert logged_out()


class Proxy:
    """A TCP proxy to the IMAP server that the test can cut, like a network outage."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        """Drops every connection at once, without a word from the server."""
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_a_lost_connection_is_reported_and_recovered(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    proxy = Proxy(mailbox.server.port)
    await proxy.start()
    try:
        await mailbox.append(message(1))
        config = {"imap_port": proxy.port}
        async with running(receiver(mailbox, cursors, health, recorder, config=config)):
            await recorder.wait_until(lambda: recorder.uids() == [1])
            await health.wait_until(lambda: ChannelHealth.CONNECTED in health.states())
            proxy.cut()
            await health.wait_until(lambda: ChannelHealth.TRANSIENT_DISCONNECT in health.states())
            await mailbox.append(message(2))
            await recorder.wait_until(lambda: recorder.uids() == [1, 2])
            await health.wait_until(lambda: health.states()[-1] == ChannelHealth.CONNECTED)
    finally:
        await proxy.close()
    states = health.states()
    lost = states.index(ChannelHealth.TRANSIENT_DISCONNECT)
    assert ChannelHealth.CONNECTED in states[:lost] and ChannelHealth.CONNECTED in states[lost:]
    assert "closed" in (health.reports[lost][1] or "") or "lost" in (health.reports[lost][1] or "")
    assert [mail.data for mail in recorder.mails()] == [message(1), message(2)]


async def test_starttls_not_offered_stops_before_the_password_is_sent(
    mailbox: Mailbox, cursors: MemoryCursors, health: HealthLog, recorder: Recorder
) -> None:
    log_file = mailbox.server.root / "log"

    def auth_attempts() -> int:
        return sum(
            f"user=<{mailbox.user}>" in line and "imap-login" in line
            for line in log_file.read_text().splitlines()
        )

    await mailbox.append(message(1))
    before = auth_attempts()
    config = {"imap_security": "starttls"}
    with pytest.raises(PermanentError, match="does not offer STARTTLS"):
        await asyncio.wait_for(
            receiver(mailbox, cursors, health, recorder, config=config).run(), 30
        )
    assert health.states() == [ChannelHealth.CONFIG_ERROR]
    assert recorder.uids() == []
    # Neither a login nor a failed one: the password never went out in clear text. A later
    # login of the test's own is a marker: once Dovecot has logged it, it has logged ours.
    await asyncio.to_thread(mailbox.append_sync, [message(2)])
    for _ in range(100):
        if auth_attempts() > before:
            break
        await asyncio.sleep(0.1)
    assert auth_attempts() == before + 1
