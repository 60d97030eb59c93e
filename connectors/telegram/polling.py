"""Long polling (getUpdates) with the update offset kept in the cursor store.

The offset saved is the last handled update's id + 1, written only once that update and
every earlier one has been handed over (committed), so a restart, even in the middle of
a batch, continues where the last worker stopped: nothing is handled twice and nothing
is lost. An update that cannot be
read at all is logged and acknowledged (it would never read better on a retry); a hand-
over that fails (the database is down) ends `run()` without saving, to be retried.
"""

from __future__ import annotations

import json
import logging
import random
from asyncio import sleep
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import Update

from connectors.base import CursorStore, HealthSink
from connectors.errors import AuthError
from connectors.telegram.client import ALLOWED_UPDATES, GetUpdatesRaw, translate
from connectors.telegram.validate import InvalidUpdate, parse_update
from connectors.types import ChannelHealth, ChannelId, RawPayload

log = logging.getLogger(__name__)

OFFSET_KEY = "telegram:offset"
UpdateHandler = Callable[[Update, RawPayload], Awaitable[None]]
# Errors worth waiting out: network trouble, Telegram 5xx, and 409 Conflict (another
# getUpdates for the same bot, e.g. a worker whose lease just passed to this one).
_TRANSIENT = (TelegramNetworkError, TelegramServerError, TelegramConflictError, ClientDecodeError)


class Poller:
    """Receives one bot's updates by long polling until cancelled."""

    def __init__(
        self,
        channel_id: ChannelId,
        bot: Bot,
        cursors: CursorStore,
        health: HealthSink,
        handle: UpdateHandler,
        *,
        poll_timeout: int = 30,
        backoff_start_seconds: float = 1.0,
        backoff_cap_seconds: float = 60.0,
    ) -> None:
        self._channel_id = channel_id
        self._bot = bot
        self._cursors = cursors
        self._health = health
        self._handle = handle
        self._timeout = poll_timeout
        self._backoff_start = backoff_start_seconds
        self._backoff_cap = backoff_cap_seconds

    async def run(self) -> None:
        """Poll until cancelled. Raises AuthError (after reporting BAD_CREDENTIALS) when
        Telegram refuses the token; waits out everything transient with capped backoff."""
        webhook_deleted = False
        connected = False
        failures = 0
        offset = await self._load_offset()
        while True:
            try:
                if not webhook_deleted:
                    # getUpdates is refused (409) while a webhook is set.
                    await self._bot.delete_webhook(drop_pending_updates=False)
                    webhook_deleted = True
                batch = await self._bot(
                    GetUpdatesRaw(
                        offset=offset, timeout=self._timeout, allowed_updates=ALLOWED_UPDATES
                    ),
                    request_timeout=self._timeout + 15,
                )
            except TelegramUnauthorizedError as err:
                await self._report(ChannelHealth.BAD_CREDENTIALS, err.message)
                raise AuthError(f"Telegram refused the bot token: {err.message}") from err
            except TelegramRetryAfter as err:
                await sleep(err.retry_after)
                continue
            except _TRANSIENT as err:
                failures += 1
                connected = False
                await self._report(ChannelHealth.TRANSIENT_DISCONNECT, _reason(err))
                await sleep(self._backoff(failures))
                continue
            except TelegramAPIError as err:
                # Anything else (400 on a bad parameter) will not heal by waiting here.
                raise translate(err) from err
            if not connected:
                connected = True
                failures = 0
                await self._report(ChannelHealth.CONNECTED, None)
            if batch:
                offset = await self._handle_batch(batch, offset)

    async def _handle_batch(self, batch: list[dict[str, Any]], offset: int | None) -> int | None:
        for item in batch:
            await self._handle_item(item)
            update_id = item.get("update_id")
            if isinstance(update_id, int) and (offset is None or update_id >= offset):
                # Saved after each update rather than once per batch, so a worker stopped
                # in the middle of a batch leaves nothing handed over to be handed again.
                offset = update_id + 1
                await self._cursors.save(self._channel_id, OFFSET_KEY, str(offset))
        return offset

    async def _handle_item(self, item: dict[str, Any]) -> None:
        # getUpdates delivers a batch, so one update's exact bytes are not at hand: its
        # JSON value is kept instead (re-parsing it gives the same message).
        raw = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            update = parse_update(item, self._bot)
        except InvalidUpdate as err:
            log.warning(
                "telegram channel %s: update %s skipped: %s",
                self._channel_id,
                item.get("update_id"),
                err,
            )
            return
        await self._handle(update, RawPayload("application/json", raw))

    async def _load_offset(self) -> int | None:
        saved = await self._cursors.load(self._channel_id, OFFSET_KEY)
        return int(saved) if saved else None

    def _backoff(self, failures: int) -> float:
        base = min(self._backoff_cap, self._backoff_start * 2.0 ** (failures - 1))
        return base * random.uniform(0.75, 1.0)

    async def _report(self, health: ChannelHealth, reason: str | None) -> None:
        try:
            await self._health(self._channel_id, health, reason)
        except Exception:
            log.exception(
                "telegram channel %s: recording health %s failed", self._channel_id, health
            )


def _reason(err: Exception) -> str:
    if isinstance(err, TelegramAPIError):
        return f"{type(err).__name__}: {err.message}"
    return f"{type(err).__name__}: {err}"
