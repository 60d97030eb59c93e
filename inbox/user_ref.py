"""A filter value naming a user, or "none" for rows that have no user (unowned,
unassigned)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BeforeValidator


def _user_id_or_none(value: object) -> object:
    # One clear message instead of one error per member of the union.
    if isinstance(value, str) and value != "none":
        try:
            return uuid.UUID(value)
        except ValueError as err:
            raise ValueError("must be a user id (UUID) or 'none'") from err
    return value


UserIdOrNone = Annotated[uuid.UUID | Literal["none"], BeforeValidator(_user_id_or_none)]
