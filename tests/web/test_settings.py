"""The development secret key is generated once, even by processes starting together."""

from __future__ import annotations

import multiprocessing
import os
import stat
from multiprocessing.synchronize import Barrier
from pathlib import Path

from web.settings import Settings

PROCESSES = 8


def _resolve(data_dir: str, start: Barrier, queue: multiprocessing.Queue[str]) -> None:
    settings = Settings(data_dir=Path(data_dir), secret_key=None)
    start.wait()
    queue.put(settings.resolved_secret_key())


def test_racing_processes_agree_on_one_generated_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for attempt in range(10):  # the race window is narrow; several rounds make losing it likely
        data_dir = tmp_path / str(attempt)
        queue: multiprocessing.Queue[str] = context.Queue()
        start = context.Barrier(PROCESSES)
        processes = [
            context.Process(target=_resolve, args=(str(data_dir), start, queue))
            for _ in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(30)
            assert process.exitcode == 0
        keys = {queue.get(timeout=5) for _ in processes}
        assert len(keys) == 1
        (key,) = keys
        assert len(key) >= 32
        path = data_dir / "secret_key"
        assert path.read_text().strip() == key
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert [p.name for p in data_dir.iterdir()] == ["secret_key"]  # no temp files left


def test_an_existing_key_is_reused(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path, secret_key=None).resolved_secret_key()
    assert Settings(data_dir=tmp_path, secret_key=None).resolved_secret_key() == first
