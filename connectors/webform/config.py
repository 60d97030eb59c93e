"""Configuration of a web form channel. Forms themselves are created under /api/v1/forms."""

from __future__ import annotations

from pydantic import Field

from connectors.config import ChannelConfig


class WebformConfig(ChannelConfig):
    """Nothing is required; the options tune spam checks."""

    allowed_origins: list[str] = Field(default_factory=list)
    honeypot_field: str | None = Field(default=None, max_length=100)
