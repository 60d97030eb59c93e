"""Fixtures for the web app: the real application on a fresh database (SQLite and
PostgreSQL), users with bearer tokens, and rows made directly with the ORM."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from connectors.registry import spec_for
from inbox.account_models import ChannelMember
from inbox.models import ApiToken, Role, User
from tests.connectors.telegram.bot_api_standin import BotApiStandIn, running
from timeline.db import SessionFactory
from timeline.models import (
    Attachment,
    Channel,
    Contact,
    Conversation,
    Identity,
    Message,
    TimelineEvent,
)
from web.app import create_app
from web.keys import SECRET_BOX_KEY, SESSIONS_KEY
from web.settings import Settings

SECRET_KEY = "test-secret-key-which-is-long-enough-1234"
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[Settings], Awaitable[Client]]

TELEGRAM_TOKEN = "123456:" + "AbCdEfGhIj" * 4

# One valid configuration per channel kind, with distinctive secrets to look for.
VALID_CONFIGS: dict[str, dict[str, Any]] = {
    "email": {
        "imap_host": "imap.example.com",
        "imap_username": "support@example.com",
        "imap_password": "imap-password-5f2c",
        "smtp_host": "smtp.example.com",
        "smtp_username": "support@example.com",
        "smtp_password": "smtp-password-9a1e",
        "from_address": "support@example.com",
        "from_name": "Support",
    },
    "sms": {
        "account_sid": "AC" + "0123456789abcdef" * 2,
        "auth_token": "twilio-auth-token-77d0",
        "phone_number": "+1 415 555 0199",
        "default_region": "US",
    },
    # api_base_url is set to a Bot API stand-in for the session (`telegram_bot_api`):
    # the token is checked with getMe whenever a Telegram channel is saved.
    "telegram": {"bot_token": TELEGRAM_TOKEN, "mode": "webhook"},
    "webform": {"allowed_origins": ["https://example.com"]},
}


@pytest.fixture(scope="session", autouse=True)
def telegram_bot_api() -> Iterator[str]:
    """A Bot API stand-in for the whole session, on a loop of its own in a thread (tests
    each have their own loop); VALID_CONFIGS' Telegram channel points at it."""
    standin = BotApiStandIn(token=TELEGRAM_TOKEN)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Future[None] = loop.create_future()

    async def serve() -> None:
        async with running(standin):
            started.set()
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the Bot API stand-in did not start")
    VALID_CONFIGS["telegram"]["api_base_url"] = standin.base_url
    try:
        yield standin.base_url
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(30)
        loop.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings of a test process: the fresh database, no Redis."""
    return Settings(
        database_url=database_url,
        redis_url=None,
        data_dir=tmp_path,
        secret_key=SECRET_KEY,
    )


WEB = frozenset({"web"})


@pytest.fixture
def make_client(aiohttp_client: Any) -> MakeClient:
    """Starts the real web app for some settings and returns a client for it."""

    async def make(settings: Settings) -> Client:
        client: Client = await aiohttp_client(create_app(settings, roles=WEB))
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient, settings: Settings) -> Client:
    """A client of the web app on the fresh test database."""
    return await make_client(settings)


@pytest.fixture
def sessions(client: Client) -> SessionFactory:
    """Sessions on the app's own engine."""
    return client.app[SESSIONS_KEY]


@dataclass(frozen=True)
class ApiUser:
    """A user and a bearer token of theirs."""

    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_api_user(sessions: SessionFactory, role: Role, *, active: bool = True) -> ApiUser:
    """A user with a token, written with the ORM (tokens are stored as their SHA-256)."""
    token = "sb_" + secrets.token_urlsafe(32)
    user = User(
        email=f"{role.value}-{uuid.uuid4().hex[:8]}@example.com",
        role=role.value,
        password_hash="not-a-real-hash",
        is_active=active,
    )
    async with sessions() as session:
        session.add(user)
        await session.flush()
        digest = hashlib.sha256(token.encode()).hexdigest()
        session.add(ApiToken(user_id=user.id, token_hash=digest))
        await session.commit()
    return ApiUser(user, token)


@pytest.fixture
async def admin(sessions: SessionFactory) -> ApiUser:
    return await make_api_user(sessions, Role.ADMIN)


@pytest.fixture
async def agent(sessions: SessionFactory) -> ApiUser:
    return await make_api_user(sessions, Role.AGENT)


class Rows:
    """Makes channels, contacts, conversations, messages and timeline events with the ORM."""

    def __init__(
        self, client: Client, members: Sequence[User] = (), *, every_channel: bool = False
    ) -> None:
        self.sessions = client.app[SESSIONS_KEY]
        self.box = client.app[SECRET_BOX_KEY]
        # Members of the `home` channel (the `agent` fixture's user); channels made with
        # `channel` have no members unless a test adds them.
        self.members = list(members)
        # With `every_channel`, they are members of every channel made here too.
        self.every_channel = every_channel
        self._home: Channel | None = None

    async def _add(self, *rows: Any) -> None:
        async with self.sessions() as session:
            session.add_all(rows)
            await session.commit()

    async def channel(self, kind: str = "webform", name: str | None = None) -> Channel:
        config = spec_for(kind).config.model_validate(VALID_CONFIGS[kind])
        channel = Channel(
            kind=kind,
            name=name or f"{kind} channel",
            config_encrypted=self.box.encrypt(config.model_dump(mode="json")),
            health="unknown",
        )
        await self._add(channel)
        if self.every_channel:
            await self.member_of(channel, *self.members)
        return channel

    async def member(self, user: User, *channels: Channel | uuid.UUID) -> None:
        """Make `user` a member of `channels` (agents see only their channels' data)."""
        ids = [c if isinstance(c, uuid.UUID) else c.id for c in channels]
        await self._add(*(ChannelMember(channel_id=i, user_id=user.id) for i in ids))

    async def member_of(self, channel: Channel, *users: User) -> None:
        """Make `users` members of `channel`."""
        await self._add(*(ChannelMember(channel_id=channel.id, user_id=u.id) for u in users))

    async def contact(
        self,
        name: str | None = None,
        identities: Sequence[tuple[str, str]] = (),
        last_activity_at: datetime | None = None,
    ) -> Contact:
        contact = Contact(name=name)
        if last_activity_at is not None:
            contact.last_activity_at = last_activity_at
        await self._add(contact)
        await self._add(
            *(Identity(contact_id=contact.id, kind=kind, value=value) for kind, value in identities)
        )
        return contact

    async def seen_contact(
        self,
        name: str | None = None,
        identities: Sequence[tuple[str, str]] = (),
        last_activity_at: datetime | None = None,
    ) -> Contact:
        """A contact with a conversation on a channel the members see: agents see a
        contact only through a conversation on one of their channels."""
        contact = await self.contact(name, identities, last_activity_at)
        await self.conversation(contact, await self.home())
        return contact

    async def home(self) -> Channel:
        """The channel `seen_contact` gives its contacts a conversation on."""
        if self._home is None:
            self._home = await self.channel(name="home")
            if not self.every_channel:
                await self.member_of(self._home, *self.members)
        return self._home

    async def conversation(
        self,
        contact: Contact,
        channel: Channel,
        *,
        status: str = "open",
        assignee_id: uuid.UUID | None = None,
        team_id: uuid.UUID | None = None,
        last_activity_at: datetime = T0,
    ) -> Conversation:
        conversation = Conversation(
            contact_id=contact.id,
            channel_id=channel.id,
            status=status,
            assignee_id=assignee_id,
            team_id=team_id,
            last_activity_at=last_activity_at,
            created_at=last_activity_at,
        )
        await self._add(conversation)
        return conversation

    async def message(
        self,
        conversation: Conversation,
        *,
        direction: str = "in",
        text: str = "hello",
        sent_at: datetime = T0,
        delivery_state: str | None = None,
        delivery_error: str | None = None,
        attachment: tuple[str, str, int] | None = None,
    ) -> Message:
        async with self.sessions() as session, session.begin():
            # Numbered as every writer numbers a conversation's messages: under its lock.
            stored = await session.get(Conversation, conversation.id, with_for_update=True)
            assert stored is not None
            stored.last_seq += 1
            seq = stored.last_seq
        message = Message(
            conversation_id=conversation.id,
            channel_id=conversation.channel_id,
            contact_id=conversation.contact_id,
            direction=direction,
            text=text,
            sent_at=sent_at,
            seq=seq,
            delivery_state=delivery_state,
            delivery_error=delivery_error,
        )
        await self._add(message)
        if attachment is not None:
            filename, content_type, size = attachment
            await self._add(
                Attachment(
                    message_id=message.id,
                    sha256="0" * 64,
                    size=size,
                    content_type=content_type,
                    filename=filename,
                )
            )
        return message

    async def event(
        self,
        contact: Contact,
        kind: str,
        occurred_at: datetime,
        message: Message | None = None,
    ) -> TimelineEvent:
        event = TimelineEvent(
            contact_id=contact.id,
            conversation_id=message.conversation_id if message else None,
            message_id=message.id if message else None,
            kind=kind,
            data={"n": kind},
            occurred_at=occurred_at,
        )
        await self._add(event)
        return event


@pytest.fixture
def rows(client: Client, agent: ApiUser) -> Rows:
    """Rows; the `agent` fixture's user is a member of its `home` channel (the one
    `seen_contact` uses), of no other channel unless a test makes them one."""
    return Rows(client, [agent.user])


@pytest.fixture
def agent_rows(client: Client, agent: ApiUser) -> Rows:
    """Rows whose every channel has the `agent` fixture's user as a member: for tests
    about something else than membership (test files override `rows` with it)."""
    return Rows(client, [agent.user], every_channel=True)


def minutes(n: float) -> timedelta:
    """A short way to space test timestamps."""
    return timedelta(minutes=n)
