"""The conversation thread and the contact panel in Chromium: messages of every kind,
delivery ticks that change live, Retry, and hostile email content that stays inert and
loads nothing until the agent shows images."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Dialog, Page, expect

from connectors.types import DeliveryState
from inbox.models import User
from tests.ui.harness import (
    BrowserProblems,
    LiveServer,
    add_conversation,
    recording_server,
    shot,
)
from timeline.db import SessionFactory
from timeline.events import publish_committed
from timeline.files import store_blob
from timeline.models import Attachment, Contact, Conversation, Message, TimelineEvent, utcnow
from timeline.outbox import delivery_event
from web.keys import BUS_KEY

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def outside() -> Iterator[tuple[str, list[str]]]:
    with recording_server() as recorded:
        yield recorded


def _fill(
    server: LiveServer, conversation_id: uuid.UUID, agent: User, outside: str
) -> dict[str, uuid.UUID]:
    data_dir = server.settings.data_dir

    async def make(sessions: SessionFactory) -> dict[str, uuid.UUID]:
        now = utcnow()
        async with sessions() as session:
            conversation = await session.get(Conversation, conversation_id)
            assert conversation is not None
            contact = await session.get(Contact, conversation.contact_id)
            assert contact is not None
            contact.name = "Ann <b>Customer</b> \u202eevil"
            contact.timezone = "Asia/Tehran"
            made: dict[str, Message] = {}

            def add(key: str, minutes: int, **values: object) -> Message:
                conversation.last_seq += 1
                message = Message(
                    conversation_id=conversation.id,
                    channel_id=conversation.channel_id,
                    contact_id=conversation.contact_id,
                    sent_at=now - timedelta(minutes=60 - minutes),
                    arrived_at=now - timedelta(minutes=60 - minutes),
                    seq=conversation.last_seq,
                    **values,
                )
                session.add(message)
                made[key] = message
                return message

            add("sms", 1, direction="in", text="سلام، سفارش من کجاست؟ <img src=x onerror=alert(1)>")
            add(
                "email",
                5,
                direction="in",
                subject="Invoice <script>alert(1)</script> \u202egpj.exe",
                text="Please see the invoice.\n\n> On Monday you wrote:\n> old text",
                reply_text="Please see the invoice.",
                html=(
                    '<p>Please see the <a href="https://example.com">invoice</a>.</p>'
                    f'<img data-remote-src="{outside}/track.gif" alt="tracker">'
                    "<p>end</p>"
                ),
            )
            add(
                "note",
                10,
                direction="out",
                kind="note",
                private=True,
                text="Checking with billing",
                author_id=agent.id,
            )
            add(
                "failed",
                20,
                direction="out",
                text="Your order ships today",
                author_id=agent.id,
                delivery_state="failed_permanent",
                delivery_error="21610 Attempt to send to unsubscribed recipient",
            )
            add(
                "sent",
                30,
                direction="out",
                text="Thanks for waiting!",
                author_id=agent.id,
                delivery_state="sent",
            )
            session.add(
                TimelineEvent(
                    contact_id=conversation.contact_id,
                    conversation_id=conversation.id,
                    kind="conversation.status_changed",
                    data={"from": "open", "to": "pending", "by": str(agent.id)},
                    occurred_at=now - timedelta(minutes=15),
                )
            )
            await session.flush()
            digest, size = store_blob(data_dir, PNG)
            session.add(
                Attachment(
                    message_id=made["email"].id,
                    sha256=digest,
                    size=size,
                    content_type="image/png",
                    filename="photo\u202egnp.exe",
                )
            )
            digest, size = store_blob(data_dir, b"%PDF-1.4 hello")
            session.add(
                Attachment(
                    message_id=made["email"].id,
                    sha256=digest,
                    size=size,
                    content_type="application/pdf",
                    filename="<b>report</b>.pdf",
                )
            )
            await session.commit()
            return {key: m.id for key, m in made.items()}

    return server.db(make)


def test_thread_panel_live_ticks_retry_and_inert_email(
    page: Page,
    live_server: LiveServer,
    signed_in: User,
    outside: tuple[str, list[str]],
    problems: BrowserProblems,
) -> None:
    outside_url, fetched = outside
    # Expected, and only in the email's frame: its policy blocks the plain-http image,
    # and its sandbox blocks the harness's own init script.
    problems.allowed += [
        r"Loading the image 'http://127\.0\.0\.1:\d+/track\.gif' violates .*/frame\?images=1",
        r"Blocked script execution in '[^']*/frame(\?images=1)?' because the document's frame"
        r" is sandboxed",
    ]
    conversation_id = add_conversation(live_server, channel_name="Support", members=(signed_in,))
    ids = _fill(live_server, conversation_id, signed_in, outside_url)
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    page.goto(f"/conversations/{conversation_id}")
    thread = page.locator("[data-thread-list]")
    expect(thread.locator(".msg")).to_have_count(5)
    expect(thread.locator(".activity")).to_contain_text("Pending")
    sms = page.locator(f"#message-{ids['sms']}")
    expect(sms.locator(".msg__text")).to_have_text(
        "سلام، سفارش من کجاست؟ <img src=x onerror=alert(1)>"
    )
    expect(sms.locator(".msg__text")).to_have_attribute("dir", "auto")
    expect(sms.locator(".msg__sender")).to_have_text("Ann <b>Customer</b> \u202eevil")
    expect(sms.locator(".msg__local")).to_be_visible()  # the customer's local time
    expect(page.locator(f"#message-{ids['note']}")).to_have_attribute("data-side", "note")
    expect(page.locator(f"#message-{ids['note']} .badge--note")).to_be_visible()

    # The email: subject as text, quoted history folded, attachments with a preview.
    email = page.locator(f"#message-{ids['email']}")
    expect(email.locator(".msg__subject")).to_have_text(
        "Invoice <script>alert(1)</script> \u202egpj.exe"
    )
    expect(email.locator(".msg__text")).to_have_text("Please see the invoice.")
    email.get_by_role("button", name="Show quoted text").click()
    expect(email.locator(".msg__text")).to_contain_text("old text")
    expect(email.locator(".file__preview")).to_have_count(1)
    expect(email.locator(".file__name").nth(1)).to_have_text("<b>report</b>.pdf")
    preview = email.locator(".file__preview")
    expect(preview).to_have_js_property("complete", True)
    expect(preview).to_have_js_property("naturalWidth", 1)

    # Formatted HTML in a sandboxed frame: no scripts, not our origin, nothing remote.
    email.get_by_role("button", name="Show formatted email").click()
    frame_element = email.locator("iframe.msg__frame")
    expect(frame_element).to_have_attribute(
        "sandbox", "allow-popups allow-popups-to-escape-sandbox"
    )
    frame = page.frame_locator(f"#message-{ids['email']} iframe.msg__frame")
    expect(frame.locator("p").last).to_have_text("end")
    assert fetched == []
    with page.expect_response(lambda r: "/frame?images=1" in r.url) as shown:
        email.get_by_role("button", name="Show images").click()
    assert "img-src data: https:" in shown.value.headers["content-security-policy"]
    expect(frame.locator("img[src]")).to_have_count(1)
    assert fetched == []  # http: stays blocked even then; only https images may load

    # Delivery ticks change live (a provider's status callback ends in this event).
    sent = page.locator(f"#message-{ids['sent']} .ticks")
    expect(sent).to_have_attribute("data-ticks", "sent")

    async def delivered() -> None:
        event = delivery_event(ids["sent"], conversation_id, DeliveryState.DELIVERED, None)
        await publish_committed(live_server.app[BUS_KEY], [event])

    live_server.call(delivered)
    expect(sent).to_have_attribute("data-ticks", "delivered")

    # A failed reply shows why, and Retry queues it again.
    failed = page.locator(f"#message-{ids['failed']}")
    expect(failed.locator(".msg__error")).to_have_text(
        "21610 Attempt to send to unsubscribed recipient"
    )
    with page.expect_response(
        lambda r: r.url.endswith(f"/messages/{ids['failed']}/retry")
    ) as retried:
        failed.get_by_role("button", name="Retry").click()
    assert retried.value.status == 200
    assert retried.value.json()["delivery"]["state"] == "queued"

    # The panel: the contact, their identities and timeline.
    panel = page.locator("[data-panel]")
    expect(panel.locator("[data-panel-name]")).to_have_text("Ann <b>Customer</b> \u202eevil")
    expect(panel).to_have_attribute("aria-busy", "false")
    assert dialogs == []
    shot(page, "conversation-thread")
    page.emulate_media(color_scheme="dark")
    shot(page, "conversation-thread-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "conversation-thread-phone")
