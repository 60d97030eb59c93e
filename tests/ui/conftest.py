"""Fixtures of the browser tests: a live server on a fresh database, users, one Chromium
for the package, a browser context per test whose console errors and CSP violations fail
the test. See tests/ui/README.md."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from inbox.models import Role, User
from migrations.upgrade import upgrade
from tests.services import free_port
from tests.ui.harness import CHROMIUM, CHROMIUM_ARGS, BrowserProblems, LiveServer, in_thread
from timeline.db import create_engine
from web.settings import Settings

SECRET_KEY = "ui-test-secret-key-which-is-long-enough-42"
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="package")
def browser(sqlite_template: Path) -> Iterator[Browser]:
    """One headless Chromium for every browser test of the package.

    Playwright's sync API keeps an event loop running in this thread, so nothing after
    this may call asyncio.run here: the SQLite template is made before, and other
    asyncio work runs in threads of its own (`in_thread`) or on the server's loop."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def ui_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh migrated database: SQLite, or PostgreSQL with
    `@pytest.mark.parametrize("ui_database_url", ["postgresql"], indirect=True)`."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "switchboard.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server_url: str = request.getfixturevalue("postgres_url")
    name = f"ui_{uuid.uuid4().hex[:16]}"
    url = server_url.rsplit("/", 1)[0] + "/" + name
    dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create() -> None:
        await run(f'CREATE DATABASE "{name}"')
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    in_thread(lambda: asyncio.run(create()))
    yield url
    in_thread(lambda: asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


@pytest.fixture
def server_settings() -> dict[str, object]:
    """Settings a test overrides (e.g. login limits) before the server starts."""
    return {}


@pytest.fixture
def live_server(
    ui_database_url: str, tmp_path: Path, server_settings: dict[str, object]
) -> Iterator[LiveServer]:
    """The real app (web and worker roles) on 127.0.0.1, on the fresh database."""
    port = free_port()
    values: dict[str, object] = {
        "database_url": ui_database_url,
        "redis_url": None,
        "data_dir": tmp_path / "data",
        "secret_key": SECRET_KEY,
        "host": "127.0.0.1",
        "port": port,
        "public_url": f"http://127.0.0.1:{port}",
        **server_settings,
    }
    server = LiveServer(Settings(**values), port)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def problems() -> BrowserProblems:
    """What went wrong in the browser; a test may allow expected console errors."""
    return BrowserProblems()


@pytest.fixture
def context(
    browser: Browser, live_server: LiveServer, problems: BrowserProblems
) -> Iterator[BrowserContext]:
    """A fresh browser profile at 1280x800 on the live server. At the end, no console
    error, no uncaught exception and no CSP violation may have happened."""
    ctx = browser.new_context(base_url=live_server.base_url, viewport=DESKTOP)  # type: ignore[arg-type]
    ctx.set_default_timeout(15_000)
    problems.watch(ctx)
    try:
        yield ctx
    finally:
        ctx.close()
    assert problems.csp == [], f"CSP violations: {problems.csp}"
    assert problems.unexpected() == [], f"browser errors: {problems.unexpected()}"


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab of the test's context."""
    return context.new_page()


@pytest.fixture
def agent(live_server: LiveServer) -> User:
    """An agent with the password harness.PASSWORD."""
    return live_server.user(Role.AGENT, name="Ada Agent")


@pytest.fixture
def signed_in(live_server: LiveServer, context: BrowserContext, agent: User) -> User:
    """The `agent`, signed in in the test's browser context."""
    live_server.sign_in(context, agent)
    return agent
