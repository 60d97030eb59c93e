"""`GET /healthz` reports the database and Redis, and answers 503 when one is unreachable."""

from __future__ import annotations

from pathlib import Path

from tests.web.conftest import SECRET_KEY, Client, MakeClient
from web.settings import Settings


async def test_healthy_without_redis(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "redis": "not configured"}


async def test_healthy_with_redis(
    make_client: MakeClient, settings: Settings, redis_url: str
) -> None:
    client = await make_client(settings.model_copy(update={"redis_url": redis_url}))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_unreachable_redis_is_503(make_client: MakeClient, settings: Settings) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    client = await make_client(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    response = await client.get("/healthz")
    assert response.status == 503
    assert await response.json() == {
        "status": "unavailable",
        "database": "ok",
        "redis": "unreachable",
    }


async def test_unreachable_database_is_503(make_client: MakeClient, tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://switchboard:secret@127.0.0.1:1/switchboard",
        redis_url=None,
        data_dir=tmp_path,
        secret_key=SECRET_KEY,
    )
    client = await make_client(settings)
    response = await client.get("/healthz")
    assert response.status == 503
    assert await response.json() == {
        "status": "unavailable",
        "database": "unreachable",
        "redis": "not configured",
    }
