"""Sending email replies over SMTP (aiosmtplib), and the SMTP half of "test connection".

Errors are translated once, here, into the three connector errors:

- the server refused our credentials (535 and other 5xx answers to AUTH; 530
  "authentication required"; no AUTH offered while a user name is configured) →
  AuthError: a person must fix the channel;
- anything about reaching the server: refused or dropped connections, timeouts, TLS
  failures, a server that does not offer STARTTLS while the channel requires it, a
  refusing greeting or EHLO, and every 4xx answer → TransientError;
- a 5xx answer to this message's MAIL, RCPT or DATA (unknown user, message too large,
  rejected as spam), or a recipient that is not an address → PermanentError, with the
  server's code and text as the reason.

Connection-level failures are transient even when the server answers 5xx (a 554
greeting): they say nothing about this message, and the outbox gives up with the reason
when the channel's retry period has passed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

import aiosmtplib

from connectors.email.compose import compose, envelope_address
from connectors.email.config import EmailConfig
from connectors.errors import AuthError, ConnectorError, PermanentError, TransientError
from connectors.types import DeliveryState, Outbound, ProviderMessageId, SendResult

logger = logging.getLogger(__name__)

# A connection idle for longer than this is not reused: servers drop idle clients
# (Postfix after 300 s), and probing a stale one costs as much as a new one.
IDLE_SECONDS = 60.0


class _OpenFailure(Exception):
    """Opening a session failed; `field` names the configuration key at fault."""

    def __init__(self, field: str, reason: str, *, auth: bool = False) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.auth = auth

    def translated(self) -> ConnectorError:
        if self.auth:
            return AuthError(self.reason)
        return TransientError(self.reason)


class SmtpSender:
    """Sends outbound messages through the channel's SMTP server.

    One connection is kept for IDLE_SECONDS and reused; sends on one sender are
    serialized over it by a lock (concurrent callers wait their turn), and a connection
    whose send failed in any way is discarded, never reused."""

    def __init__(
        self,
        config: EmailConfig,
        *,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """`timeout` bounds each network step; `tls_context` replaces the system's trust
        store (tests trust their self-signed certificate with it)."""
        self._config = config
        self._timeout = timeout
        self._tls_context = tls_context
        self._lock = asyncio.Lock()
        self._smtp: aiosmtplib.SMTP | None = None
        self._last_used = 0.0

    async def send(self, outbound: Outbound) -> SendResult:
        """Send one message; raises AuthError, TransientError or PermanentError.

        The message goes out with our own Message-ID (stable across retries), which is
        both ids of the result, so a bounce or a reply naming it finds the message."""
        try:
            message, message_id = compose(self._config, outbound)
            sender = envelope_address(self._config.from_address)
            recipient = envelope_address(outbound.recipient)
        except ValueError as err:
            raise PermanentError(str(err)) from err
        async with self._lock:
            smtp = await self._connection()
            try:
                await smtp.send_message(message, sender=sender, recipients=[recipient])
            except aiosmtplib.SMTPException as err:
                self._discard()
                raise _translate_send_error(err) from err
            except OSError as err:
                self._discard()
                raise TransientError(f"SMTP connection failed: {_text(err)}") from err
            except BaseException:
                self._discard()  # cancelled mid-transaction: the session is in no known state
                raise
            self._last_used = time.monotonic()
        logger.debug("sent %s to the SMTP server as %s", outbound.message_id, message_id)
        return SendResult(
            provider_message_id=ProviderMessageId(message_id),
            state=DeliveryState.SENT,
            rfc_message_id=message_id,
        )

    async def close(self) -> None:
        """Say QUIT and close the kept connection, if any."""
        async with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is not None:
                await _quit(smtp)

    async def _connection(self) -> aiosmtplib.SMTP:
        smtp = self._smtp
        if smtp is not None:
            fresh = time.monotonic() - self._last_used < IDLE_SECONDS
            if fresh and smtp.is_connected and await _answers_noop(smtp):
                return smtp
            self._discard()
        try:
            smtp = await open_session(self._config, self._timeout, self._tls_context)
        except _OpenFailure as failure:
            raise failure.translated() from failure
        self._smtp = smtp
        return smtp

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


async def check_smtp(
    config: EmailConfig,
    *,
    timeout: float = 15.0,
    tls_context: ssl.SSLContext | None = None,
) -> dict[str, str]:
    """Connect (with the configured TLS), log in when a user name is set, and QUIT.

    Answers {} when all is well, else one error keyed by the configuration key at fault
    ("smtp_host", "smtp_security", "smtp_username" or "smtp_password"). Never raises for
    what the server answers or for a server that cannot be reached."""
    try:
        smtp = await open_session(config, timeout, tls_context)
    except _OpenFailure as failure:
        return {failure.field: failure.reason}
    await _quit(smtp)
    return {}


async def open_session(
    config: EmailConfig, timeout: float, tls_context: ssl.SSLContext | None = None
) -> aiosmtplib.SMTP:
    """A connected, TLS-protected as configured, logged-in SMTP session.

    Raises _OpenFailure naming the configuration key at fault. With "starttls" the
    session is never used in clear text: a server that does not offer STARTTLS is
    refused before anything else is said."""
    security = config.smtp_security
    host, port = config.smtp_host, config.smtp_port
    smtp = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        timeout=timeout,
        use_tls=security == "tls",
        start_tls=False,  # done below, so that a missing STARTTLS is our clear error
        tls_context=tls_context,
    )
    try:
        await _connect(smtp, security, host, port)
        if security == "starttls":
            await _start_tls(smtp)
        if config.smtp_username:
            await _login(smtp, config.smtp_username, config.smtp_password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


async def _connect(smtp: aiosmtplib.SMTP, security: str, host: str, port: int | None) -> None:
    where = f"{host}:{port}"
    try:
        await smtp.connect()
    except aiosmtplib.SMTPConnectResponseError as err:
        raise _OpenFailure("smtp_host", f"{where} refused the connection: {_reply(err)}") from err
    except (aiosmtplib.SMTPException, OSError) as err:
        cause = err.__cause__ or err
        if security == "tls" and isinstance(cause, ssl.SSLError):
            raise _OpenFailure("smtp_security", f"TLS failed with {where}: {_text(cause)}") from err
        raise _OpenFailure("smtp_host", f"cannot connect to {where}: {_text(cause)}") from err


async def _start_tls(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPResponseException as err:
        raise _OpenFailure("smtp_host", f"the server refused EHLO: {_reply(err)}") from err
    except (aiosmtplib.SMTPException, OSError) as err:
        raise _OpenFailure("smtp_host", f"the server closed the connection: {_text(err)}") from err
    if not smtp.supports_extension("starttls"):
        raise _OpenFailure(
            "smtp_security",
            "the server does not offer STARTTLS; refusing to continue in clear text "
            '(use security "tls" for port 465, or check the port)',
        )
    try:
        await smtp.starttls()
    except aiosmtplib.SMTPResponseException as err:
        raise _OpenFailure("smtp_security", f"TLS failed: {_reply(err)}") from err
    except (aiosmtplib.SMTPException, OSError) as err:
        raise _OpenFailure("smtp_security", f"TLS failed: {_text(err.__cause__ or err)}") from err


async def _login(smtp: aiosmtplib.SMTP, username: str, password: str) -> None:
    try:
        await smtp.login(username, password)
    except aiosmtplib.SMTPAuthenticationError as err:
        if 400 <= err.code < 500:
            raise _OpenFailure(
                "smtp_password", f"the server could not log in now: {_reply(err)}"
            ) from err
        raise _OpenFailure(
            "smtp_password",
            f"the server refused the user name or password: {_reply(err)}",
            auth=True,
        ) from err
    except aiosmtplib.SMTPResponseException as err:
        raise _OpenFailure("smtp_password", f"login failed: {_reply(err)}") from err
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as err:
        raise _OpenFailure("smtp_host", f"the connection failed: {_text(err)}") from err
    except aiosmtplib.SMTPException as err:
        # aiosmtplib's "AUTH extension not supported" (often: only after TLS).
        raise _OpenFailure(
            "smtp_username", f"the server does not offer login: {_text(err)}", auth=True
        ) from err


def _translate_send_error(err: aiosmtplib.SMTPException) -> ConnectorError:
    """One failed MAIL/RCPT/DATA transaction as a connector error."""
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        refusals = err.recipients
        reason = "; ".join(_reply(refusal) for refusal in refusals) or "recipient refused"
        if any(refusal.code >= 500 for refusal in refusals):
            return PermanentError(reason)
        return TransientError(reason)
    if isinstance(err, aiosmtplib.SMTPResponseException):
        if err.code == 530:  # RFC 4954: authentication required
            return AuthError(f"the server requires login: {_reply(err)}")
        if 500 <= err.code < 600:
            return PermanentError(_reply(err))
        return TransientError(_reply(err))
    if isinstance(err, aiosmtplib.SMTPNotSupported):
        # e.g. a non-ASCII address and a server without SMTPUTF8: this message never goes.
        return PermanentError(_text(err))
    return TransientError(f"SMTP connection failed: {_text(err)}")


async def _answers_noop(smtp: aiosmtplib.SMTP) -> bool:
    try:
        response = await smtp.noop()
    except (aiosmtplib.SMTPException, OSError):
        return False
    return response.code == 250


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        logger.debug("SMTP QUIT failed; closing the connection anyway", exc_info=True)
    finally:
        smtp.close()


def _reply(err: aiosmtplib.SMTPResponseException) -> str:
    """The server's answer as "code text", on one line."""
    return f"{err.code} {_text(err.message)}".strip()


def _text(value: object) -> str:
    text = " ".join(str(value).split())
    return text or type(value).__name__
