"""The automation screens: an admin builds routing rules (conditions and actions as rows,
saved and reopened the same, a bad regular expression refused at its field, reordered by
keyboard and buttons, switched off, deleted) and an auto-assignment policy; and sets up an
outgoing webhook to a local receiver, sees its secret once, sees the delivery of a real
event in the log, and redelivers it."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy import select, update

from inbox.account_models import Team
from inbox.models import Role, User
from inbox.routing_models import RoutingRule
from inbox.webhook_models import WebhookDelivery
from inbox.webhook_signing import SIGNATURE_HEADER
from tests.ui.harness import ApiAdmin, BrowserProblems, LiveServer, add_conversation, shot
from timeline.db import SessionFactory


def _team(server: LiveServer, name: str) -> uuid.UUID:
    async def make(sessions: SessionFactory) -> uuid.UUID:
        async with sessions() as session:
            team = Team(name=name)
            session.add(team)
            await session.commit()
            return team.id

    return server.db(make)


def _rule_names(server: LiveServer) -> list[str]:
    async def read(sessions: SessionFactory) -> list[str]:
        async with sessions() as session:
            rows = await session.scalars(select(RoutingRule).order_by(RoutingRule.position))
            return [row.name for row in rows]

    return server.db(read)


def _admin(server: LiveServer, context: BrowserContext) -> User:
    admin = server.user(Role.ADMIN, name="Ada Admin")
    server.sign_in(context, admin)
    return admin


def _row(rows: Locator, index: int) -> Locator:
    return rows.locator(":scope > li").nth(index)


@pytest.mark.parametrize("ui_database_url", ["postgresql"], indirect=True)
def test_admin_builds_reopens_and_orders_routing_rules(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    _admin(live_server, context)
    problems.allowed.append(r"status of 422")  # the bad pattern below
    add_conversation(live_server, channel_name="Support mail")
    add_conversation(live_server, channel_name="Shop SMS")
    _team(live_server, "Billing")
    live_server.user(Role.AGENT, name="Bea Agent")

    page.goto("/settings/routing")
    expect(page.locator("#rules-empty")).to_be_visible()
    expect(page.locator("#policies-empty")).to_be_visible()

    # A rule of two conditions and two actions.
    page.get_by_role("button", name="New rule").click()
    editor = page.locator("#rule-editor")
    expect(editor).to_be_visible()
    expect(editor.get_by_label("Name", exact=True)).to_be_focused()
    editor.get_by_label("Name", exact=True).fill("Refunds to billing")
    all_rows = editor.locator("[data-rows=all]")
    editor.locator("[data-group=all]").get_by_role("button", name="Add condition").click()
    first = _row(all_rows, 0)
    expect(first.get_by_label("Condition", exact=True)).to_be_focused()
    first.get_by_label("Test", exact=True).select_option("contains")
    first.get_by_label("Text or pattern", exact=True).fill("refund")
    editor.locator("[data-group=all]").get_by_role("button", name="Add condition").click()
    second = _row(all_rows, 1)
    second.get_by_label("Condition", exact=True).select_option("channel")
    # The row's inputs changed with its type.
    expect(second.get_by_label("Text or pattern", exact=True)).to_have_count(0)
    second.get_by_label("Support mail", exact=True).check()
    actions = editor.locator("[data-rows=actions]")
    _row(actions, 0).get_by_label("Team", exact=True).select_option(label="Billing")
    editor.get_by_role("button", name="Add action").click()
    label_row = _row(actions, 1)
    label_row.get_by_label("Action", exact=True).select_option("add_label")
    label_row.get_by_label("Label", exact=True).fill("refunds")
    shot(page, "routing-editor")
    editor.get_by_role("button", name="Save rule").click()

    expect(editor).to_be_hidden()
    rules = page.locator("#rules > li")
    expect(rules).to_have_count(1)
    expect(rules.first).to_contain_text("Refunds to billing")
    expect(rules.first).to_contain_text("text contains “refund”")
    expect(rules.first).to_contain_text("channel: Support mail")
    expect(rules.first).to_contain_text("assign to team Billing")
    expect(rules.first).to_contain_text("label refunds")

    # Reopened, it shows what was saved.
    page.reload()
    rules.first.get_by_role("button", name="Edit").click()
    expect(editor.get_by_label("Name", exact=True)).to_have_value("Refunds to billing")
    expect(all_rows.locator(":scope > li")).to_have_count(2)
    expect(editor.locator("[data-rows=any] > li")).to_have_count(0)
    expect(first.get_by_label("Condition", exact=True)).to_have_value("text")
    expect(first.get_by_label("Test", exact=True)).to_have_value("contains")
    expect(first.get_by_label("Text or pattern", exact=True)).to_have_value("refund")
    expect(second.get_by_label("Condition", exact=True)).to_have_value("channel")
    expect(second.get_by_label("Support mail", exact=True)).to_be_checked()
    expect(second.get_by_label("Shop SMS", exact=True)).not_to_be_checked()
    expect(actions.locator(":scope > li")).to_have_count(2)
    expect(_row(actions, 0).get_by_label("Action", exact=True)).to_have_value("assign_team")
    chosen_team = _row(actions, 0).get_by_label("Team", exact=True).locator("option:checked")
    expect(chosen_team).to_have_text("Billing")
    expect(label_row.get_by_label("Action", exact=True)).to_have_value("add_label")
    expect(label_row.get_by_label("Label", exact=True)).to_have_value("refunds")
    editor.get_by_role("button", name="Cancel").click()
    expect(editor).to_be_hidden()
    expect(rules.first.get_by_role("button", name="Edit")).to_be_focused()

    # A second rule: its bad pattern is refused at the field, then fixed.
    page.get_by_role("button", name="New rule").click()
    editor.get_by_label("Name", exact=True).fill("VIP first")
    editor.locator("[data-group=any]").get_by_role("button", name="Add condition").click()
    pattern_row = _row(editor.locator("[data-rows=any]"), 0)
    pattern_row.get_by_label("Test", exact=True).select_option("matches")
    pattern = pattern_row.get_by_label("Text or pattern", exact=True)
    pattern.fill("(vip")
    _row(actions, 0).get_by_label("Action", exact=True).select_option("set_priority")
    _row(actions, 0).get_by_label("Priority", exact=True).select_option("high")
    editor.get_by_role("button", name="Save rule").click()
    expect(pattern).to_have_attribute("aria-invalid", "true")
    error = pattern_row.locator("[data-error-for=value]")
    expect(error).to_contain_text("not a valid regular expression")
    expect(pattern).to_have_attribute("aria-describedby", str(error.get_attribute("id")))
    expect(pattern).to_be_focused()
    expect(page.locator("#rule-form-error")).to_contain_text("Check the fields marked")
    shot(page, "routing-regex-error")
    pattern.fill("^vip\\b")
    editor.get_by_role("button", name="Save rule").click()
    expect(rules).to_have_count(2)
    expect(rules.nth(1)).to_contain_text("one of")
    expect(rules.nth(1)).to_contain_text("priority High")

    # Reordered by keyboard (Alt+Up on the focused rule), then back by the button.
    rules.nth(1).get_by_role("button", name="Edit").focus()
    page.keyboard.press("Alt+ArrowUp")
    expect(rules.first).to_contain_text("VIP first")
    expect(rules.first.get_by_role("button", name="Edit")).to_be_focused()
    expect(rules.first.get_by_role("button", name="Move up")).to_be_disabled()
    expect(page.locator("#routing-notice")).to_contain_text("“VIP first” now runs 1.")
    assert _rule_names(live_server) == ["VIP first", "Refunds to billing"]
    rules.first.get_by_role("button", name="Move down").click()
    expect(rules.first).to_contain_text("Refunds to billing")
    expect(rules.nth(1).get_by_role("button", name="Move up")).to_be_focused()
    assert _rule_names(live_server) == ["Refunds to billing", "VIP first"]

    # Switched off; it stays off.
    switch = rules.nth(1).get_by_role("switch")
    switch.uncheck()
    expect(page.locator("#routing-notice")).to_contain_text("“VIP first” is off.")
    page.reload()
    expect(rules.nth(1).get_by_role("switch")).not_to_be_checked()
    expect(rules.first.get_by_role("switch")).to_be_checked()

    # Auto-assignment for the team, with a capacity.
    policies = page.locator("#policies-panel")
    policies.get_by_label("Channel or team", exact=True).select_option(label="Billing")
    policies.locator("#policy-capacity").fill("3")
    policies.get_by_role("button", name="Add policy").click()
    policy = policies.locator("#policies tbody tr")
    expect(policy).to_have_count(1)
    expect(policy).to_contain_text("Billing")
    expect(policy.get_by_label("Open conversations per agent", exact=True)).to_have_value("3")
    targets = policies.get_by_label("Channel or team", exact=True)
    expect(targets.locator("option", has_text="Billing")).to_have_count(0)  # one policy each
    shot(page, "routing-list")

    # Deleted after a confirmation (cancelled once).
    rules.nth(1).get_by_role("button", name="Delete").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("VIP first")
    dialog.get_by_role("button", name="Cancel").click()
    expect(rules).to_have_count(2)
    rules.nth(1).get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(rules).to_have_count(1)
    assert _rule_names(live_server) == ["Refunds to billing"]

    # Dark theme and phone width.
    page.emulate_media(color_scheme="dark")
    rules.first.get_by_role("button", name="Edit").click()
    expect(editor.get_by_label("Name", exact=True)).to_have_value("Refunds to billing")
    shot(page, "routing-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "routing-phone")
    box = editor.bounding_box()
    assert box is not None and box["width"] <= 390


@dataclass
class Receiver:
    """A local webhook receiver: answers `statuses` in turn (the last one from then on)
    and records each POST's headers and body."""

    url: str
    statuses: list[int]
    posts: list[tuple[dict[str, str], dict[str, object]]] = field(default_factory=list)


@contextlib.contextmanager
def receiver(statuses: list[int]) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (a thread of its own)."""
    record = Receiver(url="", statuses=statuses)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            record.posts.append((dict(self.headers), json.loads(body)))
            status = record.statuses.pop(0) if len(record.statuses) > 1 else record.statuses[0]
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"receiver says no" if status >= 400 else b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    record.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/switchboard"
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()


PATCH_CONVERSATION = """async ([id, body]) => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const answer = await fetch(`/api/v1/conversations/${id}`, {
    method: "PATCH",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
    body: JSON.stringify(body),
  });
  return answer.status;
}"""


def test_admin_sets_up_a_webhook_and_redelivers(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    _admin(live_server, context)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    conversation = add_conversation(live_server, channel_name="Web form")
    problems.allowed.append(r"status of 422")  # the refused URL below

    with receiver([500, 200]) as hook:
        page.goto("/settings/webhooks")
        expect(page.locator("#webhooks-empty")).to_be_visible()
        page.get_by_role("button", name="New webhook").click()
        form = page.locator("#webhook-editor")
        expect(form.get_by_label("URL to post to", exact=True)).to_be_focused()
        form.get_by_label("URL to post to", exact=True).fill(hook.url)
        form.get_by_label("Description", exact=True).fill("CRM sync")
        form.get_by_role("button", name="Save webhook").click()
        events_error = form.locator("[data-error-for=event_types]")
        expect(events_error).to_have_text("Choose at least one event.")
        status_changed = form.get_by_role("checkbox", name="conversation.status_changed")
        expect(status_changed).to_be_visible()
        expect(form).to_contain_text("a conversation's status changed")
        status_changed.check()
        form.get_by_role("checkbox", name="contact.created").check()
        shot(page, "webhooks-editor")
        form.get_by_role("button", name="Save webhook").click()

        # The secret, once, with a copy button.
        secret_panel = page.locator("#secret-panel")
        expect(secret_panel).to_be_visible()
        expect(form).to_be_hidden()
        secret = page.locator("#secret-value").inner_text()
        assert len(secret) >= 32
        shot(page, "webhooks-secret")
        secret_panel.get_by_role("button", name="Copy").click()
        expect(page.locator("#webhooks-notice")).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == secret
        secret_panel.get_by_role("button", name="I have stored it").click()
        expect(secret_panel).to_be_hidden()
        expect(page.locator("#secret-value")).to_have_text("")

        row = page.locator("#webhooks tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(hook.url)
        expect(row).to_contain_text("CRM sync")
        expect(row).to_contain_text("conversation.status_changed")
        expect(row).to_contain_text("contact.created")
        expect(row.get_by_role("switch")).to_be_checked()
        expect(row.locator("[data-cell=last]")).to_have_text("None yet")

        # The log: empty, then the delivery of a real event (the receiver fails it).
        row.get_by_role("button", name="Deliveries").click()
        log = page.locator("#deliveries-panel")
        expect(log.locator("#deliveries-empty")).to_be_visible()
        assert page.evaluate(PATCH_CONVERSATION, [str(conversation), {"status": "resolved"}]) == 200
        delivery = log.locator("tbody tr")
        expect(delivery).to_have_count(1, timeout=20_000)
        expect(delivery.locator("[data-cell=event]")).to_have_text("conversation.status_changed")
        expect(delivery.locator("[data-cell=code]")).to_have_text("500", timeout=20_000)
        expect(delivery.locator("[data-cell=status]")).to_have_text("Will retry")
        expect(delivery.locator("[data-cell=attempts]")).to_have_text("1")
        expect(delivery.locator("[data-cell=error]")).to_contain_text("HTTP 500")
        expect(row.locator("[data-cell=last]")).to_contain_text("Will retry")
        assert len(hook.posts) == 1
        headers, payload = hook.posts[0]
        assert SIGNATURE_HEADER in headers
        assert json.dumps(payload).find(str(conversation)) >= 0

        # Redelivered: the receiver takes it now.
        delivery.get_by_role("button", name="Redeliver").click()
        expect(page.locator("#webhooks-notice")).to_contain_text("Queued again")
        expect(delivery.locator("[data-cell=status]")).to_have_text("Delivered", timeout=20_000)
        expect(delivery.locator("[data-cell=code]")).to_have_text("200")
        expect(delivery.locator("[data-cell=error]")).to_have_text("")
        expect(row.locator("[data-cell=last]")).to_contain_text("Delivered")
        assert len(hook.posts) == 2
        assert hook.posts[1][0]["Switchboard-Delivery"] == hook.posts[0][0]["Switchboard-Delivery"]
        shot(page, "webhooks-deliveries")

        # A URL the API refuses is marked at its field.
        row.get_by_role("button", name="Edit").click()
        url = form.get_by_label("URL to post to", exact=True)
        expect(url).to_have_value(hook.url)
        expect(form.get_by_role("checkbox", name="conversation.status_changed")).to_be_checked()
        expect(form.get_by_label("Description", exact=True)).to_have_value("CRM sync")
        url.fill("ftp://127.0.0.1/hook")
        form.get_by_role("button", name="Save webhook").click()
        expect(form.locator("[data-error-for=url]")).to_contain_text("http(s)")
        expect(url).to_have_attribute("aria-invalid", "true")
        form.get_by_role("button", name="Cancel").click()

        # A new secret, shown once again; the webhook switched off.
        row.get_by_role("button", name="New secret").click()
        rotate = page.locator("#rotate-dialog")
        rotate.get_by_label("The old secret", exact=True).select_option("86400")
        rotate.get_by_role("button", name="Make a new secret").click()
        expect(secret_panel).to_be_visible()
        expect(page.locator("#secret-value")).not_to_have_text(secret)
        secret_panel.get_by_role("button", name="I have stored it").click()
        row.get_by_role("switch").uncheck()
        expect(page.locator("#webhooks-notice")).to_have_text("The webhook is off.")
        page.reload()
        expect(row.get_by_role("switch")).not_to_be_checked()
        expect(row.locator("[data-cell=last]")).to_contain_text("Delivered")

        # Dark theme and phone width, with the log open.
        page.emulate_media(color_scheme="dark")
        row.get_by_role("button", name="Deliveries").click()
        expect(delivery).to_have_count(1)
        shot(page, "webhooks-dark")
        page.emulate_media(color_scheme="light")
        page.set_viewport_size({"width": 390, "height": 844})
        shot(page, "webhooks-phone")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width

        # Deleted after a confirmation.
        page.set_viewport_size({"width": 1280, "height": 800})
        row.get_by_role("button", name="Delete").click()
        page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
        expect(page.locator("#webhooks-empty")).to_be_visible()
        expect(log).to_be_hidden()


HOSTILE_NAME = "<img src=x onerror=alert(1)>"


def test_admin_views_what_a_delivery_posted(
    page: Page, context: BrowserContext, live_server: LiveServer
) -> None:
    _admin(live_server, context)
    conversation = add_conversation(live_server, channel_name="Web form")
    api = ApiAdmin(live_server)
    contact_id = api.request("GET", f"/api/v1/conversations/{conversation}")["contact_id"]
    alerts: list[str] = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))

    with receiver([500]) as hook:
        created = api.request(
            "POST",
            "/api/v1/webhooks",
            {"url": hook.url, "event_types": ["contact.updated"]},
            status=201,
        )
        # A customer-written name in the payload: shown as text, never as markup.
        api.request("PATCH", f"/api/v1/contacts/{contact_id}", {"name": HOSTILE_NAME})
        page.goto("/settings/webhooks")
        page.locator("#webhooks tbody tr").get_by_role("button", name="Deliveries").click()
        delivery = page.locator("#deliveries-panel tbody tr")
        expect(delivery).to_have_count(1, timeout=20_000)
        expect(delivery.locator("[data-cell=code]")).to_have_text("500", timeout=20_000)
        headers, received = hook.posts[0]

        delivery.get_by_role("button", name="View").click()
        view = page.get_by_role("dialog", name="What was sent")
        expect(view).to_be_visible()
        expect(view.get_by_role("heading", name="What was sent")).to_be_focused()
        expect(view.locator("[data-detail=event]")).to_have_text("contact.updated")
        expect(view.locator("[data-detail=code]")).to_have_text("500")
        expect(view.locator("[data-detail=error]")).to_contain_text("HTTP 500: receiver says no")
        expect(view.locator("[data-detail=last-attempt]")).to_be_visible()

        # The headers it was posted with, those that carry no secret, as received.
        def header(name: str) -> Locator:
            row = view.locator("tr").filter(has=page.locator(f"th:text-is('{name}')"))
            return row.locator("td")

        expect(header("Switchboard-Delivery")).to_have_text(headers["Switchboard-Delivery"])
        expect(header("Switchboard-Event")).to_have_text(headers["Switchboard-Event"])
        expect(header("User-Agent")).to_have_text(headers["User-Agent"])
        expect(header("Content-Type")).to_have_text(headers["Content-Type"])
        expect(header(SIGNATURE_HEADER)).to_have_text("t=…,v1=…")

        # The body, pretty-printed: the JSON the receiver got, hostile name and all, as text.
        body = view.locator("[data-detail=body]")
        pretty = json.dumps(received, indent=2, ensure_ascii=False)
        expect(body).to_have_text(pretty)
        assert body.text_content() == pretty
        assert json.loads(pretty) == received
        assert received["data"]["fields"]["name"]["to"] == HOSTILE_NAME  # type: ignore[index]
        expect(body).to_contain_text(HOSTILE_NAME)
        expect(view.locator("img")).to_have_count(0)
        expect(page.locator("#deliveries-panel img, #delivery-dialog img")).to_have_count(0)

        # Neither the secret nor the signature is shown.
        shown = view.text_content() or ""
        assert created["secret"] not in shown
        signature = headers[SIGNATURE_HEADER]
        assert all(part.split("=", 1)[1] not in shown for part in signature.split(","))
        shot(page, "webhooks-delivery-view")

        view.get_by_role("button", name="Close").click()
        expect(view).to_be_hidden()
        expect(delivery.get_by_role("button", name="View")).to_be_focused()

        # At phone width the dialog fits.
        page.set_viewport_size({"width": 390, "height": 844})
        delivery.get_by_role("button", name="View").click()
        expect(view).to_be_visible()
        box = view.bounding_box()
        assert box is not None and box["width"] <= 390
        shot(page, "webhooks-delivery-view-phone")
        page.keyboard.press("Escape")
        expect(view).to_be_hidden()
        page.set_viewport_size({"width": 1280, "height": 800})

        # Once the contact is erased its deliveries keep no body: the view says so.
        async def erase(sessions: SessionFactory) -> None:
            async with sessions() as session:
                await session.execute(update(WebhookDelivery).values(payload={}))
                await session.commit()

        live_server.db(erase)
        page.locator("#deliveries-panel").get_by_role("button", name="Close").click()
        page.locator("#webhooks tbody tr").get_by_role("button", name="Deliveries").click()
        expect(delivery).to_have_count(1)
        delivery.get_by_role("button", name="View").click()
        expect(view.locator("[data-detail=erased]")).to_be_visible()
        expect(body).to_be_hidden()
        shot(page, "webhooks-delivery-view-erased")
        view.get_by_role("button", name="Close").click()

    assert alerts == []
