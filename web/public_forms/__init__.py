"""The public web form endpoints under /forms/: no API token, open to any visitor.

| route | what |
|---|---|
| GET /forms/{key} | the hosted form page (works without JavaScript) |
| POST /forms/{key} | a submission: urlencoded, multipart or JSON (submit.py) |
| OPTIONS /forms/{key} | CORS preflight for the form's allowed origins (cors.py) |
| GET /forms/{key}/thanks | the page a plain form post is redirected to after success |
| GET /forms/{key}/form.json | the form's description with a fresh token, for embed.js |
| OPTIONS /forms/{key}/form.json | CORS preflight for it |
| GET /forms/{key}/embed.js | the embeddable script |

An unknown or inactive form is 404; a form whose channel is paused is 503 with
Retry-After (it comes back when the channel is resumed, so "later" is the truth).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from web.keys import BUS_KEY, READ_SESSIONS_KEY, SECRET_BOX_KEY, SETTINGS_KEY
from web.public_forms import pages, submit
from web.public_forms.keys import FORM_LOOKUP_KEY, THROTTLE_KEY, TOKEN_SECRET_KEY
from web.public_forms.lookup import FormLookup
from web.public_forms.throttle import MemoryThrottle, RedisThrottle
from web.public_forms.token import token_secret


def add_public_routes(app: web.Application) -> None:
    """Add the public /forms/{key} routes to `app`, and the state they use."""
    app[TOKEN_SECRET_KEY] = token_secret(app[SETTINGS_KEY].resolved_secret_key())
    app.cleanup_ctx.append(_form_lookup)
    app.cleanup_ctx.append(_throttle)
    router = app.router
    router.add_get("/forms/{key}", pages.form_page, allow_head=False)
    router.add_post("/forms/{key}", submit.submit)
    router.add_route("OPTIONS", "/forms/{key}", pages.submit_preflight)
    router.add_get("/forms/{key}/thanks", pages.thanks_page, allow_head=False)
    router.add_get("/forms/{key}/form.json", pages.description, allow_head=False)
    router.add_route("OPTIONS", "/forms/{key}/form.json", pages.description_preflight)
    router.add_get("/forms/{key}/embed.js", pages.script)


async def _form_lookup(app: web.Application) -> AsyncIterator[None]:
    # Read sessions: loading a form never waits behind a write on SQLite.
    lookup = FormLookup(app[READ_SESSIONS_KEY], app[SECRET_BOX_KEY])
    app[FORM_LOOKUP_KEY] = lookup
    stop = asyncio.Event()
    task = asyncio.create_task(lookup.follow(app[BUS_KEY], stop), name="form-cache")
    yield
    stop.set()
    await asyncio.gather(task, return_exceptions=True)


async def _throttle(app: web.Application) -> AsyncIterator[None]:
    redis_url = app[SETTINGS_KEY].redis_url
    if redis_url is None:
        app[THROTTLE_KEY] = MemoryThrottle()
        yield
        return
    client = aioredis.from_url(redis_url)
    app[THROTTLE_KEY] = RedisThrottle(client)
    yield
    await client.aclose()
