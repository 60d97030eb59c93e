"""The REST API under /api/v1, and what its handlers share: ids in paths, keyset paging,
events published after commit.

Handlers that only read open `READ_SESSIONS_KEY` sessions, which never wait for SQLite's
write lock (timeline/db.py); handlers that write open `SESSIONS_KEY` sessions.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import ColumnElement, SQLColumnExpression, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from timeline.events import Event, publish_committed
from web.api.schemas import Keyset
from web.errors import not_found
from web.keys import BUS_KEY

logger = logging.getLogger(__name__)

R = TypeVar("R")
M = TypeVar("M")


def path_id(request: web.Request, name: str = "id") -> uuid.UUID:
    """A UUID from the path; a malformed one names nothing, so it is a 404."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError as err:
        raise not_found() from err


def after(
    at: SQLColumnExpression[datetime],
    id_: SQLColumnExpression[uuid.UUID],
    keyset: Keyset | None,
    *,
    descending: bool,
) -> ColumnElement[bool] | None:
    """The rows strictly after `keyset` in (at, id) order; None on the first page."""
    if keyset is None:
        return None
    if descending:
        return or_(at < keyset.at, and_(at == keyset.at, id_ < keyset.id))
    return or_(at > keyset.at, and_(at == keyset.at, id_ > keyset.id))


def cut(rows: Sequence[R], limit: int, key: Callable[[R], Keyset]) -> tuple[list[R], str | None]:
    """A page from `limit + 1` fetched rows: the extra row only tells that more exist."""
    if len(rows) <= limit:
        return list(rows), None
    page = list(rows[:limit])
    return page, key(page[-1]).encode()


async def publish(request: web.Request, *events: Event) -> None:
    """Publish events after a commit (a bus failure is logged, not answered as an error)."""
    await publish_committed(request.app[BUS_KEY], events)


async def children_by_parent(
    session: AsyncSession,
    model: type[M],
    parent: InstrumentedAttribute[uuid.UUID],
    parent_ids: Sequence[uuid.UUID],
    *order_by: Any,
) -> defaultdict[uuid.UUID, list[M]]:
    """The rows of `model` for many parents in one query (no N+1), grouped by parent id."""
    grouped: defaultdict[uuid.UUID, list[M]] = defaultdict(list)
    if parent_ids:
        statement = select(model).where(parent.in_(parent_ids)).order_by(*order_by)
        for row in await session.scalars(statement):
            grouped[getattr(row, parent.key)].append(row)
    return grouped
