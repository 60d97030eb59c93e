"""The inbox's conversation list in Chromium: an SMS arriving live (with the counts), a
channel the agent cannot see staying out, bulk resolve; hostile names and previews
staying inert and laid out, the keyboard, search; light, dark, Persian and phone."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

import aiohttp
from playwright.sync_api import BrowserContext, Page, expect

from connectors.registry import spec_for
from inbox.account_models import ChannelMember
from inbox.models import User
from tests.connectors.sms.twilio_standin import incoming_form, post_webhook
from tests.ui.harness import BrowserProblems, LiveServer, shot
from timeline.db import SessionFactory
from timeline.models import Channel, Contact, Conversation, Identity, Message, utcnow
from web.keys import RUNTIME_KEY, SECRET_BOX_KEY

ACCOUNT = "AC" + "2" * 32
TOKEN = "twilio-token-of-the-inbox-test"
OURS = "+14155550199"
ANN = "+14155550100"
BOB = "+14155550111"
HOSTILE = '<img src=x onerror="window.__pwned=1">'
RTL_OVERRIDE = "\u202eevil\u202c.exe Contact"
LONG = "Very long name " * 20


def sms_channel(server: LiveServer, name: str, members: Sequence[User] = ()) -> uuid.UUID:
    """An SMS channel (webhooks signed with TOKEN) that `members` work, served at once."""
    config = spec_for("sms").config.model_validate(
        {"account_sid": ACCOUNT, "auth_token": TOKEN, "phone_number": OURS}
    )

    async def make(sessions: SessionFactory) -> uuid.UUID:
        async with sessions() as session:
            channel = Channel(
                kind="sms",
                name=name,
                config_encrypted=server.app[SECRET_BOX_KEY].encrypt(config.model_dump(mode="json")),
                health="unknown",
            )
            session.add(channel)
            await session.flush()
            session.add_all(ChannelMember(channel_id=channel.id, user_id=u.id) for u in members)
            await session.commit()
            return channel.id

    channel_id = server.db(make)
    server.call(server.app[RUNTIME_KEY].reload_logged)
    return channel_id


def text_in(server: LiveServer, channel_id: uuid.UUID, sender: str, body: str) -> None:
    """An SMS from `sender`, posted to the channel's webhook signed as Twilio signs it."""

    async def post() -> None:
        async with aiohttp.ClientSession(base_url=server.base_url) as session:
            response = await post_webhook(
                session,
                f"/webhooks/twilio/{channel_id}",
                public_url=server.base_url,
                auth_token=TOKEN,
                params=incoming_form(ACCOUNT, sender, OURS, body),
            )
            assert response.status == 200, await response.text()

    server.call(post)


def thread(
    server: LiveServer,
    channel_id: uuid.UUID,
    name: str | None,
    texts: Sequence[str],
    *,
    identity: str | None = None,
    labels: Sequence[str] = (),
    priority: str = "none",
) -> uuid.UUID:
    """A contact and an open conversation with `texts` from them, on `channel_id`."""
    from inbox.workflow_models import ConversationLabel

    async def make(sessions: SessionFactory) -> uuid.UUID:
        async with sessions() as session:
            contact = Contact(name=name)
            session.add(contact)
            await session.flush()
            if identity:
                session.add(Identity(contact_id=contact.id, kind="email", value=identity))
            now = utcnow()
            conversation = Conversation(
                contact_id=contact.id,
                channel_id=channel_id,
                last_activity_at=now,
                waiting_since=now,
                last_seq=len(texts),
                message_count=len(texts),
                priority=priority,
            )
            session.add(conversation)
            await session.flush()
            for seq, text in enumerate(texts, 1):
                session.add(
                    Message(
                        conversation_id=conversation.id,
                        channel_id=channel_id,
                        contact_id=contact.id,
                        direction="in",
                        text=text,
                        sent_at=now,
                        seq=seq,
                    )
                )
            session.add_all(
                ConversationLabel(conversation_id=conversation.id, label=label) for label in labels
            )
            await session.commit()
            return conversation.id

    return server.db(make)


def rows(page: Page) -> list[str]:
    return page.locator(".conv__name").all_text_contents()


def test_an_sms_arrives_live_and_bulk_resolve(
    page: Page, live_server: LiveServer, signed_in: User
) -> None:
    texts = sms_channel(live_server, "Texts", members=(signed_in,))
    theirs = sms_channel(live_server, "Someone else's texts")
    page.goto("/inbox")
    expect(page.locator("[data-inbox]")).to_have_attribute("data-state", "ready")
    expect(page.get_by_text("No conversations here")).to_be_visible()
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "open")
    count = page.locator('[data-count-for="all"]')
    expect(count).to_have_text("")

    text_in(live_server, texts, ANN, "Hi, has my order shipped?")
    row = page.locator(".conv").filter(has_text=ANN)
    expect(row).to_contain_text("Hi, has my order shipped?")
    expect(row.locator(".conv__unread")).to_have_text("1")
    expect(count).to_have_text("1")
    expect(page.locator(f'[data-count-for="channel:{texts}"]')).to_have_text("1")
    expect(page.locator('[data-count-for="unassigned"]')).to_have_text("1")

    # A text on a channel the agent does not work never shows, live or listed; the next
    # one on theirs does, on top, and the first moves up again when Ann writes.
    text_in(live_server, theirs, "+14155550122", "Secret of another team")
    text_in(live_server, texts, BOB, "Bob here")
    expect(page.locator(".conv__name")).to_have_text([BOB, ANN])
    text_in(live_server, texts, ANN, "Any news?")
    expect(page.locator(".conv__name")).to_have_text([ANN, BOB])
    expect(page.locator(".conv").first).to_contain_text("Any news?")
    expect(count).to_have_text("2")
    expect(page.locator(".pane--list")).not_to_contain_text("Secret of another team")
    page.reload()
    expect(page.locator(".conv__name")).to_have_text([ANN, BOB])
    expect(page.locator(".pane--list")).not_to_contain_text("Secret of another team")
    expect(page.locator(".sidebar")).not_to_contain_text("Someone else's texts")
    shot(page, "inbox-list")

    # Longest waiting first: Bob's wait started after Ann's.
    page.get_by_label("Sort").select_option("waiting")
    expect(page.locator(".conv__name")).to_have_text([ANN, BOB])
    assert "sort=waiting" in page.url

    # Bulk: select both, resolve; they leave the Open tab and the counts drop.
    for name in (ANN, BOB):
        page.get_by_role("checkbox", name=f"Select the conversation with {name}").check()
    bulk = page.get_by_role("region", name="Selected conversations")
    expect(bulk).to_contain_text("2 selected")
    shot(page, "inbox-bulk")
    bulk.get_by_role("button", name="Assign to me").click()
    expect(page.get_by_role("status").filter(has_text="2 changed.")).to_be_visible()
    expect(page.locator(".conv__assignee")).to_have_count(2)
    expect(page.locator('[data-count-for="mine"]')).to_have_text("2")
    expect(page.locator('[data-count-for="unassigned"]')).to_have_text("")
    for name in (ANN, BOB):
        page.get_by_role("checkbox", name=f"Select the conversation with {name}").check()
    bulk.get_by_text("Assign to…").click()
    expect(bulk.get_by_role("button", name="Ada Agent")).to_be_focused()
    bulk.get_by_text("Label", exact=True).click()
    bulk.get_by_placeholder("Label to add").fill("Follow-up")
    bulk.get_by_role("button", name="Add label").click()
    expect(page.locator(".chip--label")).to_have_text(["follow-up", "follow-up"])
    for name in (ANN, BOB):
        page.get_by_role("checkbox", name=f"Select the conversation with {name}").check()
    bulk.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status").filter(has_text="2 changed.")).to_be_visible()
    expect(page.locator(".conv")).to_have_count(0)
    expect(count).to_have_text("")
    expect(bulk).to_be_hidden()
    page.get_by_role("button", name="Resolved", exact=True).click()
    expect(page.locator(".conv__name")).to_have_count(2)
    expect(page.locator('[data-count-for="all"]')).to_have_text("2")
    assert "status=resolved" in page.url


def test_hostile_text_keyboard_search_and_looks(
    page: Page,
    context: BrowserContext,
    live_server: LiveServer,
    signed_in: User,
    problems: BrowserProblems,
) -> None:
    channel = sms_channel(live_server, "Texts", members=(signed_in,))
    hidden = sms_channel(live_server, "Not theirs")
    thread(live_server, hidden, "Sale 50% hidden", ["order_7 hidden"])
    thread(live_server, channel, "Sale 500 off", ["orderX7 please"], identity="sale500@example.com")
    thread(live_server, channel, "Sale 50% off", ["order_7 please"], labels=["billing", "vip"])
    thread(
        live_server, channel, "Ольга Смирнова", ["Здравствуйте, где мой заказ?"], priority="high"
    )
    thread(live_server, channel, "مریم رضایی", ["سلام، سفارش من کجاست؟"], labels=["پیگیری"])
    thread(live_server, channel, LONG, ["word " * 400], labels=["x" * 50])
    thread(live_server, channel, RTL_OVERRIDE, [f"\u202e{HOSTILE} gnp.exe"])
    thread(live_server, channel, HOSTILE, [HOSTILE + "<script>window.__pwned=2</script>"])

    page.goto("/inbox")
    expect(page.locator(".conv")).to_have_count(7)
    # Markup in names and texts is text: no element made, nothing run, nothing loaded.
    expect(page.locator(".conv__name").first).to_have_text(HOSTILE)
    expect(page.locator(".conv__text").first).to_have_text(
        HOSTILE + "<script>window.__pwned=2</script>"
    )
    assert page.locator(".pane--list img, .pane--list script").count() == 0
    assert page.evaluate("window.__pwned") is None
    # Every customer string is isolated (dir=auto) and laid out on its lines.
    assert page.locator(".conv__name:not([dir=auto]), .conv__text:not([dir=auto])").count() == 0
    list_box = page.locator(".conv-list").bounding_box()
    assert list_box is not None
    for row in page.locator(".conv").all():
        box = row.bounding_box()
        assert box is not None and box["height"] < 110, box
        assert (
            box["x"] >= list_box["x"]
            and box["x"] + box["width"] <= list_box["x"] + list_box["width"] + 1
        )
        time = row.locator(".conv__time").bounding_box()
        assert time is not None and time["x"] + time["width"] <= box["x"] + box["width"]
    # The override stays inside its name: the row's time still reads left to right after it.
    override = page.locator(".conv").filter(has=page.locator(".conv__name", has_text="evil"))
    name_box = override.locator(".conv__name").bounding_box()
    time_box = override.locator(".conv__time").bounding_box()
    assert name_box and time_box and name_box["x"] < time_box["x"]
    expect(page.locator(".conv").filter(has_text="Ольга")).to_contain_text("High priority")

    # The keyboard: j/k move, x selects, Enter opens.
    page.locator("body").press("j")
    expect(page.locator(".conv__link").nth(0)).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    third = page.locator(".conv").nth(2)
    expect(third.locator(".conv__link")).to_be_focused()
    page.keyboard.press("x")
    expect(third.locator(".conv__check")).to_be_checked()
    expect(page.get_by_role("region", name="Selected conversations")).to_contain_text("1 selected")
    page.keyboard.press("k")
    page.keyboard.press("x")
    expect(page.get_by_role("region", name="Selected conversations")).to_contain_text("2 selected")
    page.keyboard.press("x")
    expect(page.get_by_role("region", name="Selected conversations")).to_contain_text("1 selected")
    second_id = page.locator(".conv").nth(1).get_attribute("data-id")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/conversations/{second_id}?view=all")
    expect(page.locator(f'.conv[data-id="{second_id}"] .conv__link')).to_have_attribute(
        "aria-current", "page"
    )

    # Search: "/" focuses it; % and _ are plain characters; the hidden channel stays out.
    page.goto("/inbox")
    expect(page.locator(".conv")).to_have_count(7)
    page.locator("body").press("/")
    search = page.get_by_role("searchbox", name="Search contacts and messages")
    expect(search).to_be_focused()
    search.fill("50%")
    results = page.locator("[data-search-results]")
    expect(results.locator("[data-search-list=contacts] .hit__title")).to_have_text(
        ["Sale 50% off"]
    )
    expect(page.locator(".conv-list")).to_be_hidden()
    search.fill("ORDER_7")
    expect(results.locator("[data-search-list=messages] .hit")).to_have_count(1)
    expect(results.locator("[data-search-list=messages]")).to_contain_text("order_7 please")
    expect(results.locator("mark")).to_have_text("order_7")
    shot(page, "inbox-search")
    search.fill("sale500@")
    expect(results.locator("[data-search-list=contacts] .hit__title")).to_have_text(
        ["Sale 500 off"]
    )
    results.locator("a.hit").first.click()
    page.wait_for_url(re.compile(r"/conversations/[0-9a-f-]+\?view=all$"))
    page.goto("/inbox")
    search.fill("nothing like this")
    expect(results).to_contain_text("Nothing matches")
    search.press("Escape")
    expect(page.locator(".conv")).to_have_count(7)

    # Dark, phone width, Persian.
    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator(".conv")).to_have_count(7)
    shot(page, "inbox-list-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator(".conv")).to_have_count(7)
    shot(page, "inbox-list-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    async def persian(sessions: SessionFactory) -> None:
        async with sessions() as session:
            user = await session.get(User, signed_in.id)
            assert user is not None
            user.language = "fa"
            await session.commit()

    live_server.db(persian)
    page.reload()
    expect(page.locator(".conv")).to_have_count(7)
    expect(page.get_by_role("button", name="حل‌شده", exact=True)).to_be_visible()
    expect(page.locator(".conv").filter(has_text="Ольга")).to_contain_text("اولویت بالا")
    list_box = page.locator(".pane--list").bounding_box()
    row = page.locator(".conv").first
    avatar = row.locator(".conv__pick").bounding_box()
    time = row.locator(".conv__time").bounding_box()
    assert list_box and avatar and time and avatar["x"] > time["x"]  # right to left
    shot(page, "inbox-list-fa")
