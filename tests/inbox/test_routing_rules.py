"""Routing rule conditions: what may be saved, and whether each holds (pure, no database)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from inbox.routing_rules import (
    SCAN_LIMIT,
    Conditions,
    Facts,
    RuleBody,
    matches,
    references,
    scanned_text,
)

CHANNEL = uuid.uuid4()
OTHER = uuid.uuid4()


def facts(**given: Any) -> Facts:
    values: dict[str, Any] = {
        "channel_id": CHANNEL,
        "text": "Hello, my invoice is wrong",
        "stage": "customer",
        "language": "de-AT",
        "attributes": {"plan": "Gold", "seats": 12.0, "vip": True, "note": None},
        "inside_hours": True,
    }
    values.update(given)
    return Facts(**values)


def conditions(*all: dict[str, Any], any: tuple[dict[str, Any], ...] = ()) -> Conditions:
    return Conditions.model_validate({"all": list(all), "any": list(any)})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"type": "channel", "channel_ids": [str(CHANNEL)]}, True),
        ({"type": "channel", "channel_ids": [str(OTHER)]}, False),
        ({"type": "text", "operator": "contains", "value": "INVOICE"}, True),
        ({"type": "text", "operator": "contains", "value": "refund"}, False),
        ({"type": "text", "operator": "matches", "value": r"invoice\s+is"}, True),
        ({"type": "text", "operator": "matches", "value": r"^invoice"}, False),
        ({"type": "contact_attribute", "key": "plan", "operator": "equals", "value": "gold"}, True),
        ({"type": "contact_attribute", "key": "plan", "operator": "equals", "value": "gol"}, False),
        ({"type": "contact_attribute", "key": "plan", "operator": "contains", "value": "OL"}, True),
        ({"type": "contact_attribute", "key": "seats", "operator": "equals", "value": "12"}, True),
        ({"type": "contact_attribute", "key": "vip", "operator": "equals", "value": "true"}, True),
        ({"type": "contact_attribute", "key": "plan", "operator": "is_set"}, True),
        ({"type": "contact_attribute", "key": "note", "operator": "is_set"}, False),
        ({"type": "contact_attribute", "key": "missing", "operator": "is_set"}, False),
        ({"type": "lifecycle_stage", "stages": ["lead", "customer"]}, True),
        ({"type": "lifecycle_stage", "stages": ["lead"]}, False),
        ({"type": "business_hours", "inside": True}, True),
        ({"type": "business_hours", "inside": False}, False),
        ({"type": "language", "languages": ["de"]}, True),
        ({"type": "language", "languages": ["DE-at"]}, True),
        ({"type": "language", "languages": ["d", "en"]}, False),  # "d" is no prefix of "de"
    ],
)
def test_each_condition(condition: dict[str, Any], expected: bool) -> None:
    assert matches(conditions(condition), facts()) is expected


def test_all_and_any_groups() -> None:
    stage = {"type": "lifecycle_stage", "stages": ["customer"]}
    hit = {"type": "text", "operator": "contains", "value": "invoice"}
    miss = {"type": "text", "operator": "contains", "value": "nothing"}
    assert matches(conditions(), facts())  # no condition: every message
    assert matches(conditions(stage, hit), facts())
    assert not matches(conditions(stage, miss), facts())
    assert matches(conditions(stage, any=(miss, hit)), facts())
    assert not matches(conditions(stage, any=(miss, miss)), facts())
    assert not matches(conditions({"type": "language", "languages": ["de"]}), facts(language=None))


def test_a_catastrophic_pattern_times_out_as_no_match(caplog: pytest.LogCaptureFixture) -> None:
    evil = conditions({"type": "text", "operator": "matches", "value": r"(a|aa)+$"})
    with caplog.at_level(logging.WARNING, logger="inbox.routing_rules"):
        assert not matches(evil, facts(text="a" * 5000 + "!"))
    # The per-match timeout ended it (not a slow failure to match): it says so.
    assert any("timed out" in record.getMessage() for record in caplog.records)


def test_the_scanned_text_is_capped() -> None:
    long = "x" * (SCAN_LIMIT * 3) + "needle"
    text = scanned_text("Subject", long)
    assert len(text) == SCAN_LIMIT and text.startswith("Subject\n")
    needle = conditions({"type": "text", "operator": "contains", "value": "needle"})
    assert not matches(needle, facts(text=text))


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"actions": []}, "actions"),
        ({"actions": [{"type": "explode"}]}, "actions.0"),
        ({"actions": [{"type": "add_label", "label": "  "}]}, "actions.0.add_label.label"),
        ({"actions": [{"type": "add_label", "label": "x" * 51}]}, "actions.0.add_label.label"),
        ({"actions": [{"type": "set_priority", "priority": "huge"}]}, "actions.0"),
        ({"actions": [{"type": "auto_reply", "text": "Hi {{contact.frist_name}}"}]}, "actions.0"),
        ({"actions": [{"type": "auto_reply", "text": "a\x00b"}]}, "actions.0"),
        ({"actions": [{"type": "auto_reply", "text": "x" * 5001}]}, "actions.0"),
        ({"actions": [{"type": "assign_team", "team_id": "nope"}]}, "actions.0"),
        ({"actions": [{"type": "add_label", "label": "a", "extra": 1}]}, "actions.0"),
        (
            {
                "conditions": {"all": [{"type": "text", "operator": "matches", "value": "(a"}]},
                "actions": [{"type": "add_label", "label": "a"}],
            },
            "conditions.all.0",
        ),
        (
            {
                "conditions": {"all": [{"type": "text", "operator": "contains", "value": "a\x00"}]},
                "actions": [{"type": "add_label", "label": "a"}],
            },
            "conditions.all.0",
        ),
        (
            {
                "conditions": {"any": [{"type": "language", "languages": ["de AT"]}]},
                "actions": [{"type": "add_label", "label": "a"}],
            },
            "conditions.any.0",
        ),
        (
            {
                "conditions": {
                    "all": [{"type": "contact_attribute", "key": "plan", "operator": "equals"}]
                },
                "actions": [{"type": "add_label", "label": "a"}],
            },
            "conditions.all.0",
        ),
        (
            {
                "conditions": {"all": [{"type": "channel", "channel_ids": []}]},
                "actions": [{"type": "add_label", "label": "a"}],
            },
            "conditions.all.0",
        ),
        ({"actions": [{"type": "add_label", "label": "a"}] * 11}, "actions"),
    ],
)
def test_invalid_rules_are_refused_naming_the_field(body: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RuleBody.model_validate(body)
    locations = [".".join(str(p) for p in error["loc"]) for error in caught.value.errors()]
    assert any(location.startswith(path) for location in locations), locations


def test_a_saved_rule_round_trips_and_names_its_references() -> None:
    team, user = uuid.uuid4(), uuid.uuid4()
    body = RuleBody.model_validate(
        {
            "conditions": {"all": [{"type": "channel", "channel_ids": [str(CHANNEL)]}]},
            "actions": [
                {"type": "add_label", "label": "  Billing "},
                {"type": "escalate", "team_id": str(team)},
                {"type": "assign_agent", "user_id": str(user)},
            ],
        }
    )
    assert body.actions[0].model_dump()["label"] == "billing"  # normalized when saved
    again = RuleBody.model_validate(body.model_dump(mode="json"))
    assert again == body
    assert references(body) == {
        "channels": {"conditions.all.0.channel_ids": {CHANNEL}},
        "teams": {"actions.1.team_id": {team}},
        "users": {"actions.2.user_id": {user}},
    }


@given(st.text(max_size=300))
def test_any_text_contains_itself_and_never_crashes(text: str) -> None:
    if "\x00" in text or not text or any(ord(c) < 0x20 and c not in "\t\n\r" for c in text):
        return
    if "\x7f" in text:
        return
    condition = conditions({"type": "text", "operator": "contains", "value": text})
    assert matches(condition, facts(text=f"before {text} after"))
