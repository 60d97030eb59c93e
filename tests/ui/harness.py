"""The browser-test harness: the real app on a real port, in a thread with its own event
loop, so that Playwright's synchronous API can drive Chromium from the test's thread.
See tests/ui/README.md."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from playwright.sync_api import BrowserContext, Page

from inbox.models import Role, User
from inbox.users import create_user, issue_token
from tests.connectors.sms.twilio_standin import TwilioStandin
from timeline.db import SessionFactory
from timeline.models import utcnow
from web.app import create_app
from web.keys import SESSIONS_KEY
from web.sessions import COOKIE_NAME, SESSION_STORE_KEY
from web.settings import Settings

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"


def in_thread(function: Callable[[], T]) -> T:
    """Run `function` in a thread of its own (for asyncio.run while Playwright's loop runs
    in the test's thread)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(function())
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


class LiveServer:
    """The application (web and worker roles) serving on 127.0.0.1:`port`."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> None:
        self._thread.start()
        self.call(self._start)

    async def _start(self) -> None:
        self._runner = web.AppRunner(create_app(self.settings), shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        try:
            if self._runner is not None:
                self.call(self._runner.cleanup)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
            self.loop.close()

    @property
    def app(self) -> web.Application:
        assert self._runner is not None
        return self._runner.app

    def call(self, function: Callable[[], Coroutine[Any, Any, T]], timeout: float = 60) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(function(), self.loop).result(timeout)

    def db(self, work: Callable[[SessionFactory], Awaitable[T]]) -> T:
        """Run `work(sessions)` with the app's own session factory."""
        sessions = self.app[SESSIONS_KEY]

        async def run() -> T:
            return await work(sessions)

        return self.call(run)

    def user(
        self,
        role: Role = Role.AGENT,
        *,
        name: str | None = None,
        language: str | None = None,
        password: str = PASSWORD,
    ) -> User:
        """A new user with a real password hash (so the sign-in form works)."""

        async def make(sessions: SessionFactory) -> User:
            async with sessions() as session:
                user = await create_user(
                    session,
                    email=f"{role.value}-{uuid.uuid4().hex[:8]}@example.com",
                    password=password,
                    role=role,
                    name=name,
                )
                if language is not None:
                    user.language = language
                    await session.commit()
                return user

        return self.db(make)

    def sign_in(self, context: BrowserContext, user: User) -> None:
        """Give a browser context a session of `user`, as signing in would."""

        async def create() -> str:
            return await self.app[SESSION_STORE_KEY].create(user.id, utcnow())

        cookie = self.call(create)
        context.add_cookies(
            [{"name": COOKIE_NAME, "value": cookie, "url": self.base_url, "httpOnly": True}]
        )


# Reported from the page by an init script (CDP-injected, so the CSP does not stop it).
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__reportCspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${where}`
  );
});
"""


@dataclass
class BrowserProblems:
    """Console errors, uncaught exceptions and CSP violations of a context's pages."""

    errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    # Console errors a test expects (e.g. the 401 of a wrong sign-in), as regexes.
    allowed: list[str] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> None:
        context.expose_binding(
            "__reportCspViolation", lambda _source, text: self.csp.append(str(text))
        )
        context.add_init_script(_CSP_LISTENER)
        context.on("page", self._watch_page)

    def _watch_page(self, page: Page) -> None:
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console: {message.text} ({message.location})")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def unexpected(self) -> list[str]:
        return [
            e for e in self.errors if not any(re.search(pattern, e) for pattern in self.allowed)
        ]


class ApiAdmin:
    """The REST API as an admin with a token, from the test: what another person does
    meanwhile, through the real endpoints (and so the real events)."""

    def __init__(self, server: LiveServer, name: str = "Ida Admin") -> None:
        self.server = server
        admin = server.user(Role.ADMIN, name=name)

        async def token(sessions: SessionFactory) -> str:
            async with sessions() as session:
                return await issue_token(session, admin, name="browser test")

        self.headers = {"Authorization": f"Bearer {server.db(token)}"}

    def request(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        async def send() -> Any:
            async with (
                aiohttp.ClientSession(base_url=self.server.base_url) as client,
                client.request(method, path, json=body, headers=self.headers) as answer,
            ):
                assert answer.status == status, await answer.text()
                return await answer.json()

        return self.server.call(send)


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # Transitions finished at once: a shot right after a theme switch shows the new theme.
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def add_conversation(
    server: LiveServer,
    *,
    channel_name: str,
    members: tuple[User, ...] = (),
    label: str | None = None,
    kind: str = "webform",
) -> uuid.UUID:
    """A channel (its `members` work it), a contact and an open conversation on it."""
    from connectors.registry import spec_for
    from inbox.account_models import ChannelMember
    from inbox.workflow_models import ConversationLabel
    from timeline.models import Channel, Contact, Conversation
    from web.keys import SECRET_BOX_KEY

    box = server.app[SECRET_BOX_KEY]

    async def make(sessions: SessionFactory) -> uuid.UUID:
        config = spec_for(kind).config.model_validate({})
        async with sessions() as session:
            channel = Channel(
                kind=kind,
                name=channel_name,
                config_encrypted=box.encrypt(config.model_dump(mode="json")),
                health="unknown",
            )
            contact = Contact(name="Ann Customer")
            session.add_all([channel, contact])
            await session.flush()
            conversation = Conversation(contact_id=contact.id, channel_id=channel.id)
            session.add(conversation)
            session.add_all(ChannelMember(channel_id=channel.id, user_id=u.id) for u in members)
            await session.flush()
            if label is not None:
                session.add(ConversationLabel(conversation_id=conversation.id, label=label))
            await session.commit()
            return conversation.id

    return server.db(make)


@contextlib.contextmanager
def twilio_standin(
    server: LiveServer, account: str, token: str, number: str
) -> Iterator[TwilioStandin]:
    """The Twilio stand-in for `number`, served on the live server's loop."""
    standin = TwilioStandin(account, token, phone_numbers={number})
    server.call(standin.__aenter__)

    async def stop() -> None:
        await standin.__aexit__(None, None, None)

    try:
        yield standin
    finally:
        server.call(stop)


@contextlib.contextmanager
def recording_server() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 that records every request (nothing may reach it): its base
    URL and the paths asked for."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
