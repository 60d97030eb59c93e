"""Configuration of a web form channel. Forms themselves are created under /api/v1/forms."""

from __future__ import annotations

import uuid
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
    # Whether a submission's IP address is recorded with its attribution, and for how
    # many days (0: not at all, like keep_ip_address false); older addresses are purged
    # by the worker (web/public_forms/retention.py).
    keep_ip_address: bool = True
    ip_retention_days: int = Field(default=30, ge=0, le=3650)
    # The email channel acknowledgements of this channel's forms go out on; None: the
    # first active email channel.
    acknowledgement_channel_id: str | None = Field(default=None, max_length=64)
    # The acknowledgement's text; "{form}" stands for the form's name. None: the default.
    acknowledgement_text: str | None = Field(default=None, min_length=1, max_length=5_000)

    @property
    def keeps_ip(self) -> bool:
        """Whether submissions' IP addresses are recorded at all."""
        return self.keep_ip_address and self.ip_retention_days > 0

    @field_validator("acknowledgement_channel_id")
    @classmethod
    def _channel_uuid(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError as err:
            raise ValueError("must be the id (a UUID) of an email channel") from err

    @field_validator("acknowledgement_text")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(
            (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 for c in value
        ):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [normalize_origin(v) if isinstance(v, str) else v for v in value]
        return value
