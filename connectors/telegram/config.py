"""Configuration of a Telegram channel (one bot)."""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import Field, model_validator

from connectors.config import ChannelConfig


class TelegramConfig(ChannelConfig):
    """A bot token, and how updates arrive."""

    secret_fields = frozenset({"bot_token", "secret_token"})
    generated_secrets = frozenset({"secret_token"})

    bot_token: str = Field(pattern=r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")
    mode: Literal["polling", "webhook"] = "polling"
    # Telegram allows 1-256 characters A-Z, a-z, 0-9, _ and - (setWebhook secret_token).
    secret_token: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,256}$")
    api_base_url: str | None = Field(default=None, pattern=r"^https?://")
    # Long-polling wait of one getUpdates call, in seconds (the Bot API allows up to 50).
    poll_timeout: int = Field(default=30, ge=1, le=50)

    @model_validator(mode="after")
    def _generate_secret(self) -> TelegramConfig:
        if self.secret_token is None:
            self.secret_token = secrets.token_urlsafe(32)
        return self
