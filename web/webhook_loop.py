"""Delivers outgoing webhooks with retries (issue 9): the worker role's loop.

Each round fans new timeline events out to the subscriptions (inbox/webhook_fanout.py),
then posts what is due (inbox/webhook_delivery.py). Rounds run every
`POLL_SECONDS`, and sooner when the bus says something happened: the bus only wakes the
loop, the timeline_events table is the source, so a lost bus message delays nothing by
more than one poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from inbox.webhook_delivery import WebhookSender
from inbox.webhook_fanout import WebhookFanout
from timeline.events import EventBus, next_event
from web.background import background
from web.keys import BUS_KEY, READ_SESSIONS_KEY, SECRET_BOX_KEY, SESSIONS_KEY, SETTINGS_KEY

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0
# Rounds woken by the bus are spaced at least this much: under a burst of events one
# round picks up many, instead of one round per event.
MIN_GAP_SECONDS = 0.2
# How long a stopping worker lets the posts in flight finish (each has its timeout).
STOP_MARGIN_SECONDS = 5.0


async def run(
    fanout: WebhookFanout,
    sender: WebhookSender,
    bus: EventBus,
    stop: asyncio.Event,
    interval: float = POLL_SECONDS,
) -> None:
    """Fan out and deliver until `stop` is set; a failing round is logged and retried."""
    async with bus.subscribe() as events:
        while not stop.is_set():
            busy = False
            try:
                await fanout.run_once()
                # A full batch means more may be due right now.
                busy = await sender.run_once() >= sender.concurrency
            except Exception:
                logger.exception("webhook round failed; trying again")
            if stop.is_set():
                break
            if busy:
                await asyncio.sleep(0)
                continue
            await next_event(events, stop, interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MIN_GAP_SECONDS)


async def webhook_delivery(app: web.Application) -> AsyncIterator[None]:
    """The worker role's webhook loop, run for the app's lifetime."""
    settings = app[SETTINGS_KEY]
    fanout = WebhookFanout(app[SESSIONS_KEY], read_sessions=app[READ_SESSIONS_KEY])
    sender = WebhookSender(
        app[SESSIONS_KEY],
        app[SECRET_BOX_KEY],
        # Private and loopback receivers only outside production (SSRF guard).
        allow_private=settings.env != "production",
        concurrency=settings.webhook_concurrency,
        timeout=settings.webhook_timeout_seconds,
        retry_period=timedelta(hours=settings.webhook_retry_hours),
        max_attempts=settings.webhook_max_attempts,
    )
    poll = settings.webhook_poll_seconds
    # Posts in flight finish within their timeout and are recorded; one cut short keeps
    # its claim, which lapses, and the delivery is posted again (receivers dedupe).
    async with background(
        "webhook-delivery",
        lambda stop: run(fanout, sender, app[BUS_KEY], stop, poll),
        grace=sender.timeout + STOP_MARGIN_SECONDS,
    ):
        yield
    await sender.close()
