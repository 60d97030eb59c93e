"""The aiohttp application factory: wiring only. Every resource with a lifetime is opened
in a cleanup context, so it is closed if and only if it was opened."""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from connectors.registry import REGISTRY
from inbox.tasks import TaskDueNotifier
from timeline.attachment_fetch import AttachmentFetcher
from timeline.bus_follow import follow
from timeline.crypto import SecretBox
from timeline.db import create_engine, read_session_factory, session_factory
from timeline.dispatcher import Dispatcher
from timeline.events import Event, create_bus
from timeline.ingest import Ingestor
from web.api import (
    accounts,
    canned,
    channel_admin,
    channels,
    contact_merge,
    contacts,
    conversations,
    crm,
    directory,
    forms,
    invitations,
    metrics,
    notifications,
    outgoing_webhooks,
    personal_data,
    pipeline,
    report_series,
    reports,
    routing,
    search,
    segments,
    thread,
    workflow,
)
from web.auth import auth_middleware
from web.background import background
from web.errors import error_middleware
from web.health import healthz
from web.keys import (
    BUS_KEY,
    CONNECTORS_KEY,
    DISPATCHER_KEY,
    ENGINE_KEY,
    INGESTOR_KEY,
    OPENAPI_KEY,
    READ_SESSIONS_KEY,
    RUNTIME_KEY,
    SECRET_BOX_KEY,
    SESSIONS_KEY,
    SETTINGS_KEY,
)
from web.openapi import add_routes, build_document
from web.openapi import routes as openapi_routes
from web.public_forms import add_public_routes
from web.public_forms.retention import PURGE_INTERVAL_SECONDS, IpRetention
from web.realtime import add_realtime_routes, realtime
from web.routing_loop import routing_engine
from web.runtime import ChannelRuntime
from web.sessions import account_state
from web.settings import Settings
from web.sla_loop import sla_watch
from web.snooze_loop import snooze_waker
from web.ui import add_ui
from web.webhook_loop import webhook_delivery

logger = logging.getLogger(__name__)

ROLES = frozenset({"web", "worker"})
API_TITLE = "Switchboard"
API_VERSION = "1"
# How long a stopping worker waits, beyond the send timeout, for the sends in flight to
# be recorded before it cancels them (a cancelled send's outcome becomes unknown).
DISPATCHER_STOP_MARGIN_SECONDS = 10.0
# How long a stopping worker waits for a round of due-task notices to finish.
TASK_DUE_STOP_SECONDS = 10.0


def create_app(settings: Settings, *, roles: frozenset[str] = ROLES) -> web.Application:
    """The application for `roles`: "web" serves HTTP, "worker" also sends the outbox."""
    if unknown := roles - ROLES:
        raise ValueError(f"unknown roles {sorted(unknown)}; known roles: {sorted(ROLES)}")
    app = web.Application(
        client_max_size=settings.max_request_bytes,
        middlewares=[error_middleware, auth_middleware],
    )
    app[SETTINGS_KEY] = settings
    app[SECRET_BOX_KEY] = SecretBox(settings.resolved_secret_key())
    app[CONNECTORS_KEY] = {}
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_bus)
    app.cleanup_ctx.append(account_state)
    app.cleanup_ctx.append(_ingestor)
    app.cleanup_ctx.append(functools.partial(_runtime, receive="worker" in roles))
    if "worker" in roles:
        app.cleanup_ctx.append(_dispatcher)
        app.cleanup_ctx.append(_attachment_fetcher)
        app.cleanup_ctx.append(_task_due_notifier)
        app.cleanup_ctx.append(snooze_waker)
        app.cleanup_ctx.append(sla_watch)
        app.cleanup_ctx.append(webhook_delivery)
        app.cleanup_ctx.append(_ip_retention)
        app.cleanup_ctx.append(routing_engine)
    if "web" in roles:
        app.cleanup_ctx.append(realtime)
        add_realtime_routes(app)
        add_ui(app)

    app.router.add_get("/healthz", healthz)
    # Channels come and go while the app runs, so their webhooks are served by one route
    # that asks the runtime which connector serves the path (web/runtime.py).
    app.router.add_route("*", "/webhooks/{path:.*}", _webhook)
    add_public_routes(app)
    operations = add_routes(
        app,
        [
            channels.routes,
            contacts.routes,
            crm.routes,
            segments.routes,
            contact_merge.routes,
            personal_data.routes,
            conversations.routes,
            forms.routes,
            accounts.routes,
            workflow.routes,
            metrics.routes,
            outgoing_webhooks.routes,
            reports.routes,
            routing.routes,
            canned.routes,
            notifications.routes,
            search.routes,
            thread.routes,
            directory.routes,
            channel_admin.routes,
            invitations.routes,
            report_series.routes,
            pipeline.routes,
            openapi_routes,
        ],
    )
    app[OPENAPI_KEY] = build_document(
        operations,
        title=API_TITLE,
        version=API_VERSION,
        extra_models=[spec.config for spec in REGISTRY.values()],
    )
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[SETTINGS_KEY].database_url)
    app[ENGINE_KEY] = engine
    app[SESSIONS_KEY] = session_factory(engine)
    app[READ_SESSIONS_KEY] = read_session_factory(engine)
    yield
    await engine.dispose()


async def _bus(app: web.Application) -> AsyncIterator[None]:
    bus = create_bus(app[SETTINGS_KEY].redis_url)
    app[BUS_KEY] = bus
    yield
    await bus.close()


async def _ingestor(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    ingestor = Ingestor(
        app[SESSIONS_KEY],
        app[BUS_KEY],
        reopen_window=timedelta(hours=settings.reopen_window_hours),
        data_dir=settings.data_dir,
        secret_box=app[SECRET_BOX_KEY],
    )
    await ingestor.start()
    app[INGESTOR_KEY] = ingestor
    yield
    await ingestor.close()


async def _runtime(app: web.Application, *, receive: bool) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    runtime = ChannelRuntime(
        sessions=app[SESSIONS_KEY],
        box=app[SECRET_BOX_KEY],
        ingestor=app[INGESTOR_KEY],
        bus=app[BUS_KEY],
        connectors=app[CONNECTORS_KEY],
        receive=receive,
        holder=_process_name(),
        lease_ttl=timedelta(seconds=settings.connector_lease_seconds),
        reload_seconds=settings.channel_reload_seconds,
        backoff_cap_seconds=settings.connector_backoff_cap_seconds,
        public_url=settings.base_url,
        # Replies parked while their channel was not running go out as soon as it runs.
        on_change=lambda: app[DISPATCHER_KEY].wake() if DISPATCHER_KEY in app else None,
    )
    app[RUNTIME_KEY] = runtime
    # The first read happens before the app serves, so webhooks and sends find their
    # connectors from the first request on; with the database down, the app still starts
    # (its health check says so) and the periodic re-read catches up.
    await runtime.reload_logged()
    # It stops at once between events; a reload in progress is let finish.
    async with background("channel-runtime", runtime.run, grace=None):
        yield
    await runtime.close()


async def _webhook(request: web.Request) -> web.StreamResponse:
    return await request.app[RUNTIME_KEY].handle_webhook(request)


def _process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    dispatcher = Dispatcher(
        app[SESSIONS_KEY],
        app[CONNECTORS_KEY].get,
        app[BUS_KEY],
        worker_id=_process_name(),
        data_dir=settings.data_dir,
        retry_period=timedelta(hours=settings.outbox_retry_hours),
        lease_seconds=settings.outbox_lease_seconds,
        send_timeout=settings.outbox_send_timeout_seconds,
        concurrency=settings.outbox_concurrency,
    )
    app[DISPATCHER_KEY] = dispatcher
    # The dispatcher finishes the sends in flight (each within the send timeout) and
    # records them before it returns; one cut short keeps its lease, and the outbox
    # settles it after a restart.
    grace = settings.outbox_send_timeout_seconds + DISPATCHER_STOP_MARGIN_SECONDS
    # A reply queued by a web process reaches this worker through the bus, so it is sent
    # at once rather than at the next idle poll (which still catches a lost event).
    wake = functools.partial(_wake_for_replies, dispatcher)
    async with (
        background(
            "outbox-dispatcher",
            lambda stop: dispatcher.run(stop, settings.outbox_poll_seconds),
            grace=grace,
        ),
        background("outbox-wake", lambda stop: follow(app[BUS_KEY], stop, wake)),
    ):
        yield


def _wake_for_replies(dispatcher: Dispatcher, event: Event) -> None:
    data = event.data
    outbound = event.type == "message.created" and data.get("direction") == "out"
    # An agent's retry of a failed reply puts it back in the queue.
    retried = event.type == "message.delivery" and data.get("state") == "queued"
    if (outbound and not data.get("private")) or retried:
        dispatcher.wake()


async def _attachment_fetcher(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    connectors = app[CONNECTORS_KEY]
    fetcher = AttachmentFetcher(
        app[SESSIONS_KEY],
        lambda: list(connectors),
        connectors.get,
        app[BUS_KEY],
        data_dir=settings.data_dir,
        max_attempts=settings.attachment_fetch_attempts,
    )
    interval = settings.attachment_fetch_interval_seconds
    # A fetch in flight is abandoned: its claim lapses and the file is tried again later.
    async with background("attachment-fetcher", lambda stop: fetcher.run(stop, interval)):
        yield


async def _task_due_notifier(app: web.Application) -> AsyncIterator[None]:
    notifier = TaskDueNotifier(app[SESSIONS_KEY], app[BUS_KEY])
    interval = app[SETTINGS_KEY].task_due_interval_seconds
    # A round is a few short statements: let it finish, so a committed notice is also
    # published. One stuck on the database is cancelled; its tasks stay due.
    async with background(
        "task-due-notifier",
        lambda stop: notifier.run(stop, interval),
        grace=TASK_DUE_STOP_SECONDS,
    ):
        yield


async def _ip_retention(app: web.Application) -> AsyncIterator[None]:
    retention = IpRetention(app[SESSIONS_KEY], app[SECRET_BOX_KEY])
    # A round is idempotent: one cut short is simply done again by the next worker round.
    async with background(
        "form-ip-retention", lambda stop: retention.run(stop, PURGE_INTERVAL_SECONDS)
    ):
        yield
