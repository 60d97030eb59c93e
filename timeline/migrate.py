"""Applies the Alembic migrations to a database (the `switchboard migrate` command)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the installed `migrations` package."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database behind `engine` to `revision` (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)
