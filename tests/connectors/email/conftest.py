"""A real Dovecot for the email tests, a fresh mailbox per test, and IMAP APPEND helpers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from connectors.email.config import EmailConfig
from connectors.email.imap import FetchedMail, ImapReceiver
from connectors.types import ChannelHealth, ChannelId
from tests.services import Dovecot, free_port


@pytest.fixture(scope="session")
def dovecot(service_root: Path) -> Iterator[Dovecot]:
    """A Dovecot server on 127.0.0.1 (started here unless SWITCHBOARD_TEST_DOVECOT_DIR and
    SWITCHBOARD_TEST_DOVECOT_PORT name a running one). Fails when it cannot start."""
    given_dir = os.environ.get("SWITCHBOARD_TEST_DOVECOT_DIR")
    given_port = os.environ.get("SWITCHBOARD_TEST_DOVECOT_PORT")
    if given_dir and given_port:
        yield Dovecot(Path(given_dir), int(given_port))
        return
    server = Dovecot(service_root / "dovecot", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def message(number: int, *, body: str | None = None, subject: str | None = None) -> bytes:
    """A small RFC 822 message with a recognizable Message-ID."""
    text = body if body is not None else f"Hello, this is message {number}."
    return (
        "From: Ann Customer <ann@example.com>\r\n"
        "To: support@example.org\r\n"
        f"Subject: {subject or f'Question {number}'}\r\n"
        f"Message-ID: <m{number}@example.com>\r\n"
        "Date: Mon, 02 Sep 2024 10:00:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{text}\r\n"
    ).encode()


@dataclass
class Mailbox:
    """A fresh user on the test Dovecot."""

    server: Dovecot
    user: str
    password: str

    def config(self, **overrides: Any) -> EmailConfig:
        """An email channel configuration reading this mailbox in clear text."""
        values: dict[str, Any] = {
            "imap_host": "127.0.0.1",
            "imap_port": self.server.port,
            "imap_security": "none",
            "imap_username": self.user,
            "imap_password": self.password,
            "smtp_host": "127.0.0.1",
            "from_address": "support@example.org",
        }
        values.update(overrides)
        return EmailConfig(**values)

    def client(self) -> IMAPClient:
        """A logged-in IMAP connection of the test's own (close it with logout())."""
        client = IMAPClient("127.0.0.1", port=self.server.port, ssl=False, timeout=30)
        client.login(self.user, self.password)
        return client

    def append_sync(
        self,
        messages: Iterable[bytes],
        *,
        folder: str = "INBOX",
        flags: Sequence[bytes] = (),
    ) -> None:
        """APPENDs messages over one connection (MULTIAPPEND in chunks: fast for backlogs)."""
        batch = list(messages)
        client = self.client()
        try:
            for start in range(0, len(batch), 100):
                chunk = batch[start : start + 100]
                client.multiappend(folder, [{"msg": m, "flags": list(flags)} for m in chunk])
        finally:
            client.logout()

    async def append(
        self, *messages: bytes, folder: str = "INBOX", flags: Sequence[bytes] = ()
    ) -> None:
        """APPEND from a thread, so a receiver in the test's event loop keeps running."""
        await asyncio.to_thread(self.append_sync, messages, folder=folder, flags=flags)

    def run(self, action: Callable[[IMAPClient], Any]) -> Any:
        """Runs `action` on a fresh connection of the test's own and logs out."""
        client = self.client()
        try:
            return action(client)
        finally:
            client.logout()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    """A new, empty mailbox user with a password."""
    name = f"u{uuid.uuid4().hex[:12]}"
    password = uuid.uuid4().hex
    dovecot.add_user(name, password)
    return Mailbox(dovecot, name, password)


class Changes:
    """Something tests wait on: `wait_until` re-checks a condition after every change."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        async def check() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(check(), timeout)


class MemoryCursors(Changes):
    """An in-memory CursorStore."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}

    async def load(self, channel_id: ChannelId, key: str) -> str | None:
        return self.values.get((channel_id, key))

    async def save(self, channel_id: ChannelId, key: str, value: str) -> None:
        self.values[(channel_id, key)] = value
        self.changed()


@dataclass
class HealthLog(Changes):
    """A HealthSink that records every report."""

    reports: list[tuple[ChannelHealth, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        Changes.__init__(self)

    async def __call__(
        self, channel_id: ChannelId, health: ChannelHealth, reason: str | None
    ) -> None:
        self.reports.append((health, reason))
        self.changed()

    def states(self) -> list[ChannelHealth]:
        return [health for health, _ in self.reports]


@pytest.fixture
def cursors() -> MemoryCursors:
    return MemoryCursors()


@pytest.fixture
def health() -> HealthLog:
    return HealthLog()


class Recorder(Changes):
    """A MailHandler that keeps every batch it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[FetchedMail]] = []

    async def __call__(self, mails: Sequence[FetchedMail]) -> None:
        self.batches.append(list(mails))
        self.changed()

    def uids(self) -> list[int]:
        return [mail.uid for batch in self.batches for mail in batch]

    def mails(self) -> list[FetchedMail]:
        return [mail for batch in self.batches for mail in batch]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@contextlib.asynccontextmanager
async def running(receiver: ImapReceiver) -> AsyncIterator[asyncio.Task[None]]:
    """Runs a receiver for the body of a `with`, then cancels it and waits for it to end."""
    task = asyncio.create_task(receiver.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
