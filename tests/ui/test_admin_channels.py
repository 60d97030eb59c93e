"""The channels screen (issue 11 item 1), in Chromium: an admin connects a mailbox on the
test Dovecot (a wrong IMAP password is marked on its field, before and after saving), a
Twilio number on the Twilio stand-in (its webhook URLs shown and copied), a Telegram bot
on the Bot API stand-in (its name shown before it can be connected) and a web form; the
list shows each with its health, and follows it live (a bot token revoked while the list
is open); a channel is paused and resumed, another deleted; an
agent is refused. Then a channel's page in Persian on PostgreSQL: renamed, paused, deleted.
Screenshots of the list (light, dark, phone) and of each connect form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from inbox.models import Role
from tests.connectors.email.conftest import Mailbox
from tests.connectors.email.conftest import dovecot as dovecot
from tests.connectors.email.smtp_server import CapturingSmtpServer
from tests.connectors.sms.twilio_standin import TwilioStandin
from tests.connectors.telegram.bot_api_standin import TOKEN as BOT_TOKEN
from tests.connectors.telegram.bot_api_standin import BotApiStandIn, running
from tests.services import Dovecot
from tests.ui.harness import BrowserProblems, LiveServer, shot, twilio_standin
from timeline.db import SessionFactory
from timeline.models import Channel

__all__ = ["dovecot"]  # a fixture, used by its name

ACCOUNT = "AC" + "5" * 32
TWILIO_TOKEN = "twilio-auth-token-for-the-channels-screen"
OURS = "+14155550188"
TEXT_UPDATE = {
    "update_id": 700,
    "message": {
        "message_id": 1,
        "date": 1767225600,
        "chat": {"id": 4242, "type": "private", "first_name": "Tara"},
        "from": {"id": 4242, "is_bot": False, "first_name": "Tara"},
        "text": "Hello?",
    },
}


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    """A new, empty mailbox on the test Dovecot."""
    name = f"u{uuid.uuid4().hex[:12]}"
    password = uuid.uuid4().hex
    dovecot.add_user(name, password)
    return Mailbox(dovecot, name, password)


@pytest.fixture
def smtp() -> Iterator[CapturingSmtpServer]:
    with CapturingSmtpServer() as server:
        yield server


@pytest.fixture
def twilio(live_server: LiveServer) -> Iterator[TwilioStandin]:
    with twilio_standin(live_server, ACCOUNT, TWILIO_TOKEN, OURS) as standin:
        yield standin


@pytest.fixture
def bot_api(live_server: LiveServer) -> Iterator[BotApiStandIn]:
    """The Bot API stand-in, served on the live server's loop."""
    serving = running(BotApiStandIn())
    standin = live_server.call(serving.__aenter__)

    async def stop() -> None:
        await serving.__aexit__(None, None, None)

    try:
        yield standin
    finally:
        live_server.call(stop)


def stored(server: LiveServer, name: str) -> Channel:
    async def read(sessions: SessionFactory) -> Channel:
        async with sessions() as session:
            return (await session.scalars(select(Channel).where(Channel.name == name))).one()

    return server.db(read)


def snap(page: Page, name: str) -> None:
    """A full-page screenshot from the top (the sticky top bar stays where it belongs)."""
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, name)


def field_error(page: Page, key: str) -> str:
    return page.locator(f"#cf-{key}-error").inner_text()


def test_an_admin_connects_each_kind_pauses_resumes_and_deletes(
    page: Page,
    context: BrowserContext,
    live_server: LiveServer,
    problems: BrowserProblems,
    mailbox: Mailbox,
    smtp: CapturingSmtpServer,
    twilio: TwilioStandin,
    bot_api: BotApiStandIn,
) -> None:
    admin = live_server.user(Role.ADMIN, name="Ida Admin")
    live_server.sign_in(context, admin)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.base_url)

    # No channel yet: the four kinds to connect.
    page.goto("/settings/channels")
    expect(page.get_by_role("heading", name="Connect your first channel")).to_be_visible()
    expect(page.locator(".channel-kind")).to_have_count(4)
    page.get_by_role("link", name=re.compile("^Email")).click()
    page.wait_for_url("**/settings/channels/new/email")

    # Email: the wrong IMAP password is marked on its field; the right one works.
    page.locator("#cf-name").fill("Support mailbox")
    page.locator("#cf-from_address").fill("support@example.org")
    page.locator("#cf-from_name").fill("Example Support")
    page.locator("#cf-imap_host").fill("127.0.0.1")
    page.select_option("#cf-imap_security", "none")
    page.locator("#cf-imap_port").fill(str(mailbox.server.port))
    page.locator("#cf-imap_username").fill(mailbox.user)
    page.locator("#cf-imap_password").fill("not-the-password")
    page.locator("#cf-smtp_host").fill(smtp.host)
    page.select_option("#cf-smtp_security", "none")
    page.locator("#cf-smtp_port").fill(str(smtp.port))
    snap(page, "channels-connect-email")
    page.get_by_role("button", name="Test connection").click()
    notice = page.locator("#form-notice")
    expect(notice).to_have_text("The connection failed. Check the fields marked.")
    expect(page.locator("#cf-imap_password-error")).to_be_visible()
    expect(page.locator("#cf-imap_password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#cf-imap_password")).to_be_focused()
    for key in ("imap_host", "imap_username", "smtp_host"):
        expect(page.locator(f"#cf-{key}-error")).to_be_hidden()
    snap(page, "channels-connect-email-wrong-password")
    page.locator("#cf-imap_password").fill(mailbox.password)
    page.get_by_role("button", name="Test connection").click()
    expect(notice).to_have_text("The connection works.")
    expect(page.locator("#cf-imap_password-error")).to_be_hidden()
    expect(page.locator("#cf-imap_password")).not_to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_url(re.compile(r"/settings/channels/[0-9a-f-]{36}\?connected=1$"))
    expect(page.get_by_text("The channel is connected.")).to_be_visible()
    expect(page.locator("#webhook-urls")).to_have_count(0)  # a mailbox is polled
    # After saving: the password shows as stored; a wrong one typed is marked; left
    # empty, the stored one is tested and kept.
    password = page.locator("#cf-imap_password")
    expect(password).to_have_value("")
    expect(password).to_have_attribute("placeholder", "Stored. Type a new one to replace it.")
    password.fill("wrong-again")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#cf-imap_password-error")).to_be_visible()
    assert "refused" in field_error(page, "imap_password")
    snap(page, "channels-email-page-wrong-password")
    password.fill("")
    page.get_by_role("button", name="Test connection").click()
    expect(notice).to_have_text("The connection works.")
    email = stored(live_server, "Support mailbox")
    assert email.kind == "email" and not email.paused

    # Twilio: account, token, number; then the webhook URLs to paste, with copy buttons.
    page.goto("/settings/channels/new")
    snap(page, "channels-new")
    page.get_by_role("link", name=re.compile("^SMS")).click()
    page.locator("#cf-name").fill("Text messages")
    page.locator("#cf-account_sid").fill(ACCOUNT)
    page.locator("#cf-auth_token").fill("a-wrong-token")
    page.locator("#cf-phone_number").fill(OURS)
    page.get_by_text("Advanced").click()
    page.locator("#cf-api_base_url").fill(twilio.base_url)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#cf-auth_token-error")).to_be_visible()
    page.locator("#cf-auth_token").fill(TWILIO_TOKEN)
    page.get_by_role("button", name="Test connection").click()
    expect(notice).to_have_text("The connection works.")
    snap(page, "channels-connect-sms")
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_url(re.compile(r"/settings/channels/[0-9a-f-]{36}\?connected=1$"))
    sms_id = page.url.split("/")[-1].split("?")[0]
    expect(page.get_by_text("Now paste its webhook URLs into Twilio.")).to_be_visible()
    inbound = f"{live_server.base_url}/webhooks/twilio/{sms_id}"
    expect(page.locator("#inbound-url")).to_have_text(inbound)
    expect(page.locator("#status-url")).to_have_text(f"{inbound}/status")
    page.locator("[data-copy=inbound-url]").click()
    expect(page.locator("[data-copy=inbound-url]")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == inbound
    page.locator("[data-copy=status-url]").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"{inbound}/status"
    snap(page, "channels-sms-webhooks")

    # Telegram: Connect stays off until the token's bot is shown.
    page.goto("/settings/channels/new/telegram")
    connect = page.get_by_role("button", name="Connect", exact=True)
    expect(connect).to_be_disabled()
    page.locator("#cf-name").fill("Telegram")
    page.get_by_text("Advanced").click()
    page.locator("#cf-api_base_url").fill(bot_api.base_url)
    page.locator("#cf-bot_token").fill("42:" + "z" * 35)
    page.get_by_role("button", name="Check token").click()
    expect(page.locator("#cf-bot_token-error")).to_contain_text("Unauthorized")
    expect(page.locator("#bot-card")).to_be_hidden()
    expect(connect).to_be_disabled()
    page.locator("#cf-bot_token").fill(BOT_TOKEN)
    page.get_by_role("button", name="Check token").click()
    card = page.locator("#bot-card")
    expect(card).to_be_visible()
    expect(card.locator("[data-bot-name]")).to_have_text("Stand-in")
    expect(card.locator("[data-bot-username]")).to_have_text("@standin_bot")
    expect(connect).to_be_enabled()
    expect(connect).to_have_class(re.compile(r"\bbutton--primary\b"))
    snap(page, "channels-connect-telegram")
    page.locator("#cf-bot_token").fill(BOT_TOKEN + "x")  # changed: confirm again
    expect(connect).to_be_disabled()
    expect(card).to_be_hidden()
    page.locator("#cf-bot_token").fill(BOT_TOKEN)
    page.get_by_role("button", name="Check token").click()
    expect(connect).to_be_enabled()
    connect.click()
    page.wait_for_url(re.compile(r"/settings/channels/[0-9a-f-]{36}\?connected=1$"))
    assert [c.params for c in bot_api.calls_of("getMe")][-1] == {}
    assert bot_api.calls_of("getMe")[-1].token == BOT_TOKEN

    # A web form channel: where its forms may be embedded.
    page.goto("/settings/channels/new/webform")
    page.locator("#cf-name").fill("Website")
    page.locator("#cf-allowed_origins").fill("https://www.example.com\nhttps://shop.example.com")
    expect(page.get_by_role("button", name="Test connection")).to_have_count(0)
    snap(page, "channels-connect-webform")
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_url(re.compile(r"/settings/channels/[0-9a-f-]{36}\?connected=1$"))
    expect(page.get_by_role("link", name="Open Web forms")).to_have_attribute(
        "href", "/settings/forms"
    )

    # The list: every channel with its kind, health and state.
    page.goto("/settings/channels")
    rows = page.locator(".channel-row")
    expect(rows).to_have_count(4)
    names = rows.locator(".channel-name__link").all_inner_texts()
    assert names == ["Support mailbox", "Text messages", "Telegram", "Website"]
    expect(rows.nth(0)).to_contain_text("support@example.org")
    expect(rows.nth(1)).to_contain_text(OURS)
    expect(rows.nth(2)).to_contain_text("Long polling")
    expect(rows.nth(3)).to_contain_text("https://www.example.com, https://shop.example.com")
    expect(rows.nth(3).locator("[data-health]")).to_have_text("Ready")
    for index in range(4):
        expect(rows.nth(index).locator(".when-active.badge")).to_have_text("Active")
    snap(page, "channels-list")

    # Health follows live: the bot's token is revoked while the list is open. The update
    # fed ends the poll in flight; the next poll is refused.
    page.evaluate("window.stillTheSamePage = true")
    bot_row = rows.nth(2)

    async def revoke() -> None:
        bot_api.tokens.clear()
        bot_api.feed(TEXT_UPDATE)

    live_server.call(revoke)
    expect(bot_row.locator("[data-health]")).to_have_text("Credentials refused")
    expect(bot_row.locator(".channel-reason")).to_contain_text("Unauthorized")
    assert stored(live_server, "Telegram").health == "bad_credentials"
    assert page.evaluate("window.stillTheSamePage") is True
    bot_api.tokens.add(BOT_TOKEN)

    # Pause and resume the bot, from the list.
    bot_row.get_by_role("button", name="Pause Telegram").click()
    expect(bot_row).to_have_attribute("data-paused", "true")
    expect(bot_row.locator(".badge.when-paused")).to_be_visible()
    expect(bot_row.get_by_role("button", name="Resume Telegram")).to_be_focused()
    assert stored(live_server, "Telegram").paused
    page.reload()
    expect(bot_row).to_have_attribute("data-paused", "true")
    expect(bot_row.locator(".badge.when-paused")).to_have_text("Paused")
    bot_row.get_by_role("button", name="Resume Telegram").click()
    expect(bot_row).to_have_attribute("data-paused", "false")
    assert not stored(live_server, "Telegram").paused

    page.emulate_media(color_scheme="dark")
    snap(page, "channels-list-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    snap(page, "channels-list-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    # Delete the web form channel, after the confirmation.
    rows.nth(3).get_by_role("link", name="Edit Website").click()
    page.get_by_role("button", name="Delete channel").click()
    dialog = page.locator("#delete-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete Website?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Delete channel").click()
    dialog.get_by_role("button", name="Delete").click()
    page.wait_for_url("**/settings/channels?deleted=1")
    expect(page.get_by_text("The channel was deleted.")).to_be_visible()
    expect(page.locator(".channel-row")).to_have_count(3)

    # An agent may not open the screen.
    problems.allowed.append(r"status of 403")
    agent = live_server.user(Role.AGENT, name="Ada Agent")
    context.clear_cookies()
    live_server.sign_in(context, agent)
    for path in (
        "/settings/channels",
        "/settings/channels/new/email",
        f"/settings/channels/{sms_id}",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 403, path


@pytest.mark.parametrize("ui_database_url", ["postgresql"], indirect=True)
def test_a_channels_page_in_persian_on_postgresql(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    problems.allowed.append(r"status of 422")  # the bad origin, refused by the API
    admin = live_server.user(Role.ADMIN, name="Leila", language="fa")
    live_server.sign_in(context, admin)
    page.goto("/settings/channels/new/webform")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    page.locator("#cf-name").fill("فرم سایت")
    page.locator("form#channel-form [type=submit]").click()
    page.wait_for_url(re.compile(r"/settings/channels/[0-9a-f-]{36}\?connected=1$"))
    expect(page.get_by_text("کانال وصل شد.")).to_be_visible()

    # Rename it and limit its origins; a bad origin is marked on its field.
    page.locator("#cf-name").fill("فرم تماس")
    page.locator("#cf-allowed_origins").fill("not an origin")
    page.locator("form#channel-form [type=submit]").click()
    expect(page.locator("#cf-allowed_origins-error")).to_be_visible()
    page.locator("#cf-allowed_origins").fill("https://www.example.ir")
    page.locator("form#channel-form [type=submit]").click()
    expect(page.locator("#form-notice")).to_have_text("ذخیره شد.")
    expect(page.locator("[data-channel-title]")).to_have_text("فرم تماس")
    expect(page.locator("#cf-allowed_origins-error")).to_be_hidden()
    channel = stored(live_server, "فرم تماس")
    assert channel.kind == "webform"

    # Pause from its page: both state holders follow.
    page.get_by_role("button", name="توقف").click()
    expect(page.locator(".channel-facts")).to_have_attribute("data-paused", "true")
    expect(page.get_by_role("button", name="ادامه")).to_be_visible()
    assert stored(live_server, "فرم تماس").paused
    snap(page, "channels-channel-fa")
    page.goto("/settings/channels")
    row = page.locator(".channel-row")
    expect(row).to_have_count(1)
    expect(row.locator(".channel-name__link")).to_have_text("فرم تماس")
    expect(row.locator(".badge.when-paused")).to_have_text("متوقف")
    expect(row).to_contain_text("https://www.example.ir")
    snap(page, "channels-list-fa")
