"""SmtpSender against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket

import pytest

from connectors.email.smtp import SmtpSender
from connectors.errors import AuthError, PermanentError, TransientError
from connectors.types import (
    ChannelId,
    DeliveryState,
    Outbound,
    OutboundAttachment,
    ThreadHints,
)
from tests.connectors.email.smtp_server import CapturingSmtpServer, capturing_smtp, smtp_server

__all__ = ["smtp_server"]  # the fixture, imported to be used here

CHANNEL = ChannelId("channel-1")


def reply(**changes: object) -> Outbound:
    values: dict[str, object] = {
        "channel_id": CHANNEL,
        "message_id": "0b6f3c1e-7d1a-4c55-9a3e-1f2b3c4d5e6f",
        "recipient": "ann@example.org",
        "text": "Hello Ann,\n\nyour parcel left today.\n",
        "thread": ThreadHints(
            in_reply_to="<ann-2@mail.example.org>",
            references=("<ann-1@mail.example.org>", "<sb.first@example.com>"),
            subject="Where is my parcel?",
        ),
    }
    values.update(changes)
    return Outbound(**values)  # type: ignore[arg-type]


def header_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


async def test_a_reply_arrives_with_the_headers_that_thread_it(
    smtp_server: CapturingSmtpServer,
) -> None:
    sender = SmtpSender(smtp_server.email_config())
    try:
        result = await sender.send(
            reply(
                html="<p>Hello Ann,</p><p>your parcel left today.</p>",
                sender_name="Zoë Agent",
                attachments=(
                    OutboundAttachment("Lieferschein für Zoë.pdf", "application/pdf", b"%PDF-1"),
                ),
            )
        )
    finally:
        await sender.close()

    [captured] = smtp_server.messages
    message = captured.message
    assert captured.mail_from == "support@example.com"
    assert captured.rcpt_tos == ("ann@example.org",)
    assert message["From"].addresses[0].display_name == "Zoë Agent"
    assert message["From"].addresses[0].addr_spec == "support@example.com"
    assert message["To"] == "ann@example.org"
    assert message["Subject"] == "Re: Where is my parcel?"
    assert message["Message-ID"] == "<sb.0b6f3c1e-7d1a-4c55-9a3e-1f2b3c4d5e6f@example.com>"
    assert result.provider_message_id == message["Message-ID"]
    assert result.rfc_message_id == message["Message-ID"]
    assert result.state is DeliveryState.SENT
    assert message["In-Reply-To"] == "<ann-2@mail.example.org>"
    assert str(message["References"]).split() == [
        "<ann-1@mail.example.org>",
        "<sb.first@example.com>",
        "<ann-2@mail.example.org>",
    ]
    assert message["Date"].datetime is not None
    assert message["MIME-Version"] == "1.0"
    assert "Auto-Submitted" not in message
    assert message.get_content_type() == "multipart/mixed"
    body, attachment = message.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    plain, html = body.iter_parts()
    assert plain.get_content().replace("\r\n", "\n") == "Hello Ann,\n\nyour parcel left today.\n"
    assert "your parcel left today." in html.get_content()
    assert attachment.get_filename() == "Lieferschein für Zoë.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == b"%PDF-1"
    assert all(len(line) <= 998 for line in captured.data.split(b"\r\n"))
    # 7-bit clean: travels through servers without 8BITMIME.
    assert captured.data.isascii()


async def test_a_text_only_reply_is_one_text_part(smtp_server: CapturingSmtpServer) -> None:
    sender = SmtpSender(smtp_server.email_config(from_name=None))
    try:
        await sender.send(reply(text="Привет, Анна"))
    finally:
        await sender.close()
    [captured] = smtp_server.messages
    assert captured.message.get_content_type() == "text/plain"
    assert captured.message.get_content().rstrip() == "Привет, Анна"
    assert captured.message["From"] == "support@example.com"
    assert not captured.tls


async def test_two_hundred_references_stay_bounded_and_folded(
    smtp_server: CapturingSmtpServer,
) -> None:
    references = tuple(f"<{'m' * 60}.{n}@mail.example.org>" for n in range(200))
    sender = SmtpSender(smtp_server.email_config())
    try:
        await sender.send(reply(thread=ThreadHints(references=references, subject="x")))
    finally:
        await sender.close()
    [captured] = smtp_server.messages
    kept = str(captured.message["References"]).split()
    assert kept[0] == references[0]
    assert kept[-1] == references[-1]
    assert 2 < len(kept) < 200
    assert len(" ".join(kept)) <= 2000
    lines = header_lines(captured.data)
    start = next(i for i, line in enumerate(lines) if line.startswith(b"References:"))
    folded = [lines[start]]
    folded += [line for line in lines[start + 1 :][: len(kept) - 1] if line.startswith(b" ")]
    assert len(folded) == len(kept)  # one id per line
    assert all(len(line) <= 998 for line in captured.data.split(b"\r\n"))


async def test_header_injection_adds_no_header(smtp_server: CapturingSmtpServer) -> None:
    sender = SmtpSender(smtp_server.email_config())
    try:
        await sender.send(
            reply(
                sender_name="Eve\r\nBcc: victim@example.net",
                thread=ThreadHints(
                    in_reply_to="<a@b>\r\nX-Injected: 1",
                    references=("<ok@example.org>", "<x@y>\nBcc: victim@example.net"),
                    subject="Hi\r\nBcc: victim@example.net\u2028X-Injected: yes",
                ),
            )
        )
    finally:
        await sender.close()
    [captured] = smtp_server.messages
    message = captured.message
    assert "Bcc" not in message
    assert "X-Injected" not in message
    assert captured.rcpt_tos == ("ann@example.org",)
    assert "\n" not in message["Subject"]
    assert message["Subject"].startswith("Re: Hi Bcc: victim@example.net")
    assert "In-Reply-To" not in message
    assert str(message["References"]).split() == ["<ok@example.org>"]
    names = [line.split(b":", 1)[0].lower() for line in header_lines(captured.data)]
    names = [name for name in names if not name.startswith((b" ", b"\t"))]
    assert sorted(set(names)) == sorted(names)  # no header twice


async def test_an_automatic_acknowledgement_is_marked_auto_replied(
    smtp_server: CapturingSmtpServer,
) -> None:
    sender = SmtpSender(smtp_server.email_config())
    try:
        await sender.send(reply(auto_reply=True))
    finally:
        await sender.close()
    [captured] = smtp_server.messages
    assert captured.message["Auto-Submitted"] == "auto-replied"
    assert captured.message["X-Auto-Response-Suppress"] == "All"


async def test_a_retry_goes_out_with_the_same_message_id(
    smtp_server: CapturingSmtpServer,
) -> None:
    sender = SmtpSender(smtp_server.email_config())
    try:
        first = await sender.send(reply())
        second = await sender.send(reply())
    finally:
        await sender.close()
    one, two = smtp_server.messages
    assert one.message["Message-ID"] == two.message["Message-ID"] == first.rfc_message_id
    assert second.rfc_message_id == first.rfc_message_id


async def test_concurrent_sends_all_arrive(smtp_server: CapturingSmtpServer) -> None:
    sender = SmtpSender(smtp_server.email_config())
    try:
        results = await asyncio.gather(*(sender.send(reply(message_id=f"m{n}")) for n in range(8)))
    finally:
        await sender.close()
    got = sorted(str(captured.message["Message-ID"]) for captured in smtp_server.messages)
    assert got == sorted(str(result.rfc_message_id) for result in results)
    assert len(set(got)) == 8


async def test_an_unknown_user_is_a_permanent_failure_with_the_server_text(
    smtp_server: CapturingSmtpServer,
) -> None:
    smtp_server.fail_next("RCPT", "550 5.1.1 <ann@example.org>: Recipient address rejected")
    sender = SmtpSender(smtp_server.email_config())
    try:
        with pytest.raises(PermanentError) as caught:
            await sender.send(reply())
        # The sender recovers: the next message goes out on a fresh session.
        await sender.send(reply(message_id="next"))
    finally:
        await sender.close()
    assert str(caught.value) == "550 5.1.1 <ann@example.org>: Recipient address rejected"
    assert [str(c.message["Message-ID"]) for c in smtp_server.messages] == ["<sb.next@example.com>"]


async def test_a_refused_message_body_is_permanent(smtp_server: CapturingSmtpServer) -> None:
    smtp_server.fail_next("DATA", "554 5.7.1 Message rejected as spam")
    sender = SmtpSender(smtp_server.email_config())
    try:
        with pytest.raises(PermanentError, match=r"554 5\.7\.1 Message rejected as spam"):
            await sender.send(reply())
    finally:
        await sender.close()
    assert smtp_server.messages == []


@pytest.mark.parametrize("command", ["MAIL", "RCPT", "DATA"])
async def test_a_4xx_answer_is_transient(smtp_server: CapturingSmtpServer, command: str) -> None:
    smtp_server.fail_next(command, "451 4.3.0 Try again later")  # type: ignore[arg-type]
    sender = SmtpSender(smtp_server.email_config())
    try:
        with pytest.raises(TransientError, match=r"451 4\.3\.0 Try again later"):
            await sender.send(reply())
    finally:
        await sender.close()
    assert smtp_server.messages == []


async def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]  # bound but not listening: connections are refused
        with capturing_smtp() as server:
            config = server.email_config(smtp_port=port)
        sender = SmtpSender(config, timeout=5)
        with pytest.raises(TransientError, match=f"cannot connect to 127.0.0.1:{port}"):
            await sender.send(reply())
        await sender.close()


async def test_a_wrong_password_is_an_auth_error() -> None:
    async with capturing_smtp(username="support", password="right") as server:
        sender = SmtpSender(server.email_config(smtp_password="wrong"))
        try:
            with pytest.raises(AuthError, match="535"):
                await sender.send(reply())
        finally:
            await sender.close()
        assert server.messages == []


async def test_the_right_password_logs_in() -> None:
    async with capturing_smtp(
        username="support", password="pässword", auth_required=True
    ) as server:
        sender = SmtpSender(server.email_config())
        try:
            await sender.send(reply())
        finally:
            await sender.close()
        [captured] = server.messages
        assert captured.login == "support"


async def test_a_server_requiring_login_without_a_user_name_is_an_auth_error() -> None:
    async with capturing_smtp(username="support", password="x", auth_required=True) as server:
        sender = SmtpSender(server.email_config(smtp_username=None, smtp_password=None))
        try:
            with pytest.raises(AuthError, match="530"):
                await sender.send(reply())
        finally:
            await sender.close()
        assert server.messages == []


async def test_starttls_is_used_when_required() -> None:
    async with capturing_smtp(starttls=True, username="support", password="pw") as server:
        sender = SmtpSender(server.email_config(), tls_context=server.client_tls_context)
        try:
            await sender.send(reply())
        finally:
            await sender.close()
        [captured] = server.messages
        assert captured.tls
        assert captured.login == "support"


async def test_implicit_tls() -> None:
    async with capturing_smtp(implicit_tls=True) as server:
        sender = SmtpSender(server.email_config(), tls_context=server.client_tls_context)
        try:
            await sender.send(reply())
        finally:
            await sender.close()
        [captured] = server.messages
        assert captured.tls


async def test_starttls_required_but_not_offered_sends_nothing_in_clear_text(
    smtp_server: CapturingSmtpServer,
) -> None:
    sender = SmtpSender(smtp_server.email_config(smtp_security="starttls"))
    try:
        with pytest.raises(TransientError, match="does not offer STARTTLS"):
            await sender.send(reply())
    finally:
        await sender.close()
    assert smtp_server.messages == []


async def test_an_untrusted_certificate_is_refused() -> None:
    async with capturing_smtp(starttls=True) as server:
        sender = SmtpSender(server.email_config())  # the system trust store
        try:
            with pytest.raises(TransientError, match="TLS failed"):
                await sender.send(reply())
        finally:
            await sender.close()
        assert server.messages == []


async def test_a_recipient_that_is_not_an_address_is_permanent(
    smtp_server: CapturingSmtpServer,
) -> None:
    sender = SmtpSender(smtp_server.email_config())
    try:
        with pytest.raises(PermanentError, match="not a plain email address"):
            await sender.send(reply(recipient="ann@example.org\r\nRCPT TO:<x@evil.example>"))
    finally:
        await sender.close()
    assert smtp_server.messages == []


async def test_a_dropped_kept_connection_is_replaced(smtp_server: CapturingSmtpServer) -> None:
    sender = SmtpSender(smtp_server.email_config())
    try:
        await sender.send(reply(message_id="one"))
        kept = sender._smtp
        assert kept is not None
        kept.close()  # as if the server had timed the idle session out
        await sender.send(reply(message_id="two"))
    finally:
        await sender.close()
    assert [str(c.message["Message-ID"]) for c in smtp_server.messages] == [
        "<sb.one@example.com>",
        "<sb.two@example.com>",
    ]
