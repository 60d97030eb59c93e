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
    ],
)
def test_bad_values(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WebformConfig.model_validate(config)
