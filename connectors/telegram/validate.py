"""Turning update JSON into aiogram's typed `Update`, tolerant of older payloads.

aiogram's models follow the newest Bot API and require fields that older servers and
captured payloads lack (`file_unique_id` before Bot API 4.5, `Sticker.type`, a poll
option's `persistent_id`, `User.is_bot` in some fixtures). None of them matter to us,
so a missing required field is filled with a neutral placeholder of the type pydantic
asks for, and the update validated again: one strict field never costs a customer's
message. Anything else that does not validate is refused with `InvalidUpdate`.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from aiogram import Bot
from aiogram.types import Update
from pydantic import ValidationError

log = logging.getLogger(__name__)

# Placeholder per pydantic error type, once the missing field has been probed with None.
_PLACEHOLDERS: dict[str, object] = {
    "string_type": "",
    "bool_type": False,
    "int_type": 0,
    "float_type": 0.0,
    "datetime_type": 0,
    "list_type": [],
    "model_type": {},
    "dict_type": {},
    "model_attributes_type": {},
}
# Each round fills the fields one validation reports; nesting needs a few rounds.
_MAX_ROUNDS = 8


class InvalidUpdate(ValueError):
    """The update cannot be read as a Telegram update (the reason says why)."""


def parse_update(data: object, bot: Bot | None) -> Update:
    """`data` (decoded JSON) as an aiogram Update bound to `bot` (None: unbound, for
    re-parsing); raises InvalidUpdate."""
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise InvalidUpdate("not a Telegram update: no integer update_id")
    try:
        return Update.model_validate(data, context={"bot": bot})
    except ValidationError as err:
        first_error = err
    repaired = copy.deepcopy(data)
    for _ in range(_MAX_ROUNDS):
        try:
            update = Update.model_validate(repaired, context={"bot": bot})
        except ValidationError as err:
            if not _fill(repaired, err):
                break
            continue
        log.debug("update %s: filled fields missing from an older payload", data["update_id"])
        return update
    raise InvalidUpdate(_summary(first_error)) from first_error


def _fill(data: dict[str, Any], err: ValidationError) -> bool:
    """Fills what `err` reports missing (probing with None to learn the type pydantic
    wants); answers whether anything changed."""
    changed = False
    for error in err.errors():
        location = error["loc"]
        if error["type"] == "missing":
            changed |= _set(data, location, None, only_if_absent=True)
        elif error["input"] is None and error["type"] in _PLACEHOLDERS:
            changed |= _set(data, location, copy.copy(_PLACEHOLDERS[error["type"]]))
    return changed


def _set(
    data: Any, location: tuple[int | str, ...], value: object, *, only_if_absent: bool = False
) -> bool:
    target = data
    for step in location[:-1]:
        if isinstance(target, dict) and isinstance(step, str) and step not in target:
            # A tagged union's branch name (`old_chat_member.kicked.until_date`): the
            # location goes on inside the same object.
            continue
        try:
            target = target[step]
        except (KeyError, IndexError, TypeError):
            # The location names a branch of a union type that is not in the input.
            return False
    last = location[-1]
    if not isinstance(target, dict) or not isinstance(last, str):
        return False
    if only_if_absent and last in target:
        return False
    if not only_if_absent and target.get(last, value) is not None:
        return False
    target[last] = value
    return True


def _summary(err: ValidationError) -> str:
    problems = [f"{'.'.join(str(step) for step in e['loc'])}: {e['msg']}" for e in err.errors()[:3]]
    more = err.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
