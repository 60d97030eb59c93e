"""The composer and the conversation header in Chromium: a reply by SMS through the
Twilio stand-in with a canned response, keyboard only (send, toggle note, resolve),
one message for a double click; assign and resolve from the header; a note's @mention
reaching another agent's browser; "X is viewing" / "X is typing"; screenshots in light,
dark, Persian and at phone width."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, Route, expect
from sqlalchemy import select

from connectors.registry import spec_for
from inbox import canned
from inbox.account_models import ChannelMember
from inbox.canned_models import CannedScope, Notification
from inbox.models import Role, User
from tests.connectors.sms.twilio_standin import TwilioStandin
from tests.ui.harness import (
    BrowserProblems,
    LiveServer,
    add_conversation,
    shot,
    twilio_standin,
)
from timeline.db import SessionFactory
from timeline.models import Channel, Contact, Conversation, Identity, Message, utcnow
from web.keys import RUNTIME_KEY, SECRET_BOX_KEY

ACCOUNT = "AC" + "3" * 32
TOKEN = "twilio-auth-token-for-the-composer"
OURS = "+14155550199"
ANN_PHONE = "+14155550123"


@pytest.fixture
def twilio(live_server: LiveServer) -> Iterator[TwilioStandin]:
    with twilio_standin(live_server, ACCOUNT, TOKEN, OURS) as standin:
        yield standin


def sms_conversation(server: LiveServer, twilio: TwilioStandin, *members: User) -> uuid.UUID:
    """An SMS channel on the stand-in worked by `members`, and Ann's open conversation."""
    config = spec_for("sms").config.model_validate(
        {
            "account_sid": ACCOUNT,
            "auth_token": TOKEN,
            "phone_number": OURS,
            "default_region": "US",
            "api_base_url": twilio.base_url,
        }
    )
    box = server.app[SECRET_BOX_KEY]

    async def make(sessions: SessionFactory) -> uuid.UUID:
        async with sessions() as session, session.begin():
            channel = Channel(
                kind="sms",
                name="Texts",
                config_encrypted=box.encrypt(config.model_dump(mode="json")),
                health="unknown",
            )
            contact = Contact(name="Ann Lee")
            session.add_all([channel, contact])
            await session.flush()
            session.add(Identity(contact_id=contact.id, kind="phone", value=ANN_PHONE))
            conversation = Conversation(contact_id=contact.id, channel_id=channel.id)
            session.add(conversation)
            session.add_all(ChannelMember(channel_id=channel.id, user_id=u.id) for u in members)
            await session.flush()
            return conversation.id

    conversation_id = server.db(make)
    server.call(server.app[RUNTIME_KEY].reload)  # start the channel's connector now
    return conversation_id


def canned_response(server: LiveServer, author: User, code: str, text: str) -> None:
    async def make(sessions: SessionFactory) -> None:
        async with sessions() as session, session.begin():
            reader = await canned.reader_of(session, author)
            await canned.create(
                session,
                reader,
                scope=CannedScope.GLOBAL,
                team_id=None,
                short_code=code,
                title=code.title(),
                text=text,
                now=utcnow(),
            )

    server.db(make)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll something on the server's side (the stand-in's requests) until it holds."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.05)
    return True


def messages(server: LiveServer, conversation_id: uuid.UUID) -> list[Message]:
    async def read(sessions: SessionFactory) -> list[Message]:
        async with sessions() as session:
            found = await session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id, Message.direction == "out")
                .order_by(Message.seq)
            )
            return list(found)

    return server.db(read)


def conversation_row(server: LiveServer, conversation_id: uuid.UUID) -> Conversation:
    async def read(sessions: SessionFactory) -> Conversation:
        async with sessions() as session:
            found = await session.get(Conversation, conversation_id)
            assert found is not None
            return found

    return server.db(read)


def test_sms_reply_with_a_canned_response_by_keyboard_alone(
    page: Page,
    live_server: LiveServer,
    signed_in: User,
    twilio: TwilioStandin,
    problems: BrowserProblems,
) -> None:
    admin = live_server.user(Role.ADMIN, name="Root Admin")
    canned_response(live_server, admin, "greet", "Hi {{contact.first_name | there}}, thanks!")
    canned_response(live_server, admin, "bye", "Bye {{contact.first_name}}")
    conversation = sms_conversation(live_server, twilio, signed_in)
    page.goto(f"/conversations/{conversation}")
    header = page.locator("[data-convhead]")
    expect(header.locator("[data-field=contact]")).to_have_text("Ann Lee")
    expect(header.locator("[data-field=channel]")).to_have_text("Texts")
    channel = page.get_by_label("Send via")
    expect(channel.locator("option:checked")).to_contain_text(ANN_PHONE)
    text = page.locator("#composer-text")

    # "/" opens the canned responses, filtered as one types; Enter inserts one rendered.
    text.focus()
    page.keyboard.type("/gr")
    popup = page.get_by_role("listbox")
    expect(popup.get_by_role("option")).to_have_count(1)
    expect(popup.get_by_role("option")).to_contain_text("/greet")
    shot(page, "composer-canned")
    page.keyboard.press("Enter")
    expect(popup).to_be_hidden()
    expect(text).to_have_value("Hi Ann, thanks!")
    page.keyboard.type(" Your order shipped.")
    page.keyboard.press("Control+Enter")
    expect(text).to_have_value("")

    # The reply went out through the stand-in, and shows in the thread.
    expect(page.locator("[data-thread-list]")).to_contain_text("Your order shipped.")
    [sent] = messages(live_server, conversation)
    assert sent.text == "Hi Ann, thanks! Your order shipped." and not sent.private
    assert wait_for(lambda: len(twilio.messages) == 1)
    assert twilio.messages[0]["to"] == ANN_PHONE
    assert twilio.messages[0]["body"] == "Hi Ann, thanks! Your order shipped."

    # A double click sends once (one Idempotency-Key per message, and a guard).
    text.fill("Only once, please")
    page.locator(".composer__send").dblclick()
    expect(text).to_have_value("")
    page.keyboard.type("Next")  # the composer keeps the focus
    expect(text).to_have_value("Next")
    text.fill("")

    # Alt+N: a private note, which looks different; Ctrl+Enter adds it.
    page.keyboard.press("Alt+N")
    composer = page.locator("[data-composer]")
    expect(composer).to_have_attribute("data-mode", "note")
    expect(page.get_by_role("radio", name="Private note")).to_have_attribute("aria-checked", "true")
    expect(channel).to_be_hidden()
    page.keyboard.type("Customer is a VIP")
    page.keyboard.press("Control+Enter")
    expect(text).to_have_value("")
    sent_texts = [(m.text, m.private) for m in messages(live_server, conversation)]
    assert sent_texts.count(("Only once, please", False)) == 1, sent_texts
    assert ("Customer is a VIP", True) in sent_texts
    page.keyboard.press("Alt+N")
    expect(composer).to_have_attribute("data-mode", "reply")

    # The counter shows what an SMS can carry; a longer reply is stopped before it is sent.
    counter = page.locator("#composer-count")
    text.fill("x" * 1599 + "😀")  # an emoji is one character, as the server counts
    expect(counter).to_have_text("1,600 of 1,600 characters")
    expect(counter).to_have_attribute("data-over", "false")
    text.fill("x" * 1700)
    expect(counter).to_have_attribute("data-over", "true")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#composer-error")).to_have_text(
        "Too long for this channel: at most 1,600 characters."
    )
    expect(text).to_have_attribute("aria-invalid", "true")
    page.keyboard.press("Alt+N")
    expect(counter).to_be_hidden()  # a note goes nowhere: no channel limit
    page.keyboard.press("Alt+N")
    text.fill("")

    # Attachments: named as chosen (dir=auto), sized, removable; more than 10 refused.
    files = page.locator("[data-field=file-input]")
    data = b"\x89PNG" + b"0" * 2044
    png = FilePayload(name="رسید.png", mimeType="image/png", buffer=data)
    files.set_input_files(files=[png])
    chip = page.locator(".file-chip")
    expect(chip).to_contain_text("رسید.png")
    expect(chip.locator(".file-chip__name")).to_have_attribute("dir", "auto")
    expect(page.locator("[data-field=limits]")).to_have_text("2 KB of 18 MB")
    files.set_input_files(
        files=[FilePayload(name=f"{n}.png", mimeType="image/png", buffer=data) for n in range(10)]
    )
    expect(page.locator("#composer-error")).to_have_text("At most 10 files per message.")
    # An SMS cannot carry the file; a private note keeps it.
    text.fill("The receipt")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#composer-error")).to_have_text("This channel cannot send attachments")
    page.keyboard.press("Alt+N")
    page.keyboard.press("Control+Enter")
    expect(chip).to_have_count(0)
    expect(page.locator("[data-thread-list]")).to_contain_text("رسید.png")
    page.keyboard.press("Alt+N")

    # Alt+R resolves; the header follows, and the conversation is resolved for real.
    page.keyboard.press("Alt+R")
    expect(header.locator("[data-field=status]")).to_have_text("Resolved")
    expect(header.get_by_role("button", name="Reopen")).to_be_visible()
    assert conversation_row(live_server, conversation).status == "resolved"
    shot(page, "composer-after-resolve")


def arrive(server: LiveServer, conversation_id: uuid.UUID, text: str) -> None:
    """A customer's message lands (as the ingest path numbers it), without any event."""

    async def write(sessions: SessionFactory) -> None:
        async with sessions() as session, session.begin():
            row = await session.get(Conversation, conversation_id, with_for_update=True)
            assert row is not None
            row.last_seq += 1
            session.add(
                Message(
                    conversation_id=row.id,
                    channel_id=row.channel_id,
                    contact_id=row.contact_id,
                    direction="in",
                    text=text,
                    sent_at=utcnow(),
                    seq=row.last_seq,
                )
            )

    server.db(write)


def notifications_of(server: LiveServer, user: User) -> list[Notification]:
    async def read(sessions: SessionFactory) -> list[Notification]:
        async with sessions() as session:
            return list(
                await session.scalars(select(Notification).where(Notification.user_id == user.id))
            )

    return server.db(read)


def test_header_actions_mentions_and_collision_between_two_agents(
    browser: Browser,
    context: BrowserContext,
    page: Page,
    live_server: LiveServer,
    signed_in: User,
    problems: BrowserProblems,
) -> None:
    problems.allowed.append(r"status of 409 .*/conversations/")  # the guarded resolve
    bea = live_server.user(Role.AGENT, name="Bea Other")
    conversation = add_conversation(live_server, channel_name="Website", members=(signed_in, bea))
    other_context = browser.new_context(
        base_url=live_server.base_url, viewport={"width": 1280, "height": 800}
    )
    problems.watch(other_context)
    live_server.sign_in(other_context, bea)
    try:
        page.goto(f"/conversations/{conversation}")
        header = page.locator("[data-convhead]")
        expect(header.locator("[data-field=contact]")).to_have_text("Ann Customer")
        theirs = other_context.new_page()
        theirs.goto(f"/conversations/{conversation}")

        # Collision: each sees the other viewing, then typing.
        collision = header.locator("[data-field=collision]")
        expect(collision).to_have_text("Bea Other is viewing")
        expect(theirs.locator("[data-field=collision]")).to_have_text("Ada Agent is viewing")
        theirs.locator("#composer-text").press_sequentially("Let me take th")
        expect(collision).to_have_text("Bea Other is typing…")

        # Assign to Bea from the header menu: the API says so, and her header says "You".
        header.get_by_title("Assign", exact=True).click()
        page.get_by_placeholder("Find a person or team").fill("bea")
        header.get_by_role("button", name="Bea Other").click()
        expect(header.locator("[data-field=assignee]")).to_have_text("Bea Other")
        assert conversation_row(live_server, conversation).assignee_id == bea.id
        expect(theirs.locator("[data-field=assignee]")).to_have_text("You")

        # Labels and priority.
        header.get_by_title("Labels", exact=True).click()
        page.get_by_placeholder("Add a label").fill("VIP")
        page.get_by_placeholder("Add a label").press("Enter")
        expect(header.locator("[data-field=labels]")).to_have_text("vip")
        page.keyboard.press("Escape")
        header.get_by_title("Priority", exact=True).click()
        header.get_by_role("button", name="High").click()
        expect(header.locator("[data-field=priority]")).to_have_text("High")
        row = conversation_row(live_server, conversation)
        assert (row.priority, row.status) == ("high", "open")

        # A note mentioning Bea: picked with "@", shown readably, sent as the token; Bea's
        # browser shows the notification as it arrives.
        text = page.locator("#composer-text")
        page.get_by_role("radio", name="Private note").click()
        text.focus()
        page.keyboard.type("Over to you @be")
        expect(page.locator("#composer-popup").get_by_role("option")).to_have_count(1)
        page.keyboard.press("Enter")
        expect(text).to_have_value("Over to you @Bea Other ")
        page.keyboard.type("please call her back")
        shot(page, "composer-note-mention")
        page.keyboard.press("Control+Enter")
        expect(text).to_have_value("")
        toasts = theirs.locator(".toast")
        expect(toasts.first).to_contain_text("Ada Agent assigned a conversation to you")
        toast = toasts.filter(has_text="mentioned you")
        expect(toast).to_contain_text("Ada Agent mentioned you in a note")
        expect(toast.get_by_role("link", name="Open")).to_have_attribute(
            "href", f"/conversations/{conversation}"
        )
        [note] = [m for m in messages(live_server, conversation) if m.private]
        assert note.text == f"Over to you @[Bea Other](user:{bea.id}) please call her back"
        kinds = sorted(n.kind for n in notifications_of(live_server, bea))
        assert kinds == ["assigned", "mention"]
        shot(theirs, "composer-mention-toast")

        # Resolve after a message arrived unseen: refused with a notice, then done.
        arrive(live_server, conversation, "Wait, one more thing")
        header.get_by_role("button", name="Resolve", exact=True).click()
        expect(header.locator("[data-field=notice]")).to_have_text(
            "A new message arrived. Have a look at it, then try again."
        )
        assert conversation_row(live_server, conversation).status == "open"
        header.get_by_role("button", name="Resolve", exact=True).click()
        expect(header.locator("[data-field=status]")).to_have_text("Resolved")
        expect(theirs.locator("[data-field=status]")).to_have_text("Resolved")
        assert conversation_row(live_server, conversation).status == "resolved"
        header.get_by_role("button", name="Reopen").click()
        expect(header.locator("[data-field=status]")).to_have_text("Open")

        # Snooze until tomorrow 9:00 (the browser's time zone).
        header.locator("summary", has_text="Snooze").click()
        header.get_by_role("button", name="Until tomorrow, 9:00").click()
        expect(header.locator("[data-field=status]")).to_contain_text("Snoozed until")
        row = conversation_row(live_server, conversation)
        assert row.status == "snoozed" and row.snoozed_until is not None
        assert row.snoozed_until.replace(tzinfo=None) > utcnow().replace(tzinfo=None)

        # The shortcuts' help, opened with "?".
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("?")
        expect(page.get_by_role("group", name="Keyboard shortcuts")).to_be_visible()
        shot(page, "composer-shortcuts")
    finally:
        other_context.close()


def test_a_module_that_runs_late_still_hears_who_is_viewing(
    browser: Browser,
    page: Page,
    live_server: LiveServer,
    signed_in: User,
    problems: BrowserProblems,
) -> None:
    """The current viewers are sent once, as the socket opens. The header's module is a
    separate script: held back here (its download delayed), it must still get them,
    so the socket waits for the page's scripts before it opens."""
    bea = live_server.user(Role.AGENT, name="Bea Other")
    conversation = add_conversation(live_server, channel_name="Website", members=(signed_in, bea))
    page.goto(f"/conversations/{conversation}")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "open")
    other_context = browser.new_context(
        base_url=live_server.base_url, viewport={"width": 1280, "height": 800}
    )
    problems.watch(other_context)
    live_server.sign_in(other_context, bea)

    def late(route: Route) -> None:
        time.sleep(1.5)  # long enough for the hello and the viewers to arrive first
        route.continue_()

    other_context.route("**/js/conversation/actions.js*", late)
    try:
        theirs = other_context.new_page()
        theirs.goto(f"/conversations/{conversation}")
        expect(theirs.locator("[data-field=collision]")).to_have_text("Ada Agent is viewing")
        expect(page.locator("[data-convhead] [data-field=collision]")).to_have_text(
            "Bea Other is viewing"
        )
    finally:
        other_context.close()


def test_persian_dark_phone_and_next_conversation(
    context: BrowserContext, live_server: LiveServer, twilio: TwilioStandin
) -> None:
    reza = live_server.user(Role.AGENT, name="رضا کریمی", language="fa")
    live_server.sign_in(context, reza)
    first = sms_conversation(live_server, twilio, reza)
    second = add_conversation(live_server, channel_name="وب‌سایت", members=(reza,))
    page = context.new_page()
    page.goto(f"/conversations/{first}")

    # Persian, right to left: the composer's strings from the catalog, menus inside the pane.
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    composer = page.locator("[data-composer]")
    expect(composer.locator("[data-field=send-label]")).to_have_text("فرستادن")
    expect(page.get_by_label("فرستادن با").locator("option:checked")).to_contain_text(ANN_PHONE)
    page.get_by_title("واگذاری", exact=True).click()
    expect(page.get_by_role("button", name="رضا کریمی (شما)")).to_be_visible()
    panel = page.locator("[data-menu=assign] .dropdown__panel").bounding_box()
    pane = page.locator(".pane--conversation").bounding_box()
    assert panel and pane and pane["x"] <= panel["x"] <= pane["x"] + pane["width"] - panel["width"]
    shot(page, "composer-fa")
    page.keyboard.press("Escape")

    # Dark, a note being written: the composer stays in view at the bottom of the pane.
    page.emulate_media(color_scheme="dark")
    page.keyboard.press("Alt+N")
    expect(composer).to_have_attribute("data-mode", "note")
    page.locator("#composer-text").fill("این مشتری ویژه است")
    box = composer.bounding_box()
    assert box and box["y"] + box["height"] <= 800
    shot(page, "composer-dark")

    # K and J open the previous and next conversation of the view, newest first (outside
    # a text field).
    page.locator("#composer-text").fill("")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("k")
    page.wait_for_url(f"**/conversations/{second}?view=all")
    page.keyboard.press("j")
    page.wait_for_url(f"**/conversations/{first}?view=all")

    # A phone: the header and composer fit the width.
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/conversations/{first}")
    send = composer.locator(".composer__send")
    expect(send).to_be_in_viewport()
    send_box = send.bounding_box()
    assert send_box and send_box["x"] >= 0 and send_box["x"] + send_box["width"] <= 390
    shot(page, "composer-phone")
