"""Customers' languages side by side: Persian and Arabic read right to left, Azerbaijani,
Turkish and Russian left to right, each in the list, the thread and the contact panel,
in the English interface and in the Persian one (where the frame itself is right to
left and the Latin and Cyrillic texts must still read left to right)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from playwright.sync_api import BrowserContext, Page, expect

from inbox.models import Role, User
from tests.ui.harness import BrowserProblems, LiveServer, add_conversation, shot
from timeline.db import SessionFactory
from timeline.models import Contact, Conversation, Message, utcnow

# name, text, the direction they must read in
SAMPLES = {
    "fa": ("مریم احمدی", "سلام، سفارش ۱۲۳ من کی می‌رسد؟", "rtl"),
    "ar": ("فاطمة الزهراء", "مرحبا، أين طلبي رقم 123؟", "rtl"),
    "az": ("Əli Məmmədov", "Salam, sifarişim nə vaxt çatacaq? Çox sağ olun.", "ltr"),
    "tr": ("Şükrü Öztürk", "Merhaba, siparişim ne zaman gelir? Teşekkürler.", "ltr"),
    "ru": ("Юлия Иванова", "Здравствуйте, где мой заказ №123?", "ltr"),
}


def _seed(server: LiveServer, members: tuple[User, ...]) -> dict[str, uuid.UUID]:
    conversations = {
        code: add_conversation(server, channel_name=f"Line {code}", members=members)
        for code in SAMPLES
    }

    async def fill(sessions: SessionFactory) -> None:
        now = utcnow()
        async with sessions() as session:
            for minute, (code, conversation_id) in enumerate(conversations.items()):
                conversation = await session.get(Conversation, conversation_id)
                assert conversation is not None
                contact = await session.get(Contact, conversation.contact_id)
                assert contact is not None
                name, text, _ = SAMPLES[code]
                contact.name = name
                # Every language in the first conversation's thread, one in each other.
                texts = [SAMPLES[c][1] for c in SAMPLES] if minute == 0 else [text]
                for offset, body in enumerate(texts):
                    conversation.last_seq += 1
                    at = now - timedelta(minutes=30 - minute, seconds=-offset)
                    session.add(
                        Message(
                            conversation_id=conversation.id,
                            channel_id=conversation.channel_id,
                            contact_id=conversation.contact_id,
                            direction="in",
                            text=body,
                            sent_at=at,
                            arrived_at=at,
                            seq=conversation.last_seq,
                        )
                    )
                conversation.last_activity_at = now - timedelta(minutes=30 - minute)
            await session.commit()

    server.db(fill)
    return conversations


def _check_page(page: Page, conversations: dict[str, uuid.UUID]) -> None:
    last_of_first = list(SAMPLES)[-1]  # the first conversation's preview is its last message
    for index, (code, conversation_id) in enumerate(conversations.items()):
        name, _, direction = SAMPLES[code]
        row_name = page.locator(f"#conv-{conversation_id}-name")
        expect(row_name).to_have_text(name)
        expect(row_name).to_have_attribute("dir", "auto")
        expect(row_name, f"{code}: list name").to_have_css("direction", direction)
        _, text, direction = SAMPLES[last_of_first if index == 0 else code]
        preview = page.locator("li", has=row_name).locator(".conv__text")
        expect(preview).to_contain_text(text)
        expect(preview).to_have_attribute("dir", "auto")
        expect(preview, f"{code}: list preview").to_have_css("direction", direction)
    # The first conversation holds all five languages, one message each.
    first = next(iter(conversations.values()))
    page.goto(f"/conversations/{first}")
    for code, (_, text, direction) in SAMPLES.items():
        body = page.locator(".msg__text", has_text=text)
        expect(body).to_have_attribute("dir", "auto")
        expect(body, f"{code}: thread").to_have_css("direction", direction)
    panel_name = page.locator(".pane--panel").get_by_text(SAMPLES["fa"][0]).first
    expect(panel_name).to_be_visible()
    expect(panel_name).to_have_css("direction", "rtl")


def test_five_languages_read_in_their_own_direction_in_both_interfaces(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    english = live_server.user(Role.AGENT, name="Sam")
    persian = live_server.user(Role.AGENT, name="Sara", language="fa")
    conversations = _seed(live_server, (english, persian))

    live_server.sign_in(context, english)
    page.goto("/inbox")
    _check_page(page, conversations)
    shot(page, "languages-side-by-side")

    context.clear_cookies()
    live_server.sign_in(context, persian)
    page.goto("/inbox")
    expect(page.locator("body")).to_have_css("direction", "rtl")
    _check_page(page, conversations)
    shot(page, "languages-side-by-side-fa")
