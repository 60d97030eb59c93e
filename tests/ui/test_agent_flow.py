"""The agent's day, end to end in Chromium (issue 10's Tests): sign in on the login page;
an SMS posted to its channel's signed webhook appears in the open inbox without a reload;
open it, reply from the composer, the Twilio stand-in receives the reply and its status
callback turns the tick to delivered; assign and resolve from the header; a web form
submission full of markup stays inert in the thread and the panel (nothing runs, nothing
is fetched from outside); an agent outside the channel gets the 404 page for its URL; the
Persian interface lays the conversation out right to left. Screenshots of each screen.

Channels, members and the form are made through the REST API with an admin's token, and
every message arrives through the real webhooks: no event is published by hand."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import aiohttp
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from inbox.models import Role, User
from tests.connectors.sms.twilio_standin import (
    TwilioStandin,
    incoming_form,
    post_webhook,
    sid,
    status_form,
)
from tests.ui.harness import (
    PASSWORD,
    ApiAdmin,
    BrowserProblems,
    LiveServer,
    recording_server,
    shot,
    twilio_standin,
)
from web.keys import RUNTIME_KEY

ACCOUNT = "AC" + "4" * 32
TOKEN = "twilio-auth-token-for-the-agent-flow"
OURS = "+14155550177"
ANN = "+14155550166"


@pytest.fixture
def twilio(live_server: LiveServer) -> Iterator[TwilioStandin]:
    with twilio_standin(live_server, ACCOUNT, TOKEN, OURS) as standin:
        yield standin


@pytest.fixture
def outside() -> Iterator[tuple[str, list[str]]]:
    with recording_server() as recorded:
        yield recorded


class Admin(ApiAdmin):
    """The REST API as an admin, and Twilio's webhooks, from the test."""

    def webhook(self, path: str, params: list[tuple[str, str]]) -> int:
        """POST a webhook signed as Twilio signs it; its HTTP status."""

        async def send() -> int:
            async with aiohttp.ClientSession(base_url=self.server.base_url) as client:
                answer = await post_webhook(
                    client,
                    path,
                    public_url=self.server.base_url,
                    auth_token=TOKEN,
                    params=params,
                )
                async with answer:
                    return answer.status

        return self.server.call(send)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll something outside the browser (the stand-in's requests) until it holds."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.05)
    return True


# PostgreSQL too: the conversation page reads the header's contact and channel itself.
@pytest.mark.parametrize("ui_database_url", ["sqlite", "postgresql"], indirect=True)
def test_an_agents_day_end_to_end(
    browser: Browser,
    page: Page,
    live_server: LiveServer,
    agent: User,
    twilio: TwilioStandin,
    outside: tuple[str, list[str]],
    problems: BrowserProblems,
) -> None:
    outside_url, fetched = outside
    problems.allowed.append(r"status of 404 .*/conversations/")  # the outsider's page
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    admin = Admin(live_server)
    persian = live_server.user(Role.AGENT, name="Parisa Agent", language="fa")
    outsider = live_server.user(Role.AGENT, name="Olga Outsider")
    sms = admin.request(
        "POST",
        "/api/v1/channels",
        {
            "kind": "sms",
            "name": "Texts",
            "config": {
                "account_sid": ACCOUNT,
                "auth_token": TOKEN,
                "phone_number": OURS,
                "default_region": "US",
                "api_base_url": twilio.base_url,
            },
        },
        status=201,
    )
    members = {"user_ids": [str(agent.id), str(persian.id)], "team_ids": []}
    admin.request("PUT", f"/api/v1/channels/{sms['id']}/members", members)
    live_server.call(live_server.app[RUNTIME_KEY].reload)  # serve its webhook now

    # Sign in on the login page; the empty inbox waits, connected.
    page.goto("/login")
    shot(page, "flow-login")
    page.get_by_label("Email").fill(agent.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/inbox**")
    expect(page.locator("[data-inbox]")).to_have_attribute("data-state", "ready")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "open")
    expect(page.locator(".conv")).to_have_count(0)

    # An SMS arrives on the signed webhook: its row appears without a reload.
    inbound = incoming_form(ACCOUNT, ANN, OURS, "Hi, has my order shipped?", message_sid=sid("SM"))
    assert admin.webhook(f"/webhooks/twilio/{sms['id']}", inbound) == 200
    row = page.locator(".conv").filter(has_text="Hi, has my order shipped?")
    expect(row).to_have_count(1)
    expect(row.locator(".conv__unread")).to_have_text("1")
    expect(page.locator('[data-count-for="all"]')).to_have_text("1")
    shot(page, "flow-inbox")

    # Open it and reply from the composer: the stand-in gets the reply.
    row.locator(".conv__link").click()
    page.wait_for_url("**/conversations/**")
    conversation_id = page.locator(".app").get_attribute("data-conversation-id")
    assert conversation_id is not None
    header = page.locator("[data-convhead]")
    expect(header.locator("[data-field=channel]")).to_have_text("Texts")
    expect(header.locator("[data-field=contact]")).to_contain_text(ANN)
    thread = page.locator("[data-thread-list]")
    expect(thread.locator(".msg")).to_have_count(1)
    expect(page.get_by_label("Send via").locator("option:checked")).to_contain_text(ANN)
    text = page.locator("#composer-text")
    text.fill("Yes, it left today.")
    page.keyboard.press("Control+Enter")
    expect(text).to_have_value("")
    assert wait_for(lambda: len(twilio.messages) == 1), "the stand-in got no reply"
    [outgoing] = twilio.messages
    assert (outgoing["to"], outgoing["body"]) == (ANN, "Yes, it left today.")

    # The stand-in's status callback turns the tick to delivered, live.
    reply = thread.locator(".msg[data-side=out]")
    ticks = reply.locator(".ticks")
    expect(ticks).to_have_attribute("data-ticks", "sent")
    callback = status_form(ACCOUNT, outgoing["sid"], "delivered", to=ANN, from_=OURS)
    assert admin.webhook(f"/webhooks/twilio/{sms['id']}/status", callback) == 200
    expect(ticks).to_have_attribute("data-ticks", "delivered")
    expect(reply.locator(".msg__state")).to_have_text("Delivered")

    # A note mentioning a colleague: the token reads as an "@Name" chip, in the thread and
    # in the list's preview.
    page.get_by_role("radio", name="Private note").click()
    text.focus()
    page.keyboard.type("Ask @par")
    expect(page.locator("#composer-popup").get_by_role("option")).to_have_count(1)
    page.keyboard.press("Enter")
    page.keyboard.type("about the courier")
    page.keyboard.press("Control+Enter")
    expect(text).to_have_value("")
    note = thread.locator(".msg[data-side=note]")
    expect(note.locator(".msg__text")).to_have_text("Ask @Parisa Agent about the courier")
    expect(note.locator(".mention")).to_have_text("@Parisa Agent")
    expect(note.locator(".mention")).to_have_attribute("data-user-id", str(persian.id))
    preview = page.locator(".conv").first.locator(".conv__text")
    expect(preview.locator(".mention")).to_have_text("@Parisa Agent")
    expect(preview).not_to_contain_text("(user:")

    # Assign to me and resolve, from the header.
    header.get_by_role("button", name="Assign to me").click()
    expect(header.locator("[data-field=assignee]")).to_have_text("You")
    shot(page, "flow-conversation")
    header.get_by_role("button", name="Resolve", exact=True).click()
    expect(header.locator("[data-field=status]")).to_have_text("Resolved")
    expect(header.get_by_role("button", name="Reopen")).to_be_visible()
    state = admin.request("GET", f"/api/v1/conversations/{conversation_id}")
    assert (state["status"], state["assignee_id"]) == ("resolved", str(agent.id))

    # A web form submission full of markup: shown as text, inert, loading nothing.
    website = admin.request(
        "POST", "/api/v1/channels", {"kind": "webform", "name": "Website", "config": {}}, 201
    )
    admin.request("PUT", f"/api/v1/channels/{website['id']}/members", members)
    # A form may map answers only to defined custom attributes.
    admin.request(
        "POST", "/api/v1/attributes", {"key": "homepage", "label": "Homepage", "type": "text"}, 201
    )
    fields = [
        {"name": "name", "label": "Your name", "required": True, "maps_to": "name"},
        {"name": "homepage", "label": "Homepage", "maps_to": "attribute:homepage"},
        {"name": "company", "label": "Company <i>Ltd</i>"},
        {"name": "message", "label": "Message", "type": "textarea", "maps_to": "message"},
    ]
    form = admin.request(
        "POST",
        "/api/v1/forms",
        {"name": "Contact us", "channel_id": website["id"], "fields": fields},
        201,
    )
    hostile_name = f"<img src={outside_url}/name.gif onerror=alert(1)>"
    hostile_link = f"javascript:fetch('{outside_url}/js')"
    hostile_company = "\u202eevil.exe <b>bold</b>"
    hostile_message = f'<script>alert("x")</script><iframe src="{outside_url}/frame"></iframe>'
    submission = {
        "name": hostile_name,
        "homepage": hostile_link,
        "company": hostile_company,
        "message": hostile_message,
    }

    async def submit() -> int:
        async with (
            aiohttp.ClientSession(base_url=live_server.base_url) as client,
            client.post(f"/forms/{form['key']}", json=submission) as answer,
        ):
            return answer.status

    assert live_server.call(submit) == 200
    lead = page.locator(".conv").filter(has_text="<script>")
    expect(lead).to_have_count(1)  # live in the list (its status tab still shows it)
    expect(lead.locator(".conv__name")).to_have_text(hostile_name)
    lead.locator(".conv__link").click()
    page.wait_for_url("**/conversations/**")
    form_message = page.locator("[data-thread-list] .msg")
    expect(form_message).to_have_count(1)
    body = form_message.locator(".msg__text")
    expect(body).to_contain_text(hostile_message)
    expect(body).to_contain_text(f"Company <i>Ltd</i>: {hostile_company}")
    expect(body).to_contain_text(f"Homepage: {hostile_link}")
    expect(body).to_have_attribute("dir", "auto")
    expect(form_message.locator(".msg__sender")).to_have_text(hostile_name)
    panel = page.locator("[data-panel]")
    expect(panel).to_have_attribute("aria-busy", "false")
    expect(panel.locator("[data-panel-name]")).to_have_text(hostile_name)
    expect(panel).to_contain_text(hostile_link)  # the homepage attribute, as text
    # Only text: no element the customer wrote became markup anywhere.
    hostile_nodes = page.locator(
        ".pane img, .pane iframe, .pane script:not([type='application/json']),"
        " a[href^='javascript']"
    )
    expect(hostile_nodes).to_have_count(0)
    shot(page, "flow-webform-inert")
    form_url = page.url

    # An agent outside the channel: the 404 page for that URL.
    outsider_context = browser.new_context(base_url=live_server.base_url)
    problems.watch(outsider_context)
    live_server.sign_in(outsider_context, outsider)
    try:
        theirs = outsider_context.new_page()
        response = theirs.goto(form_url)
        assert response is not None and response.status == 404
        expect(theirs.get_by_role("heading")).to_have_text("Page not found")
        expect(theirs.locator("body")).not_to_contain_text("Website")
        shot(theirs, "flow-not-found")
    finally:
        outsider_context.close()

    # The Persian interface: the SMS conversation, right to left.
    persian_context = browser.new_context(
        base_url=live_server.base_url, viewport={"width": 1280, "height": 800}
    )
    problems.watch(persian_context)
    live_server.sign_in(persian_context, persian)
    try:
        fa = persian_context.new_page()
        opened = fa.goto(f"/conversations/{conversation_id}")
        # The header's contact and channel come with the page, not after a script runs.
        assert opened is not None
        served = opened.text()
        assert f'data-field="contact">{ANN}</h1>' in served
        assert 'data-field="channel" dir="auto">Texts</span>' in served
        expect(fa.locator("html")).to_have_attribute("dir", "rtl")
        expect(fa.locator("html")).to_have_attribute("lang", "fa")
        expect(fa.locator("[data-thread-list] .msg")).to_have_count(3)
        expect(fa.locator("[data-convhead] [data-field=status]")).to_have_text("حل‌شده")
        assert fa.evaluate("getComputedStyle(document.body).direction") == "rtl"
        # The thread sits right of the panel; the customer's message starts on the right.
        thread_box = fa.locator("[data-thread]").bounding_box()
        panel_box = fa.locator("[data-panel]").bounding_box()
        assert thread_box and panel_box and thread_box["x"] > panel_box["x"]
        incoming = fa.locator("[data-thread-list] .msg[data-side=in] .msg__bubble").bounding_box()
        outgoing_box = fa.locator(
            "[data-thread-list] .msg[data-side=out] .msg__bubble"
        ).bounding_box()
        assert incoming and outgoing_box and incoming["x"] > outgoing_box["x"]
        shot(fa, "flow-conversation-fa")
    finally:
        persian_context.close()

    assert dialogs == []
    assert fetched == []
