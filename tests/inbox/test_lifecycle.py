"""Lifecycle stages: any move a person makes, recorded; lost needs a reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from inbox.lifecycle import (
    MAX_REASON_LENGTH,
    STAGE_CHANGED,
    Stage,
    StageError,
    apply_stage_change,
    check_stage_change,
)
from timeline.models import Contact

NOW = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
BY = uuid.UUID("00000000-0000-7000-8000-000000000001")


def contact(stage: str = "new", reason: str | None = None) -> Contact:
    return Contact(id=uuid.uuid4(), name="Ann", lifecycle_stage=stage, lost_reason=reason)


def move(person: Contact, stage: str, reason: str | None = None) -> dict[str, object] | None:
    change = check_stage_change(person, stage, reason)
    if change is None:
        return None
    event = apply_stage_change(person, change, by=BY, now=NOW)
    assert event.kind == STAGE_CHANGED
    assert event.contact_id == person.id
    assert event.occurred_at == NOW
    return event.data


def test_the_pipeline_forward() -> None:
    person = contact()
    assert move(person, "lead") == {"from": "new", "to": "lead", "by": str(BY)}
    assert move(person, "qualified") == {"from": "lead", "to": "qualified", "by": str(BY)}
    assert move(person, "customer") == {"from": "qualified", "to": "customer", "by": str(BY)}
    assert person.lifecycle_stage == "customer"
    assert person.updated_at == NOW


def test_lost_needs_a_reason_and_keeps_it() -> None:
    person = contact("qualified")
    with pytest.raises(StageError) as refused:
        check_stage_change(person, "lost", None)
    assert refused.value.field == "lost_reason"
    with pytest.raises(StageError):
        check_stage_change(person, "lost", "   ")
    data = move(person, "lost", "  went with a competitor ")
    assert data == {
        "from": "qualified",
        "to": "lost",
        "reason": "went with a competitor",
        "by": str(BY),
    }
    assert person.lost_reason == "went with a competitor"


def test_a_lost_lead_can_come_back_and_loses_its_reason() -> None:
    person = contact("lost", "no budget")
    assert move(person, "lead") == {"from": "lost", "to": "lead", "by": str(BY)}
    assert person.lost_reason is None


def test_moving_backwards_is_allowed() -> None:
    person = contact("customer")
    assert move(person, "new") == {"from": "customer", "to": "new", "by": str(BY)}


@pytest.mark.parametrize("stage", [s.value for s in Stage if s is not Stage.LOST])
def test_same_stage_is_a_no_op(stage: str) -> None:
    person = contact(stage)
    assert check_stage_change(person, stage, None) is None


def test_same_lost_reason_is_a_no_op_but_a_new_one_is_recorded() -> None:
    person = contact("lost", "no budget")
    assert check_stage_change(person, "lost", "no budget") is None
    assert move(person, "lost", "chose a competitor") == {
        "from": "lost",
        "to": "lost",
        "reason": "chose a competitor",
        "by": str(BY),
    }


@pytest.mark.parametrize(
    ("stage", "reason", "field"),
    [
        ("won", None, "lifecycle_stage"),
        ("LEAD", None, "lifecycle_stage"),
        ("", None, "lifecycle_stage"),
        ("lead", "why not", "lost_reason"),  # only lost has a reason
        ("lost", "x" * (MAX_REASON_LENGTH + 1), "lost_reason"),
        ("lost", "line one\nline two", "lost_reason"),
        ("lost", "nul\x00", "lost_reason"),
    ],
)
def test_refused_changes_name_their_field(stage: str, reason: str | None, field: str) -> None:
    person = contact("lead")
    with pytest.raises(StageError) as refused:
        check_stage_change(person, stage, reason)
    assert refused.value.field == field
    assert person.lifecycle_stage == "lead"


def test_an_unknown_stored_stage_can_still_be_left() -> None:
    person = contact("legacy-stage")
    assert move(person, "lead") == {"from": "legacy-stage", "to": "lead", "by": str(BY)}
