"""The email channel end to end: real Dovecot (IMAP), real aiosmtpd (SMTP), the real app.

A channel added through the API starts receiving without a restart; a customer's mail
becomes a conversation; an agent's reply goes out over SMTP with threading headers; the
customer's answer (also from a mail client that drops In-Reply-To) joins the same
conversation, while a stranger citing it starts their own; a bounce of our reply marks
it failed; an acknowledgement goes to people, never to auto-replies; wrong credentials
show in the channel's health and in the connection test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.email.conftest import Mailbox
from tests.connectors.email.smtp_server import CapturingSmtpServer, capturing_smtp
from tests.hub import DEADLINE, Hub, start_hub


@pytest.fixture
async def smtp() -> AsyncIterator[CapturingSmtpServer]:
    async with capturing_smtp() as server:
        yield server


@pytest.fixture
async def hub(database_url: str, tmp_path: Path, aiohttp_client: Any) -> Hub:
    return await start_hub(aiohttp_client, database_url, tmp_path / "data")


def channel_config(mailbox: Mailbox, smtp: CapturingSmtpServer, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "imap_host": "127.0.0.1",
        "imap_port": mailbox.server.port,
        "imap_security": "none",
        "imap_username": mailbox.user,
        "imap_password": mailbox.password,
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_security": "none",
        "from_address": "support@example.org",
        "from_name": "Example Support",
    }
    config.update(changes)
    return config


def customer_mail(
    message_id: str,
    *,
    sender: str = "Ann Customer <ann@example.com>",
    subject: str = "Printer on fire",
    body: str = "Hello, my printer is on fire. What now?",
    in_reply_to: str | None = None,
    references: str | None = None,
    extra: str = "",
) -> bytes:
    headers = [
        f"From: {sender}",
        "To: support@example.org",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "Date: Mon, 02 Sep 2024 10:00:00 +0000",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if in_reply_to:
        headers.append(f"In-Reply-To: {in_reply_to}")
    if references:
        headers.append(f"References: {references}")
    if extra:
        headers.append(extra)
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


def bounce_of(our_id: str, recipient: str) -> bytes:
    boundary = "bounce-boundary-1"
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        "To: support@example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <bounce-{uuid.uuid4().hex}@mx.example.com>\r\n"
        "Date: Mon, 02 Sep 2024 11:00:00 +0000\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "This is the mail system at host mx.example.com.\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: "
        "User unknown\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        "From: Example Support <support@example.org>\r\n"
        f"To: {recipient}\r\n"
        f"Message-ID: {our_id}\r\n"
        "Subject: Re: Printer on fire\r\n"
        f"--{boundary}--\r\n"
    ).encode()


async def test_the_whole_loop(hub: Hub, mailbox: Mailbox, smtp: CapturingSmtpServer) -> None:
    # Mail that was already there before the channel existed is not lost.
    await mailbox.append(customer_mail("<c1@example.com>"))
    channel = await hub.post(
        "/channels",
        {"kind": "email", "name": "Support", "config": channel_config(mailbox, smtp)},
    )
    assert channel["running"] is True

    async def first_conversation() -> Any:
        items = await hub.conversations()
        return items[0] if items else None

    conversation = await hub.until(first_conversation, "the customer's mail is a conversation")
    assert conversation["channel_id"] == channel["id"]
    assert conversation["subject"] == "Printer on fire"
    assert (await hub.get(f"/channels/{channel['id']}"))["health"] == "connected"

    reply = await hub.post(
        f"/conversations/{conversation['id']}/messages", {"text": "Unplug it, we call you."}
    )
    [sent] = await smtp.wait_for_async(1, timeout=DEADLINE)
    assert sent.rcpt_tos == ("ann@example.com",)
    assert sent.mail_from == "support@example.org"
    message = sent.message
    assert message["Subject"] == "Re: Printer on fire"
    assert message["In-Reply-To"] == "<c1@example.com>"
    assert "<c1@example.com>" in message["References"]
    assert "Example Support" in message["From"]
    ours = message["Message-ID"]
    assert ours.startswith("<sb.") and ours.endswith("@example.org>")
    assert "Unplug it" in message.get_content()

    async def delivered() -> Any:
        messages = await hub.messages(conversation["id"])
        out = [m for m in messages if m["id"] == reply["id"]]
        return out and out[0]["delivery"]["state"] == "sent"

    await hub.until(delivered, "the reply is recorded as sent")

    # The customer answers from a client that keeps In-Reply-To, then from one that
    # keeps only References: both land in the same conversation.
    await mailbox.append(
        customer_mail(
            "<c2@example.com>",
            subject="Re: Printer on fire",
            body="It is out now.",
            in_reply_to=ours,
            references=f"<c1@example.com> {ours}",
        ),
        customer_mail(
            "<c3@example.com>",
            subject="Re: Printer on fire",
            body="And smoking.",
            references=f"<c1@example.com> {ours}",
        ),
    )

    async def answered() -> Any:
        return len(await hub.messages(conversation["id"])) == 4

    await hub.until(answered, "both answers joined the conversation")
    texts = [m["text"] for m in await hub.messages(conversation["id"])]
    assert any("It is out now." in text for text in texts)
    assert any("And smoking." in text for text in texts)

    # A stranger citing Ann's thread starts a conversation of their own.
    await mailbox.append(
        customer_mail(
            "<b1@example.net>",
            sender="Bob Other <bob@example.net>",
            subject="Re: Printer on fire",
            body="Me too!",
            in_reply_to="<c1@example.com>",
        )
    )

    async def two_conversations() -> Any:
        return len(await hub.conversations()) == 2

    await hub.until(two_conversations, "the stranger's mail has its own conversation")
    assert len(await hub.messages(conversation["id"])) == 4

    # Our reply bounces: the reply is marked failed with the bounce's reason.
    await mailbox.append(bounce_of(ours, "ann@example.com"))

    async def bounced() -> Any:
        messages = await hub.messages(conversation["id"])
        out = next(m for m in messages if m["id"] == reply["id"])
        return out["delivery"]["state"] == "failed_permanent" and out["delivery"]

    delivery = await hub.until(bounced, "the bounce marks our reply failed")
    assert "User unknown" in delivery["error"]
    # Nothing was received twice along the way.
    total = sum(c["message_count"] for c in await hub.conversations())
    assert total == 5 + 1  # four in Ann's (with our reply), Bob's, the bounce (flagged or not)


async def test_acknowledgements_go_to_people_not_to_auto_replies(
    hub: Hub, mailbox: Mailbox, smtp: CapturingSmtpServer
) -> None:
    config = channel_config(mailbox, smtp, acknowledgement="We got your message.")
    await hub.post("/channels", {"kind": "email", "name": "Support", "config": config})
    await mailbox.append(
        customer_mail(
            "<away@example.net>",
            sender="Carol Away <carol@example.net>",
            subject="Automatic reply: Printer on fire",
            body="I am out of office until Monday.",
            extra="Auto-Submitted: auto-replied",
        ),
        customer_mail("<c1@example.com>"),
    )

    async def both_stored() -> Any:
        return len(await hub.conversations()) == 2

    await hub.until(both_stored, "both mails are stored")
    [ack] = await smtp.wait_for_async(1, timeout=DEADLINE)
    assert ack.rcpt_tos == ("ann@example.com",)
    assert ack.message["Auto-Submitted"] == "auto-replied"
    assert "We got your message." in ack.message.get_content()
    # Ann's second mail in the same hour gets no second acknowledgement.
    await mailbox.append(customer_mail("<c9@example.com>", subject="Another question"))

    async def three() -> Any:
        return len(await hub.conversations()) == 3

    await hub.until(three, "the second question is stored")
    await asyncio.sleep(1.0)  # room for a wrongly queued acknowledgement to go out
    assert len(smtp.messages) == 1
    conversations = await hub.conversations()
    # An acknowledgement is no response: Ann is still waiting for a person.
    anns = [c for c in conversations if c["subject"] == "Printer on fire"]
    assert anns[0]["first_response_at"] is None and anns[0]["waiting_since"] is not None


async def test_wrong_credentials_show_in_health_and_in_the_connection_test(
    hub: Hub, mailbox: Mailbox, smtp: CapturingSmtpServer
) -> None:
    config = channel_config(mailbox, smtp, imap_password="not-the-password")
    channel = await hub.post("/channels", {"kind": "email", "name": "Support", "config": config})

    async def refused() -> Any:
        got = await hub.get(f"/channels/{channel['id']}")
        return got["health"] == "bad_credentials" and got

    shown = await hub.until(refused, "the channel's health shows the refusal")
    assert shown["health_reason"]

    test = await hub.post(f"/channels/{channel['id']}/test", status=200)
    assert test["ok"] is False and test["checked"] is True
    assert set(test["errors"]) == {"imap_password"}
    fixed = await hub.post(
        f"/channels/{channel['id']}/test",
        {"config": {"imap_password": mailbox.password}},
        status=200,
    )
    assert fixed == {"ok": True, "checked": True, "errors": {}}
