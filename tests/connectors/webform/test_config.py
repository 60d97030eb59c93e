"""The web form channel's configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.webform.config import WebformConfig


def test_defaults_need_nothing() -> None:
    config = WebformConfig.model_validate({})
    assert config.allowed_origins == []
    assert config.submissions_per_hour_per_ip == 20
    assert config.min_seconds_to_submit == 3.0
    assert config.max_token_age_hours == 24.0
    assert config.keep_ip_address is True
    assert config.ip_retention_days == 30 and config.keeps_ip is True
    assert config.acknowledgement_channel_id is None and config.acknowledgement_text is None


def test_ip_retention_and_acknowledgement_options() -> None:
    assert WebformConfig(ip_retention_days=0).keeps_ip is False
    assert WebformConfig(keep_ip_address=False, ip_retention_days=90).keeps_ip is False
    channel = "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    config = WebformConfig.model_validate(
        {"acknowledgement_channel_id": channel, "acknowledgement_text": " Thanks!\n{form} "}
    )
    assert config.acknowledgement_channel_id == channel.lower()
    assert config.acknowledgement_text == "Thanks!\n{form}"
    assert WebformConfig(acknowledgement_channel_id="").acknowledgement_channel_id is None


def test_origins_are_normalized_and_checked() -> None:
    config = WebformConfig.model_validate({"allowed_origins": ["HTTPS://Shop.Example:443"]})
    assert config.allowed_origins == ["https://shop.example"]
    with pytest.raises(ValidationError, match="no path"):
        WebformConfig.model_validate({"allowed_origins": ["https://shop.example/form"]})


@pytest.mark.parametrize(
    "config",
    [
        {"submissions_per_hour_per_ip": 0},
        {"min_seconds_to_submit": -1},
        {"max_token_age_hours": 0},
        {"unknown": True},
        {"ip_retention_days": -1},
        {"ip_retention_days": 3651},
        {"ip_retention_days": "forever"},
        {"acknowledgement_channel_id": "not-a-uuid"},
        {"acknowledgement_channel_id": "x" * 65},
        {"acknowledgement_text": ""},
        {"acknowledgement_text": "   "},
        {"acknowledgement_text": "x" * 5_001},
        {"acknowledgement_text": "bell\x07"},
        {"acknowledgement_text": "nul\x00"},
    ],
)
def test_bad_values(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WebformConfig.model_validate(config)
