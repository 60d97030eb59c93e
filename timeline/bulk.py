"""Many-row INSERTs in one statement whatever the number of rows.

On PostgreSQL the rows travel as one array per column through ``unnest``: a batch of any
size is the same statement text, prepared once per connection, and no parameter is
processed row by row in Python (what bounded ingestion: see bench/RESULTS.md). SQLite
takes SQLAlchemy's multi-row VALUES ("insertmanyvalues"), which it is quick at.
Both honour an ON CONFLICT target (with a partial index's predicate) and RETURNING.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Table,
    TypeDecorator,
    Uuid,
    insert,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

Rows = Sequence[Mapping[str, Any]]
_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    rows: Rows,
    *,
    conflict: Sequence[str] = (),
    conflict_where: str | None = None,
    returning: Sequence[str] = (),
) -> list[Any]:
    """Insert `rows` (dicts with the same keys); with `conflict`, conflicting rows are
    skipped (ON CONFLICT DO NOTHING). Returns the `returning` columns of inserted rows."""
    if not rows:
        return []
    columns = tuple(rows[0])
    if conn.dialect.name == "postgresql":
        sql = _unnest_insert(table, columns, tuple(conflict), conflict_where, tuple(returning))
        arrays = tuple(_array(table.c[name].type, [row[name] for row in rows]) for name in columns)
        result = await conn.exec_driver_sql(sql, arrays)
        return list(result.all()) if returning else []
    dialect_insert = sqlite.insert(table)
    if conflict:
        dialect_insert = dialect_insert.on_conflict_do_nothing(
            index_elements=list(conflict),
            index_where=text(conflict_where) if conflict_where else None,
        )
    # RETURNING is what makes SQLAlchemy batch executemany into multi-row VALUES.
    wanted = [table.c[name] for name in returning] or [table.c[next(iter(table.primary_key)).name]]
    statement = (dialect_insert if conflict else insert(table)).returning(*wanted)
    result = await conn.execute(statement, list(rows))
    return list(result.all()) if returning else []


@functools.cache
def _unnest_insert(
    table: Table,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    conflict_where: str | None,
    returning: tuple[str, ...],
) -> str:
    quote = _PG.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    arrays = ", ".join(
        f"${n}::{_pg_type(table.c[name].type)[0]}[]" for n, name in enumerate(columns, 1)
    )
    selected = ", ".join(f"{quote(name)}{_pg_type(table.c[name].type)[1]}" for name in columns)
    sql = (
        f"INSERT INTO {quote(table.name)} ({names})"
        f" SELECT {selected} FROM unnest({arrays}) AS t({names})"
    )
    if conflict:
        sql += f" ON CONFLICT ({', '.join(quote(c) for c in conflict)})"
        if conflict_where:
            sql += f" WHERE {conflict_where}"
        sql += " DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(quote(c) for c in returning)
    return sql


def _base(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    return type_.impl if isinstance(type_, TypeDecorator) else type_  # type: ignore[return-value]


def _pg_type(type_: TypeEngine[Any]) -> tuple[str, str]:
    """The array element type a column's values travel as, and the cast back to its type.

    Strings travel as text, never as varchar(n): an explicit cast to varchar(n) would
    silently cut an over-long value, where the INSERT's own assignment refuses it.
    """
    base = _base(type_)
    if isinstance(base, Uuid):
        return "uuid", ""
    if isinstance(base, DateTime):
        return ("timestamptz" if base.timezone else "timestamp"), ""
    if isinstance(base, Boolean):
        return "bool", ""
    if isinstance(base, Integer):
        return "int8", ""
    if isinstance(base, LargeBinary):
        return "bytea", ""
    if isinstance(base, JSON):
        return "text", "::json"
    if isinstance(base, String):
        return "text", ""
    raise TypeError(f"no array type for {type_!r}")


def _array(type_: TypeEngine[Any], values: list[Any]) -> list[Any]:
    if isinstance(_base(type_), JSON):
        return [None if value is None else json.dumps(value) for value in values]
    return values
