"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

Two kinds of session share one engine (one pool):

- `session_factory`: sessions that may write. On SQLite their transactions begin with
  ``BEGIN IMMEDIATE``, taking the database's one write lock up front, so writers
  serialize and a transaction that reads then writes never fails to upgrade its lock.
- `read_session_factory`: sessions that only read. On SQLite their transactions begin
  with a plain (deferred) ``BEGIN``: in WAL mode they read a snapshot beside a writer
  instead of queueing behind it, so API reads and health probes answer during a long
  write (a channel delete). They cannot write: SQLite runs them with
  ``PRAGMA query_only``, PostgreSQL as ``READ ONLY`` transactions, so a write slipped
  into a read path fails at once on both databases.

`NO_WAIT` is an execution option for a write transaction that would rather fail than
queue for SQLite's write lock (recording something optional, such as when a token was
last used); `is_busy` recognizes that failure.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SessionFactory = async_sessionmaker[AsyncSession]

# Execution options read by the SQLite "begin" listener (engine- or connection-level).
READ_ONLY = "switchboard_read_only"
NO_WAIT = "switchboard_no_wait"

# How long a SQLite writer waits for the write lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(engine: AsyncEngine) -> bool:
    """True for the embedded SQLite database."""
    return engine.dialect.name == "sqlite"


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; emit it ourselves so a
        # transaction that reads then writes takes the write lock up front (no upgrade
        # deadlocks between concurrent writers), and only read-only ones defer it.
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """A view of `engine` (same pool) whose transactions only read; see the module docstring."""
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    return engine.execution_options(**options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # isolation_level=None lets the "begin" listener issue BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    options = connection.get_execution_options()
    read_only = bool(options.get(READ_ONLY))
    # query_only makes a write in a read session fail at once, as READ ONLY does on
    # PostgreSQL, rather than work until a writer contends and then fail as "locked".
    # Connections are pooled, so the setting follows each checkout; `info` remembers it.
    if connection.info.get(READ_ONLY, False) != read_only:
        connection.exec_driver_sql(f"PRAGMA query_only={int(read_only)}")
        connection.info[READ_ONLY] = read_only
    if read_only:
        # Deferred: takes no lock until it reads, and then only a WAL read snapshot.
        connection.exec_driver_sql("BEGIN")
    elif options.get(NO_WAIT):
        connection.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            # Only this BEGIN skips the queue; the connection goes back to the pool as it was.
            connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# PostgreSQL: deadlock_detected, serialization_failure. A fresh attempt settles them.
_CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
# Connection exceptions, insufficient resources, operator intervention (shutdown).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")


def sqlstate(err: DBAPIError) -> str | None:
    """The SQLSTATE of a PostgreSQL error (None for SQLite and non-server errors)."""
    orig = err.orig
    code = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return code if isinstance(code, str) else None


def is_conflict(err: Exception) -> bool:
    """A deadlock or serialization failure: the same transaction may succeed if retried."""
    return isinstance(err, DBAPIError) and sqlstate(err) in _CONFLICT_SQLSTATES


def is_unavailable(err: Exception) -> bool:
    """The database could not take anything right now, whatever was asked of it.

    Connection trouble, resources, shutdown, SQLite's lock timeout: worth retrying later,
    unlike a refusal of the values themselves (too long, NUL, a constraint).
    """
    if isinstance(err, OSError | OperationalError | InterfaceError):
        return True  # TimeoutError and ConnectionError are OSErrors
    if isinstance(err, DBAPIError):
        if err.connection_invalidated:
            return True
        state = sqlstate(err)
        return state is not None and state.startswith(_UNAVAILABLE_SQLSTATE_CLASSES)
    return False


def is_busy(err: DBAPIError) -> bool:
    """True when SQLite refused a lock another transaction holds (SQLITE_BUSY)."""
    return "database is locked" in str(err.orig)


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that may write (and keep loaded objects usable after commit)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that only read: they never wait for SQLite's write lock."""
    return async_sessionmaker(read_only(engine), expire_on_commit=False)
