"""A contact's lifecycle stage: where the person is in the sales pipeline.

Contacts that arrive on a channel start as `new` (not in the pipeline yet); web forms make
leads. People move contacts between stages freely, since pipelines are not strictly
linear (a lost lead can come back), but every move is recorded on the contact's
timeline as "contact.stage_changed" with who made it. `lost` needs a reason, which goes
when the contact leaves `lost`.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from timeline.models import Contact, TimelineEvent

MAX_REASON_LENGTH = 500  # contacts.lost_reason

STAGE_CHANGED = "contact.stage_changed"


class Stage(enum.StrEnum):
    """The lifecycle stages, in the pipeline's usual order."""

    NEW = "new"  # not in the pipeline yet (a customer who just wrote in)
    LEAD = "lead"  # someone who may buy: a form submission, a qualified inquiry
    QUALIFIED = "qualified"  # checked: a real opportunity
    CUSTOMER = "customer"  # bought
    LOST = "lost"  # dropped out, with a reason


class StageError(ValueError):
    """A stage change that cannot be made; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class StageChange:
    """A checked change of a contact's stage."""

    before: Stage | str  # a stored value from before this module existed may be unknown
    after: Stage
    reason: str | None  # set exactly when `after` is lost


def check_stage_change(contact: Contact, stage: str, reason: str | None) -> StageChange | None:
    """The change of `contact` to `stage`, or None when it changes nothing.

    `reason` is required for `lost` and refused for every other stage. Setting the stage
    a contact already has is a no-op, except that a lost contact's reason may be changed.
    """
    try:
        after = Stage(stage)
    except ValueError as err:
        known = ", ".join(s.value for s in Stage)
        raise StageError("lifecycle_stage", f"unknown stage; known stages: {known}") from err
    if after is Stage.LOST:
        cleaned = (reason or "").strip()
        if not cleaned:
            raise StageError("lost_reason", "a lost contact needs a reason")
        if len(cleaned) > MAX_REASON_LENGTH:
            raise StageError("lost_reason", f"at most {MAX_REASON_LENGTH} characters")
        if any(ord(c) < 0x20 for c in cleaned):
            raise StageError("lost_reason", "must not contain control characters")
        reason = cleaned
    elif reason is not None:
        raise StageError("lost_reason", "only a lost contact has a reason")
    if contact.lifecycle_stage == after.value and contact.lost_reason == reason:
        return None
    before: Stage | str
    try:
        before = Stage(contact.lifecycle_stage)
    except ValueError:
        before = contact.lifecycle_stage
    return StageChange(before, after, reason)


def apply_stage_change(
    contact: Contact, change: StageChange, *, by: uuid.UUID | None, now: datetime
) -> TimelineEvent:
    """Change the contact's stage and return its timeline event (for the caller to add)."""
    contact.lifecycle_stage = change.after.value
    contact.lost_reason = change.reason
    contact.updated_at = now
    data: dict[str, object] = {
        "from": str(change.before),
        "to": change.after.value,
        "by": None if by is None else str(by),
    }
    if change.reason is not None:
        data["reason"] = change.reason
    return TimelineEvent(contact_id=contact.id, kind=STAGE_CHANGED, data=data, occurred_at=now)
