"""`python -m tests.services start|stop DIR`, which .ci/run uses, starts real servers."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import redis.asyncio as aioredis


def _services(action: str, root: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tests.services", action, str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _listening(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


async def test_start_prints_working_urls_and_stop_stops_them() -> None:
    # Not pytest's tmp_path: the postgres user cannot enter root's private pytest folder.
    with tempfile.TemporaryDirectory(prefix="switchboard-services-") as folder:
        await _start_check_stop(Path(folder))


async def _start_check_stop(root: Path) -> None:
    lines = _services("start", root).splitlines()
    urls = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    try:
        assert set(urls) == {
            "SWITCHBOARD_TEST_POSTGRES_URL",
            "SWITCHBOARD_TEST_REDIS_URL",
            "SWITCHBOARD_TEST_DOVECOT_DIR",
            "SWITCHBOARD_TEST_DOVECOT_PORT",
        }
        dovecot = f"imap://127.0.0.1:{urls['SWITCHBOARD_TEST_DOVECOT_PORT']}"
        assert _listening(dovecot)
        postgres = urls["SWITCHBOARD_TEST_POSTGRES_URL"]
        assert urlsplit(postgres).hostname == "127.0.0.1"
        connection = await asyncpg.connect(postgres.replace("postgresql+asyncpg", "postgresql"))
        assert await connection.fetchval("select 40 + 2") == 42
        await connection.close()
        client = aioredis.from_url(urls["SWITCHBOARD_TEST_REDIS_URL"])
        assert await client.ping()
        await client.aclose()
    finally:
        _services("stop", root)
    assert not _listening(postgres)
    assert not _listening(urls["SWITCHBOARD_TEST_REDIS_URL"])
    assert not _listening(dovecot)
