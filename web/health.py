"""`GET /healthz`: liveness, and whether the database and Redis answer.

The database probe runs in a read-only session, so on SQLite it answers beside a long
write (a channel delete) instead of queueing for the write lock and timing out.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from web.keys import BUS_KEY, READ_SESSIONS_KEY, SETTINGS_KEY

logger = logging.getLogger(__name__)

# A probe that hangs (a blackholed host) must not hang the load balancer's check.
PROBE_TIMEOUT = 5.0


async def healthz(request: web.Request) -> web.Response:
    """200 with every part "ok" (Redis may be "not configured"); 503 naming what failed."""
    database = "ok" if await _database_answers(request.app) else "unreachable"
    if request.app[SETTINGS_KEY].redis_url is None:
        redis = "not configured"
    else:
        redis = "ok" if await _bus_answers(request.app) else "unreachable"
    healthy = database == "ok" and redis in ("ok", "not configured")
    return web.json_response(
        {"status": "ok" if healthy else "unavailable", "database": database, "redis": redis},
        status=200 if healthy else 503,
    )


async def _database_answers(app: web.Application) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT), app[READ_SESSIONS_KEY]() as session:
            await session.execute(text("SELECT 1"))
    except Exception as err:
        # Any failure means "unreachable" here; the reason goes to the log, not the probe.
        logger.warning("health check: database unreachable: %s", err)
        return False
    return True


async def _bus_answers(app: web.Application) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            return await app[BUS_KEY].ping()
    except TimeoutError:
        logger.warning("health check: redis did not answer within %ss", PROBE_TIMEOUT)
        return False
