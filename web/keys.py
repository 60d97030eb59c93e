"""Every piece of application and request state, each behind one typed key."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.base import Connector
from connectors.types import ChannelId
from inbox.models import User
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.dispatcher import Dispatcher
from timeline.events import EventBus
from timeline.ingest import Ingestor
from web.runtime import ChannelRuntime
from web.settings import Settings

SETTINGS_KEY = web.AppKey("settings", Settings)
SECRET_BOX_KEY = web.AppKey("secret_box", SecretBox)
ENGINE_KEY: web.AppKey[AsyncEngine] = web.AppKey("engine")
SESSIONS_KEY: web.AppKey[SessionFactory] = web.AppKey("sessions")
# Sessions that only read (GET handlers, health): on SQLite they never wait for the write lock.
READ_SESSIONS_KEY: web.AppKey[SessionFactory] = web.AppKey("read_sessions")
BUS_KEY: web.AppKey[EventBus] = web.AppKey("bus")
INGESTOR_KEY: web.AppKey[Ingestor] = web.AppKey("ingestor")
# Present only in processes that run the "worker" role.
DISPATCHER_KEY: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
# The connectors started in this process, by channel; the dispatcher sends through them.
CONNECTORS_KEY: web.AppKey[dict[ChannelId, Connector]] = web.AppKey("connectors")
# Builds and runs the connectors of the active channels (web/runtime.py).
RUNTIME_KEY: web.AppKey[ChannelRuntime] = web.AppKey("runtime")
# The OpenAPI document, built once from the declared routes.
OPENAPI_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi_document")

# The user a bearer token authenticated (set by the auth middleware on /api/ requests).
USER_KEY = web.RequestKey("user", User)
