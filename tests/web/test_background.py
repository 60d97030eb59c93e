"""Loops run for an app's lifetime: stopped politely, cancelled when they do not stop,
and a crash logged instead of lost."""

from __future__ import annotations

import asyncio
import logging

import pytest

from web.background import background


async def test_a_loop_that_stops_finishes_its_round() -> None:
    seen: list[str] = []

    async def loop(stop: asyncio.Event) -> None:
        await stop.wait()
        await asyncio.sleep(0)  # the rest of its round
        seen.append("finished")

    async with background("polite", loop, grace=None):
        await asyncio.sleep(0)
    assert seen == ["finished"]


@pytest.mark.parametrize("grace", [0.0, 0.01])
async def test_a_loop_that_ignores_stop_is_cancelled(grace: float) -> None:
    cancelled = asyncio.Event()

    async def loop(stop: asyncio.Event) -> None:
        try:
            await asyncio.Event().wait()  # never returns by itself
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with background("stubborn", loop, grace=grace):
        await asyncio.sleep(0)
    assert cancelled.is_set()


async def test_a_crash_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def loop(stop: asyncio.Event) -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="web.background"):
        async with background("crashing", loop):
            await asyncio.sleep(0.01)
    assert any("crashing stopped" in r.getMessage() for r in caplog.records)
