"""What became of one attempt to send an outbound job: the values passed between modules.

The dispatcher (timeline/dispatcher.py) turns a send, or a message that could not be
built (timeline/outbound_build.py), into one of these; timeline/delivery_record.py
stores it.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.types import SendResult
from timeline.models import ParkCause


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


@dataclass(frozen=True, slots=True)
class Parked:
    """The channel could not send at all; the job waits for it without using an attempt."""

    reason: str
    cause: ParkCause


Outcome = Accepted | Failed | Parked
