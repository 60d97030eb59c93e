"""A capturing SMTP server (aiosmtpd) on 127.0.0.1 for tests.

The server runs in its own thread with its own event loop (aiosmtpd's Controller), so it
keeps answering whatever the test's loop is doing, and serves connectors running in
other processes too. It listens on a port the kernel picks (no free-port race).

    with capturing_smtp(username="u", password="p") as server:      # or `async with`
        config = server.email_config()
        ...
        [envelope] = server.wait_for(1)

Options: AUTH with a user name and password (accepted without TLS, so tests need no
certificate), STARTTLS or implicit TLS with a self-signed certificate made at start
(`server.client_tls_context` trusts it), and scripted failures: `fail_next("RCPT",
"550 5.1.1 User unknown")` answers the next RCPT (or MAIL, DATA) with that reply.

The lead's conftest may import the `smtp_server` fixture from here.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import ipaddress
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.email.config import EmailConfig

HOST = "127.0.0.1"
Command = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True, slots=True)
class Captured:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # exactly as received, CRLF line ends
    message: EmailMessage  # `data` parsed with the default policy
    login: str | None  # the AUTH user name, when the client logged in
    tls: bool  # the session was encrypted (STARTTLS or implicit TLS)


@dataclass
class _Script:
    lock: threading.Lock = field(default_factory=threading.Lock)
    replies: dict[str, list[str]] = field(default_factory=dict)

    def add(self, command: Command, reply: str, times: int) -> None:
        with self.lock:
            self.replies.setdefault(command, []).extend([reply] * times)

    def take(self, command: Command) -> str | None:
        with self.lock:
            queued = self.replies.get(command)
            return queued.pop(0) if queued else None


class _Handler:
    """aiosmtpd handler hooks: scripted failures first, else accept and capture."""

    def __init__(self, server: CapturingSmtpServer) -> None:
        self._server = server

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        scripted = self._server._script.take("MAIL")
        if scripted is not None:
            return scripted
        if self._server.auth_required and not session.authenticated:
            # Enforced here rather than by aiosmtpd's auth_required, which warns when
            # AUTH is allowed without TLS (as these tests want).
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        scripted = self._server._script.take("RCPT")
        if scripted is not None:
            return scripted
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        scripted = self._server._script.take("DATA")
        if scripted is not None:
            return scripted
        data = envelope.original_content or b""
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        transport = server.transport
        captured = Captured(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            message=email.message_from_bytes(data, policy=default_policy),
            login=login,
            tls=transport is not None and transport.get_extra_info("sslcontext") is not None,
        )
        self._server._capture(captured)
        return "250 2.0.0 OK: queued"


class _Controller(Controller):
    """aiosmtpd's Controller, listening on a port the kernel picks."""

    async def _create_server(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server


class CapturingSmtpServer:
    """An SMTP server on 127.0.0.1 that keeps every message it accepts (`messages`)."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        auth_required: bool = False,
        starttls: bool = False,
        implicit_tls: bool = False,
    ) -> None:
        self.username = username
        self.password = password
        self.messages: list[Captured] = []
        self.host = HOST
        self.port = 0
        self.auth_required = auth_required
        self._starttls = starttls
        self._implicit_tls = implicit_tls
        self._script = _Script()
        self._arrived = threading.Condition()
        self._controller: _Controller | None = None
        self._cert_dir: tempfile.TemporaryDirectory[str] | None = None
        self.client_tls_context: ssl.SSLContext | None = None

    # -- lifetime ---------------------------------------------------------------

    def start(self) -> CapturingSmtpServer:
        """Start listening; answers self."""
        kwargs: dict[str, Any] = {"data_size_limit": 64 * 1024 * 1024}
        if self.username is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = False
        # Without a user name, AUTH is left at aiosmtpd's default: offered only after
        # TLS, so a plain server offers no login at all.
        ssl_context = None
        if self._starttls or self._implicit_tls:
            server_context, self.client_tls_context = self._tls_contexts()
            if self._implicit_tls:
                ssl_context = server_context
            else:
                kwargs["tls_context"] = server_context
        controller = _Controller(
            _Handler(self),
            hostname=HOST,
            server_hostname="smtp.test",
            ssl_context=ssl_context,
            **kwargs,
        )
        controller.start()
        self._controller = controller
        self.port = controller.port
        return self

    def stop(self) -> None:
        """Stop listening and drop open sessions."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._cert_dir is not None:
            self._cert_dir.cleanup()
            self._cert_dir = None

    def __enter__(self) -> CapturingSmtpServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> CapturingSmtpServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- what tests use -----------------------------------------------------------

    def email_config(self, **overrides: Any) -> EmailConfig:
        """An EmailConfig sending through this server (IMAP fields are placeholders)."""
        security = "tls" if self._implicit_tls else "starttls" if self._starttls else "none"
        values: dict[str, Any] = {
            "imap_host": HOST,
            "imap_username": "placeholder",
            "imap_password": "placeholder",
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": security,
            "smtp_username": self.username,
            "smtp_password": self.password,
            "from_address": "support@example.com",
            "from_name": "Example Support",
        }
        values.update(overrides)
        return EmailConfig(**values)

    def fail_next(self, command: Command, reply: str, *, times: int = 1) -> None:
        """Answer the next `times` MAIL, RCPT or DATA commands with `reply`
        (e.g. "550 5.1.1 <x@example.com>: Recipient address rejected: User unknown")."""
        self._script.add(command, reply, times)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Captured]:
        """Block until at least `count` messages arrived; raises AssertionError on timeout."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(
                    f"expected {count} message(s) within {timeout} s, got {len(self.messages)}"
                )
            return list(self.messages)

    async def wait_for_async(self, count: int, timeout: float = 10.0) -> list[Captured]:
        """`wait_for` without blocking the running event loop."""
        return await asyncio.to_thread(self.wait_for, count, timeout)

    # -- inside the server thread ----------------------------------------------------

    def _capture(self, captured: Captured) -> None:
        with self._arrived:
            self.messages.append(captured)
            self._arrived.notify_all()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        good = data.login == (self.username or "").encode() and data.password == (
            self.password or ""
        ).encode("utf-8")
        return AuthResult(success=good, handled=False, auth_data=data if good else None)

    def _tls_contexts(self) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        self._cert_dir = tempfile.TemporaryDirectory(prefix="smtp-cert-")
        cert_pem, key_pem = self_signed_certificate()
        cert_file = Path(self._cert_dir.name, "cert.pem")
        key_file = Path(self._cert_dir.name, "key.pem")
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert_file, key_file)
        client = ssl.create_default_context(cadata=cert_pem.decode("ascii"))
        return server, client


def self_signed_certificate() -> tuple[bytes, bytes]:
    """A certificate and key (PEM) for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def capturing_smtp(**options: Any) -> CapturingSmtpServer:
    """A server (not started) to use as `with` / `async with`; options as CapturingSmtpServer."""
    return CapturingSmtpServer(**options)


@pytest.fixture
def smtp_server() -> Iterator[CapturingSmtpServer]:
    """A plain capturing server (no TLS, no AUTH) for one test."""
    with capturing_smtp() as server:
        yield server
