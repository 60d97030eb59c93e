"""The aiogram client of one bot, and Bot API errors translated into connector errors."""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import TelegramMethod

from connectors.errors import AuthError, ConnectorError, PermanentError, TransientError
from connectors.telegram.config import TelegramConfig

# The update kinds this hub asks for (getUpdates / setWebhook `allowed_updates`). Other
# kinds (callback queries, reactions, poll answers) are not messages; they are not asked
# for, and acknowledged without effect if they arrive anyway.
ALLOWED_UPDATES = [
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "my_chat_member",
]


def make_bot(config: TelegramConfig) -> Bot:
    """An aiogram Bot for the channel, talking to `api_base_url` when one is set."""
    if config.api_base_url:
        session = AiohttpSession(api=TelegramAPIServer.from_base(config.api_base_url))
        return Bot(config.bot_token, session=session)
    return Bot(config.bot_token)


class GetUpdatesRaw(TelegramMethod[list[dict[str, Any]]]):
    """getUpdates answering the updates as JSON objects rather than aiogram models.

    aiogram's own GetUpdates validates the whole batch at once, so a single update its
    models refuse would stall polling for good; each update is validated on its own
    instead (validate.py), and its JSON kept as the message's raw payload."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


def translate(err: TelegramAPIError) -> ConnectorError:
    """A Bot API error as one of the three connector errors (raise it `from err`)."""
    reason = err.message
    if isinstance(err, TelegramRetryAfter):
        return TransientError(f"Telegram rate limit: {reason}", retry_after=err.retry_after)
    if isinstance(err, TelegramUnauthorizedError):
        return AuthError(f"Telegram refused the bot token: {reason}")
    if isinstance(err, TelegramEntityTooLarge):
        return PermanentError(f"Telegram refused the file as too large: {reason}")
    if isinstance(err, (TelegramNetworkError, TelegramServerError, TelegramConflictError)):
        return TransientError(f"Telegram unavailable: {reason}")
    if isinstance(err, (TelegramForbiddenError, TelegramBadRequest, TelegramNotFound)):
        return PermanentError(reason)
    return TransientError(f"Telegram error: {reason}")
