"""Shared pieces of the per-kind channel configuration schemas."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

SECRET_MASK = "***"


class ChannelConfig(BaseModel):
    """Base of every channel kind's configuration; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Field names whose values are credentials: stored encrypted, never returned.
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    # Secrets generated for the user that the creation answer must show once.
    generated_secrets: ClassVar[frozenset[str]] = frozenset()

    def masked(self, reveal: frozenset[str] = frozenset()) -> dict[str, object]:
        """The configuration as the API shows it: secrets replaced by `***` unless revealed."""
        data = self.model_dump(mode="json")
        for name in self.secret_fields - reveal:
            if data.get(name) not in (None, ""):
                data[name] = SECRET_MASK
        return data
