"""What became of one attempt to send an outbound job: the values passed between modules.

The dispatcher (timeline/dispatcher.py) turns a send, or a message that could not be
built (timeline/outbound_build.py), into one of these; timeline/delivery_record.py
stores it. Reasons often carry a provider's own words (an SMTP reply, an API error), so
they are made storable here, once, whatever path produced them.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.types import SendResult
from timeline.models import ParkCause
from timeline.storable import clean

MAX_REASON_LENGTH = 2000


def storable_reason(reason: str) -> str:
    """A provider's or connector's explanation, fit for a text column on both databases."""
    return clean(reason)[:MAX_REASON_LENGTH]


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider accepted the message."""

    result: SendResult


@dataclass(frozen=True, slots=True)
class Failed:
    """The attempt failed; `permanent` says whether it may be retried."""

    reason: str
    permanent: bool
    retry_after: float | None = None
    unknown: bool = False  # nobody knows whether the provider accepted it

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", storable_reason(self.reason))


@dataclass(frozen=True, slots=True)
class Parked:
    """The channel could not send at all; the job waits for it without using an attempt."""

    reason: str
    cause: ParkCause

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", storable_reason(self.reason))


Outcome = Accepted | Failed | Parked
