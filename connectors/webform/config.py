"""Configuration of a web form channel. Forms themselves are created under /api/v1/forms."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from connectors.config import ChannelConfig
from connectors.webform.definition import normalize_origin


class WebformConfig(ChannelConfig):
    """Nothing is required; the options tune spam checks for every form of the channel."""

    allowed_origins: list[str] = Field(default_factory=list)
    honeypot_field: str | None = Field(default=None, max_length=100)
    # Per client address (IPv6: per /64), over every form of the channel.
    submissions_per_hour_per_ip: int = Field(default=20, ge=1, le=10_000)
    # Render token age bounds: sooner than a person could fill a form in, or a page left
    # open too long.
    min_seconds_to_submit: float = Field(default=3.0, ge=0, le=600)
    max_token_age_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # Whether a submission's IP address is recorded with its attribution.
    keep_ip_address: bool = True

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [normalize_origin(v) if isinstance(v, str) else v for v in value]
        return value
