"""Routing rules: what a rule may say, checked when it is saved, and whether its
conditions hold for one inbound message (pure: no database, no clock).

A rule's conditions are an `all` group (every one must hold) and an optional `any` group
(at least one must hold, when there is one); a rule with no condition fires on every
inbound message. Conditions:

- `channel`: the message came in on one of `channel_ids`;
- `text`: the message (its subject and new text, the first `SCAN_LIMIT` characters)
  `contains` a value (case-insensitive) or `matches` a regular expression (the `regex`
  package, with a time limit per match: a pattern that backtracks catastrophically
  simply does not match, and patterns are compiled when saved);
- `contact_attribute`: a custom attribute `equals` (case-insensitive) or `contains` a
  value, or `is_set`;
- `lifecycle_stage`: the contact is in one of `stages`;
- `business_hours`: the message arrived `inside` (true) or outside (false) the business
  hours of the conversation's calendar (its team's, else its channel's); with no
  calendar every hour counts as inside;
- `language`: the contact's language starts with one of `languages` by subtags ("de"
  matches "de" and "de-AT", not "den").

Actions (inbox/routing_actions.py applies them): `assign_team`, `assign_agent`,
`add_label`, `set_priority`, `auto_reply` (a template with placeholders) and `escalate`
(to a second-line team).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import regex
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from inbox.attributes import KEY_PATTERN
from inbox.labels import LabelError, normalize_label
from inbox.lifecycle import Stage
from inbox.placeholders import unknown_placeholders
from inbox.workflow_models import Priority

logger = logging.getLogger(__name__)

SCAN_LIMIT = 10_000  # characters of a message the text conditions look at
REGEX_TIMEOUT_SECONDS = 0.05  # per match: a pathological pattern costs at most this
MAX_PATTERN = 500
MAX_VALUE = 500
MAX_REPLY = 5000
MAX_CONDITIONS = 20  # per group
MAX_ACTIONS = 10
MAX_IDS = 100
MAX_NAME = 200

_LANGUAGE = r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$"


def _clean(value: str) -> str:
    # PostgreSQL text cannot hold NUL; other control characters are mistakes in a rule.
    if any(ord(c) < 0x20 and c not in "\t\n\r" for c in value) or "\x7f" in value:
        raise ValueError("must not contain control characters")
    return value


def _label(value: str) -> str:
    try:
        return normalize_label(value)
    except LabelError as err:
        raise ValueError(str(err)) from err


def _template(value: str) -> str:
    _clean(value)
    if not value.strip():
        raise ValueError("must not be empty")
    if unknown := unknown_placeholders(value):
        raise ValueError("unknown placeholder(s): " + ", ".join(unknown))
    return value


CleanText = Annotated[str, AfterValidator(_clean)]
Label = Annotated[str, AfterValidator(_label)]
Template = Annotated[str, Field(min_length=1, max_length=MAX_REPLY), AfterValidator(_template)]
Ids = Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_IDS)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- conditions ---------------------------------------------------------------------------------


class ChannelCondition(_Part):
    """The message came in on one of these channels."""

    type: Literal["channel"]
    channel_ids: Ids


class TextCondition(_Part):
    """The message's text contains a value (case-insensitive) or matches a pattern."""

    type: Literal["text"]
    operator: Literal["contains", "matches"]
    value: Annotated[CleanText, Field(min_length=1, max_length=MAX_PATTERN)]

    @model_validator(mode="after")
    def _compiles(self) -> TextCondition:
        if self.operator == "matches":
            try:
                _compiled(self.value)
            except regex.error as err:
                raise ValueError(f"value: not a valid regular expression ({err})") from err
        return self


class ContactAttributeCondition(_Part):
    """A custom attribute of the contact equals or contains a value, or is set."""

    type: Literal["contact_attribute"]
    key: Annotated[str, Field(max_length=64, pattern=KEY_PATTERN.pattern)]
    operator: Literal["equals", "contains", "is_set"]
    value: Annotated[CleanText, Field(max_length=MAX_VALUE)] | None = None

    @model_validator(mode="after")
    def _value_given(self) -> ContactAttributeCondition:
        if self.operator == "is_set" and self.value is not None:
            raise ValueError('value: not used with "is_set"')
        if self.operator != "is_set" and not self.value:
            raise ValueError(f'value: required with "{self.operator}"')
        return self


class StageCondition(_Part):
    """The contact is in one of these lifecycle stages."""

    type: Literal["lifecycle_stage"]
    stages: Annotated[list[Stage], Field(min_length=1, max_length=len(Stage))]


class BusinessHoursCondition(_Part):
    """The message arrived inside (or outside) business hours."""

    type: Literal["business_hours"]
    inside: bool


class LanguageCondition(_Part):
    """The contact's language is one of these (by BCP 47 prefix: "de" matches "de-AT")."""

    type: Literal["language"]
    languages: Annotated[
        list[Annotated[str, Field(max_length=35, pattern=_LANGUAGE)]],
        Field(min_length=1, max_length=50),
    ]


Condition = Annotated[
    ChannelCondition
    | TextCondition
    | ContactAttributeCondition
    | StageCondition
    | BusinessHoursCondition
    | LanguageCondition,
    Field(discriminator="type"),
]


class Conditions(_Part):
    """Every condition of `all`, and at least one of `any` when it has any."""

    all: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    any: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)


# --- actions ------------------------------------------------------------------------------------


class AssignTeamAction(_Part):
    type: Literal["assign_team"]
    team_id: uuid.UUID


class AssignAgentAction(_Part):
    """Assign the user; skipped when they cannot see the conversation's channel."""

    type: Literal["assign_agent"]
    user_id: uuid.UUID


class AddLabelAction(_Part):
    type: Literal["add_label"]
    label: Label


class SetPriorityAction(_Part):
    type: Literal["set_priority"]
    priority: Priority


class AutoReplyAction(_Part):
    """An automatic reply (placeholders allowed; `agent.*` ones are empty)."""

    type: Literal["auto_reply"]
    text: Template


class EscalateAction(_Part):
    """Hand over to a second-line team: set the team, unassign, priority at least high."""

    type: Literal["escalate"]
    team_id: uuid.UUID


Action = Annotated[
    AssignTeamAction
    | AssignAgentAction
    | AddLabelAction
    | SetPriorityAction
    | AutoReplyAction
    | EscalateAction,
    Field(discriminator="type"),
]


class RuleBody(_Part):
    """A rule's conditions and actions, as stored (JSON) and as checked."""

    conditions: Conditions = Field(default_factory=Conditions)
    actions: Annotated[list[Action], Field(min_length=1, max_length=MAX_ACTIONS)]


def references(body: RuleBody) -> dict[str, dict[str, set[uuid.UUID]]]:
    """The ids a rule names, by kind ("channels", "teams", "users") and field path."""
    found: dict[str, dict[str, set[uuid.UUID]]] = {"channels": {}, "teams": {}, "users": {}}
    for group in ("all", "any"):
        for i, condition in enumerate(getattr(body.conditions, group)):
            if isinstance(condition, ChannelCondition):
                path = f"conditions.{group}.{i}.channel_ids"
                found["channels"][path] = set(condition.channel_ids)
    for i, action in enumerate(body.actions):
        if isinstance(action, AssignTeamAction | EscalateAction):
            found["teams"][f"actions.{i}.team_id"] = {action.team_id}
        elif isinstance(action, AssignAgentAction):
            found["users"][f"actions.{i}.user_id"] = {action.user_id}
    return found


# --- evaluation ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the conditions look at, for one inbound message."""

    channel_id: uuid.UUID
    text: str  # subject and new text, at most SCAN_LIMIT characters
    stage: str
    language: str | None
    attributes: Mapping[str, Any] = field(default_factory=dict)  # key -> rendered value
    inside_hours: bool = True


def scanned_text(subject: str | None, text: str) -> str:
    """The text conditions look at: the subject, then the text, cut to SCAN_LIMIT."""
    joined = f"{subject}\n{text}" if subject else text
    return joined[:SCAN_LIMIT]


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):  # money
        return f"{value.get('amount')} {value.get('currency')}"
    return str(value)


def _attribute_holds(condition: ContactAttributeCondition, attributes: Mapping[str, Any]) -> bool:
    value = attributes.get(condition.key)
    if value is None:
        return False
    if condition.operator == "is_set":
        return True
    wanted = (condition.value or "").casefold()
    have = _attribute_text(value).casefold()
    if condition.operator == "contains":
        return wanted in have
    if isinstance(value, float) and not isinstance(value, bool):
        try:
            return float(wanted) == value
        except ValueError:
            return False
    return have == wanted


def _language_holds(condition: LanguageCondition, language: str | None) -> bool:
    if not language:
        return False
    have = language.casefold()
    wanted = [w.casefold() for w in condition.languages]
    return any(have == w or have.startswith(w + "-") for w in wanted)


def _text_holds(condition: TextCondition, text: str) -> bool:
    if condition.operator == "contains":
        return condition.value.casefold() in text.casefold()
    try:
        return _compiled(condition.value).search(text, timeout=REGEX_TIMEOUT_SECONDS) is not None
    except TimeoutError:
        logger.warning("routing pattern %r timed out; taken as not matching", condition.value[:80])
        return False


def holds(condition: Condition, facts: Facts) -> bool:
    """Whether one condition holds for the message."""
    if isinstance(condition, ChannelCondition):
        return facts.channel_id in condition.channel_ids
    if isinstance(condition, TextCondition):
        return _text_holds(condition, facts.text)
    if isinstance(condition, ContactAttributeCondition):
        return _attribute_holds(condition, facts.attributes)
    if isinstance(condition, StageCondition):
        return facts.stage in condition.stages
    if isinstance(condition, BusinessHoursCondition):
        return facts.inside_hours == condition.inside
    return _language_holds(condition, facts.language)


def matches(conditions: Conditions, facts: Facts) -> bool:
    """Every `all` condition holds, and one of `any` when there are some."""
    if not all(holds(c, facts) for c in conditions.all):
        return False
    return not conditions.any or any(holds(c, facts) for c in conditions.any)


def needs(conditions: Conditions) -> set[str]:
    """Which costly facts the conditions read ("attributes", "hours")."""
    kinds = {c.type for c in (*conditions.all, *conditions.any)}
    wanted = set()
    if "contact_attribute" in kinds:
        wanted.add("attributes")
    if "business_hours" in kinds:
        wanted.add("hours")
    return wanted
