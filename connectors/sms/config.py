"""Configuration of an SMS channel (a Twilio number or messaging service)."""

from __future__ import annotations

import phonenumbers
from pydantic import Field, field_validator, model_validator

from connectors.config import ChannelConfig

MIB = 1024 * 1024


class SmsConfig(ChannelConfig):
    """A Twilio account and the number (or messaging service) it sends from."""

    secret_fields = frozenset({"auth_token"})

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str = Field(min_length=1, max_length=256)
    phone_number: str | None = None
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    api_base_url: str | None = Field(default=None, pattern=r"^https?://")
    # A larger MMS file is recorded as an attachment note, not downloaded (Twilio: 5 MB).
    max_media_bytes: int = Field(default=5 * MIB, ge=1024, le=100 * MIB)
    # Twilio waits 15 s for a webhook answer; a slower download is retried later instead.
    media_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Per request to Twilio's REST API (sending, the connection check).
    api_timeout_seconds: float = Field(default=15.0, gt=0, le=120)

    @field_validator("phone_number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as err:
            raise ValueError("must be an E.164 number such as +14155550100") from err
        if not phonenumbers.is_possible_number(number):
            raise ValueError("is not a possible phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r}")
        return value

    @model_validator(mode="after")
    def _sender(self) -> SmsConfig:
        if not self.phone_number and not self.messaging_service_sid:
            raise ValueError("either phone_number or messaging_service_sid is required")
        return self
