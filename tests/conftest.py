"""Shared fixtures: real PostgreSQL and Redis, and every database/bus test run on both."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from migrations.upgrade import upgrade
from tests.services import Postgres, Redis, free_port
from timeline.db import create_engine
from timeline.events import EventBus, InProcessBus, RedisBus

TEMPLATE_DB = "switchboard_template"


@pytest.fixture(scope="session")
def service_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="switchboard-test-"))
    root.chmod(0o755)  # the postgres user must reach its data directory inside
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(service_root: Path) -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database (started here unless given)."""
    given = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    server = Postgres(service_root / "postgres", free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(service_root: Path) -> Iterator[str]:
    """URL of a Redis server (started here unless given), on a database of this test
    process's own when several share the server (pytest-xdist): rate limits, sessions and
    the event bus then stay apart."""
    given = os.environ.get("SWITCHBOARD_TEST_REDIS_URL")
    if given:
        yield _own_database(given)
        return
    server = Redis(service_root / "redis", free_port())
    server.start()
    try:
        yield _own_database(server.url)
    finally:
        server.stop()


def _own_database(url: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"… under xdist
    if not worker.startswith("gw"):
        return url
    return f"{url.rsplit('/', 1)[0]}/{int(worker[2:]) % 15 + 1}"


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + "/" + database
    return dsn


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_template(postgres_url: str) -> Iterator[str]:
    """A migrated PostgreSQL database that each test clones (CREATE DATABASE ... TEMPLATE).

    Named for this process: two test runs sharing one server (two developers, or parallel
    helpers) would otherwise drop or clone each other's template mid-run."""
    name = f"{TEMPLATE_DB}_{os.getpid()}"

    async def run(*statements: str) -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(postgres_url))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def build() -> None:
        await run(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
        await _migrate(postgres_url.rsplit("/", 1)[0] + "/" + name)

    asyncio.run(build())
    yield name
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(service_root: Path) -> Path:
    """A migrated SQLite file that each test copies."""
    path = service_root / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database: every database test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "switchboard.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server_url: str = request.getfixturevalue("postgres_url")
    template_db: str = request.getfixturevalue("pg_template")
    name = f"test_{uuid.uuid4().hex[:16]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(server_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    yield server_url.rsplit("/", 1)[0] + "/" + name
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the fresh test database."""
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    """Every bus test runs on the in-process bus and on Redis pub/sub."""
    impl: EventBus
    if request.param == "memory":
        impl = InProcessBus()
    else:
        url: str = request.getfixturevalue("redis_url")
        impl = RedisBus(url, topic=f"test:{uuid.uuid4().hex}")
    yield impl
    await impl.close()
