"""Two `switchboard worker` processes on PostgreSQL share one mailbox: exactly one reads
it; when that one is killed (SIGKILL, no goodbye) the other takes over once the lease
has expired, and every message is stored exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.connectors.email.conftest import Mailbox, message
from tests.web.test_cli import _env
from timeline import leases
from timeline.crypto import SecretBox
from timeline.db import create_engine, session_factory
from timeline.models import Channel, Message

KEY = "email-workers-test-secret-key-0123456789abcdef"
DEADLINE = 120.0
RECEIVING = "receiving in this process"


class Worker:
    """One `switchboard worker` process and its log."""

    def __init__(self, env: dict[str, str], log: Path, cwd: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "web.cli", "worker"],
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def receiving(self) -> bool:
        return RECEIVING in self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


async def _stored(url: str, channel_id: object) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            total = await session.scalar(
                select(func.count()).select_from(Message).where(Message.channel_id == channel_id)
            )
            distinct = await session.scalar(
                select(func.count(func.distinct(Message.external_id))).where(
                    Message.channel_id == channel_id
                )
            )
        return int(total or 0), int(distinct or 0)
    finally:
        await engine.dispose()


async def _holder(url: str, channel_id: object) -> str | None:
    engine = create_engine(url)
    try:
        return await leases.holder_of(session_factory(engine), channel_id)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def _add_channel(url: str, config: dict[str, object]) -> object:
    engine = create_engine(url)
    try:
        channel = Channel(
            kind="email", name="shared", config_encrypted=SecretBox(KEY).encrypt(config)
        )
        async with session_factory(engine)() as session, session.begin():
            session.add(channel)
        return channel.id
    finally:
        await engine.dispose()


def _wait(check: object, what: str) -> object:
    deadline = time.monotonic() + DEADLINE
    while True:
        result = check()  # type: ignore[operator]
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached: {what}")
        time.sleep(0.2)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_reader_per_mailbox_and_takeover_after_a_kill(
    database_url: str, mailbox: Mailbox, tmp_path: Path, workers: list[Worker]
) -> None:
    backlog = 300
    mailbox.append_sync(message(n) for n in range(backlog))
    config = mailbox.config(imap_batch_size=10).model_dump(mode="json")
    channel_id = asyncio.run(_add_channel(database_url, config))
    env = _env(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        secret_key=KEY,
        connector_lease_seconds="3",
        channel_reload_seconds="1",
        log_level="INFO",
    )
    for name in ("a", "b"):
        workers.append(Worker(env, tmp_path / f"worker-{name}.log", tmp_path))

    holder = _wait(
        lambda: asyncio.run(_holder(database_url, channel_id)), "a worker holds the lease"
    )
    assert isinstance(holder, str)
    first = next(w for w in workers if f":{w.pid}:" in holder)
    second = next(w for w in workers if w is not first)
    _wait(lambda: asyncio.run(_stored(database_url, channel_id))[0] > 0, "the import started")
    assert first.receiving() and not second.receiving()

    first.process.send_signal(signal.SIGKILL)  # mid-import, possibly mid-batch
    first.process.wait()
    later = 40
    mailbox.append_sync(message(n) for n in range(backlog, backlog + later))

    def all_stored() -> bool:
        return asyncio.run(_stored(database_url, channel_id))[0] >= backlog + later

    _wait(all_stored, "the other worker took over and stored everything")
    time.sleep(2.0)  # room for a wrongly doubled message to arrive
    assert asyncio.run(_stored(database_url, channel_id)) == (backlog + later, backlog + later)
    assert second.receiving()
    new_holder = asyncio.run(_holder(database_url, channel_id))
    assert new_holder is not None and f":{second.pid}:" in new_holder
