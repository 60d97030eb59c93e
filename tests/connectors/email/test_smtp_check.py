"""check_smtp (the SMTP half of "test connection") against a real aiosmtpd server."""

from __future__ import annotations

import socket

from connectors.email.smtp import check_smtp
from tests.connectors.email.smtp_server import CapturingSmtpServer, capturing_smtp, smtp_server

__all__ = ["smtp_server"]  # the fixture, imported to be used here


async def test_a_working_server_answers_no_errors(smtp_server: CapturingSmtpServer) -> None:
    assert await check_smtp(smtp_server.email_config()) == {}


async def test_starttls_and_login_that_work_answer_no_errors() -> None:
    async with capturing_smtp(starttls=True, username="support", password="pw") as server:
        errors = await check_smtp(server.email_config(), tls_context=server.client_tls_context)
    assert errors == {}


async def test_a_wrong_password_names_the_password() -> None:
    async with capturing_smtp(username="support", password="right") as server:
        errors = await check_smtp(server.email_config(smtp_password="wrong"))
    assert list(errors) == ["smtp_password"]
    assert errors["smtp_password"].startswith("the server refused the user name or password: 535")


async def test_a_closed_port_names_the_host() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]  # bound but not listening: connections are refused
        with capturing_smtp() as server:
            config = server.email_config(smtp_port=port)
        errors = await check_smtp(config, timeout=5)
    assert list(errors) == ["smtp_host"]
    assert errors["smtp_host"].startswith(f"cannot connect to 127.0.0.1:{port}: ")


async def test_a_missing_starttls_names_the_security_mode(smtp_server: CapturingSmtpServer) -> None:
    errors = await check_smtp(smtp_server.email_config(smtp_security="starttls"))
    assert list(errors) == ["smtp_security"]
    assert "does not offer STARTTLS" in errors["smtp_security"]


async def test_an_untrusted_certificate_names_the_security_mode() -> None:
    async with capturing_smtp(implicit_tls=True) as server:
        errors = await check_smtp(server.email_config())  # the system trust store
    assert list(errors) == ["smtp_security"]
    assert errors["smtp_security"].startswith("TLS failed with 127.0.0.1:")
    assert "CERTIFICATE_VERIFY_FAILED" in errors["smtp_security"]


async def test_login_not_offered_names_the_user_name(smtp_server: CapturingSmtpServer) -> None:
    errors = await check_smtp(smtp_server.email_config(smtp_username="support", smtp_password="x"))
    assert list(errors) == ["smtp_username"]
    assert "does not offer login" in errors["smtp_username"]


async def test_a_server_that_is_not_smtp_names_the_host() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]  # accepts, then never greets
        with capturing_smtp() as server:
            config = server.email_config(smtp_port=port)
        errors = await check_smtp(config, timeout=0.5)
    assert list(errors) == ["smtp_host"]
    assert "127.0.0.1" in errors["smtp_host"]
