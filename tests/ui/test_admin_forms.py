"""The forms section (/settings/forms): an admin builds a form while the preview follows,
copies its embed snippet, and a page on another origin (a second server on 127.0.0.1)
sends it, which shows in the submissions with its contact; hostile labels stay text in
the preview; the API's refusals land at the fields they name; the dark theme and phone
width."""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy import delete, select

from connectors.webform.config import WebformConfig
from inbox.models import AttributeDefinition, Role
from tests.ui.harness import ApiAdmin, BrowserProblems, LiveServer, shot
from timeline.db import SessionFactory
from timeline.models import Channel, Contact, ContactAttribute, Form, FormSubmission, Identity
from web.keys import SECRET_BOX_KEY
from web.ui.admin.forms_reads import SUBMISSIONS_PER_PAGE

FORM_URL = re.compile(r".*/settings/forms/([0-9a-f-]{36})(\?created=1)?$")
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"><b>Bold</b>"


def webform_channel(server: LiveServer, name: str) -> uuid.UUID:
    """A web form channel whose forms may be sent at once (no minimum time to fill in:
    the test types faster than a person)."""
    box = server.app[SECRET_BOX_KEY]
    config = WebformConfig(min_seconds_to_submit=0).model_dump(mode="json")

    async def make(sessions: SessionFactory) -> uuid.UUID:
        async with sessions() as session:
            channel = Channel(
                kind="webform", name=name, config_encrypted=box.encrypt(config), health="ok"
            )
            session.add(channel)
            await session.commit()
            return channel.id

    return server.db(make)


def define_attribute(server: LiveServer, key: str, label: str) -> None:
    async def make(sessions: SessionFactory) -> None:
        async with sessions() as session:
            session.add(AttributeDefinition(key=key, label=label, type="text"))
            await session.commit()

    server.db(make)


@contextlib.contextmanager
def other_origin() -> Iterator[tuple[str, dict[str, str]]]:
    """A plain HTTP server on another port of 127.0.0.1 (so another origin): its base URL
    and the pages it serves, by path, filled in by the test."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?", 1)[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "").encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


def whole_shot(page: Page, name: str) -> None:
    """A screenshot of the whole admin page: the page scrolls inside .admin-main, so the
    window is made as tall as its content for the shot."""
    size = page.viewport_size
    assert size is not None
    height = page.evaluate(
        "() => document.querySelector('.admin-main').scrollHeight"
        " + document.querySelector('.topbar').offsetHeight"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    shot(page, name)
    page.set_viewport_size(size)


def card(page: Page, number: int) -> Locator:
    """The builder's field card at this position (1-based)."""
    return page.locator("[data-fields] > [data-field]").nth(number - 1)


def add_field(page: Page, type_label: str, label: str) -> Locator:
    page.get_by_label("Type of the new field").select_option(label=type_label)
    page.get_by_role("button", name="Add field").click()
    added = page.locator("[data-fields] > [data-field]").last
    expect(added.get_by_label("Label")).to_be_focused()
    added.get_by_label("Label").fill(label)
    return added


def preview_labels(page: Page) -> list[str]:
    """The labels of the preview's fields, without their "(required)"."""
    labels = page.locator("[data-preview] .sb-field > label").evaluate_all(
        "(labels) => labels.map((label) => label.firstChild.textContent)"
    )
    return [str(label) for label in labels]


@pytest.mark.parametrize("ui_database_url", ["postgresql"], indirect=True)
def test_a_form_built_here_is_sent_from_another_origin_and_listed(
    page: Page, context: BrowserContext, live_server: LiveServer
) -> None:
    webform_channel(live_server, "Website")
    define_attribute(live_server, "company", "Company")
    admin = live_server.user(Role.ADMIN, name="Ada Admin")
    live_server.sign_in(context, admin)

    with other_origin() as (origin, pages):
        page.goto("/settings/forms")
        expect(page.get_by_text("No forms yet.")).to_be_visible()
        page.get_by_role("link", name="New form").first.click()
        page.wait_for_url("**/settings/forms/new")

        # A new form starts with name, email and message; the preview draws them.
        preview = page.locator("[data-preview]")
        assert preview_labels(page) == ["Your name", "Email", "Message"]
        expect(preview.locator("button.sb-button")).to_have_text("Send")
        page.get_by_label("Name", exact=True).fill("Website enquiry")
        expect(preview.locator(".sb-title")).to_have_text("Website enquiry")

        # Fields added show in the preview at once, mapped and reordered.
        company = add_field(page, "Short text", "Company")
        expect(company.get_by_label("Field name")).to_have_value("company")
        company.get_by_label("Saves to").select_option(label="Company")
        # Mappings that do not fit a text field are not offered.
        assert company.locator("[data-prop=maps_to] option[value=email]").evaluate(
            "(o) => o.hidden"
        )
        budget = add_field(page, "Choice list", "Budget")
        budget.get_by_label("Options, one per line").fill("Small\nLarge")
        budget.get_by_label("Required").check()
        expect(preview.locator(".sb-field")).to_have_count(5)
        expect(preview.locator("select option")).to_have_text(["Choose…", "Small", "Large"])
        expect(preview.locator(".sb-field--select .sb-required")).to_have_text("(required)")
        budget.get_by_role("button", name="Move up").click()
        expect(card(page, 4).get_by_label("Label")).to_have_value("Budget")
        expect(card(page, 4).get_by_role("button", name="Move up")).to_be_focused()
        assert preview_labels(page) == ["Your name", "Email", "Message", "Budget", "Company"]

        # The thank-you message shows under the preview; the page on the other origin may
        # embed the form.
        page.locator("#fb-success-message").fill("Thanks! We will write back today.")
        expect(page.locator("[data-preview-success=message]")).to_have_text(
            "Thanks! We will write back today."
        )
        page.get_by_label("Websites that may embed this form, one per line").fill(f"{origin}\n")
        page.get_by_role("button", name="Create form").click()
        page.wait_for_url(FORM_URL)
        match = FORM_URL.match(page.url)
        assert match is not None
        form_id = match.group(1)
        expect(page.get_by_role("status").filter(has_text="The form is ready")).to_be_visible()
        expect(page.get_by_role("heading", level=1)).to_have_text("Website enquiry")
        assert preview_labels(page) == ["Your name", "Email", "Message", "Budget", "Company"]
        expect(page.get_by_label("Websites that may embed this form, one per line")).to_have_value(
            origin
        )
        whole_shot(page, "admin-forms-builder")

        # The embed snippet, copied with the button.
        context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=live_server.base_url
        )
        snippet = page.locator("[data-snippet]").inner_text()
        assert re.fullmatch(
            r'<div data-switchboard-form="[\w-]{22}"></div>\n'
            rf'<script src="{re.escape(live_server.base_url)}/forms/[\w-]{{22}}/embed\.js" async>'
            r"</script>",
            snippet,
        ), snippet
        page.locator("[data-copy='#fb-snippet']").click()
        expect(page.get_by_text("Copied.").first).to_be_visible()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == snippet

        # A plain page on the other origin with the pasted snippet: a visitor sends it.
        pages["/contact.html"] = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<link rel="icon" href="data:,"><title>Acme</title></head>'
            f"<body><h1>Talk to us</h1>\n{copied}\n</body></html>"
        )
        visitor = context.new_page()
        visitor.goto(f"{origin}/contact.html?utm_source=test")
        embedded = visitor.locator("form.sb-form")
        expect(embedded.get_by_label("Your name")).to_be_visible()
        embedded.get_by_label("Your name").fill("Ann Visitor")
        embedded.get_by_label("Email").fill("ann@example.com")
        embedded.get_by_label("Message").fill("Hello from the other site")
        embedded.get_by_label("Budget").select_option("Large")
        embedded.get_by_label("Company").fill("Acme")
        embedded.get_by_role("button", name="Send").click()
        expect(visitor.get_by_role("status")).to_have_text("Thanks! We will write back today.")
        visitor.close()

    # The submission, with what was sent and a link to its contact.
    page.get_by_role("link", name="Submissions").click()
    page.wait_for_url(f"**/settings/forms/{form_id}/submissions")
    rows = page.locator("tr[data-submission]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Hello from the other site")
    expect(rows.first).to_contain_text("Company: Acme")
    expect(rows.first).to_contain_text("Budget: Large")
    expect(rows.first).to_contain_text(f"{origin}/contact.html?utm_source=test")
    contact_link = rows.first.locator("[data-contact-link]")
    expect(contact_link).to_have_text("Ann Visitor")
    href = contact_link.get_attribute("href")
    assert href is not None and href.startswith("/contacts/")
    expect(page.locator("[data-submission-count]")).to_have_text("1")
    whole_shot(page, "admin-forms-submissions")

    async def contact_of(sessions: SessionFactory) -> tuple[str | None, str, str | None]:
        async with sessions() as session:
            contact = await session.get(Contact, uuid.UUID(href.removeprefix("/contacts/")))
            assert contact is not None
            identity = await session.scalar(
                select(Identity.value).where(Identity.contact_id == contact.id)
            )
            company = await session.scalar(
                select(ContactAttribute.text_value).where(
                    ContactAttribute.contact_id == contact.id, ContactAttribute.key == "company"
                )
            )
            return contact.name, str(identity), company

    assert live_server.db(contact_of) == ("Ann Visitor", "ann@example.com", "Acme")

    # The list counts it.
    page.goto("/settings/forms")
    row = page.locator("tbody tr").filter(has_text="Website enquiry")
    expect(row).to_contain_text("Website")
    expect(row.locator("td.num")).to_have_text("1")

    # At phone width the submissions read as cards.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/settings/forms/{form_id}/submissions")
    expect(page.locator("[data-contact-link]")).to_be_visible()
    shot(page, "admin-forms-submissions-phone")


def test_hostile_labels_stay_text_and_refusals_show_at_their_fields(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    problems.allowed.append(r"status of 422")
    webform_channel(live_server, "Landing pages")
    define_attribute(live_server, "plan", "Plan")
    live_server.sign_in(context, live_server.user(Role.ADMIN, name="Ada Admin"))
    page.emulate_media(color_scheme="dark")
    page.goto("/settings/forms/new")
    page.get_by_label("Name", exact=True).fill(HOSTILE)

    # Admin-written text is text: in the preview, the card's summary and the title.
    hostile = add_field(page, "Short text", HOSTILE)
    preview = page.locator("[data-preview]")
    expect(preview.locator(".sb-field > label").last).to_contain_text(HOSTILE)
    expect(preview.locator(".sb-title")).to_have_text(HOSTILE)
    expect(hostile.locator("[data-summary]")).to_have_text(HOSTILE)
    expect(preview.locator("img, b")).to_have_count(0)
    assert page.title() != "pwned"
    expect(hostile.get_by_label("Field name")).to_have_value(
        "img_src_x_onerror_document_title_pwned_b_bold_b"
    )

    # An empty label is refused by the API; the error shows at that field's label.
    card(page, 1).get_by_label("Label").fill("")
    page.get_by_role("button", name="Create form").click()
    label = card(page, 1).get_by_label("Label")
    expect(label).to_have_attribute("aria-invalid", "true")
    expect(label).to_be_focused()
    expect(card(page, 1).locator("[data-field-error]")).to_contain_text("at least 1 character")
    expect(page.locator("[data-general-error]")).to_have_text(
        "It could not be saved. Check the fields marked."
    )
    label.fill("Full name")
    expect(label).not_to_have_attribute("aria-invalid", "true")

    # A field mapped to an attribute that was deleted meanwhile: refused at its mapping.
    hostile.get_by_label("Saves to").select_option(label="Plan")

    async def forget_plan(sessions: SessionFactory) -> None:
        async with sessions() as session:
            await session.execute(
                delete(AttributeDefinition).where(AttributeDefinition.key == "plan")
            )
            await session.commit()

    live_server.db(forget_plan)
    page.get_by_role("button", name="Create form").click()
    mapping = hostile.get_by_label("Saves to")
    expect(mapping).to_have_attribute("aria-invalid", "true")
    expect(hostile.locator("[data-field-error]")).to_contain_text("no custom attribute 'plan'")
    whole_shot(page, "admin-forms-builder-dark-errors")
    mapping.select_option(label="Only the message")
    page.get_by_label("Name", exact=True).fill("Spring campaign")
    page.get_by_role("button", name="Create form").click()
    page.wait_for_url(FORM_URL)
    whole_shot(page, "admin-forms-builder-dark")

    # Edited later: the name and whether it takes submissions.
    page.emulate_media(color_scheme="light")
    page.get_by_label("Name", exact=True).fill("Spring campaign 2")
    page.get_by_label("Taking submissions").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-save-status]")).to_have_text("Saved.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Spring campaign 2")

    # At phone width: the builder in one column, the list, the empty submissions.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("[data-preview] .sb-field")).to_have_count(4)
    shot(page, "admin-forms-builder-phone")
    page.locator("[data-preview]").scroll_into_view_if_needed()
    shot(page, "admin-forms-preview-phone")
    page.goto("/settings/forms")
    row = page.locator("tbody tr").filter(has_text="Spring campaign 2")
    expect(row).to_contain_text("Disabled")
    expect(row.locator("td.num")).to_have_text("0")
    shot(page, "admin-forms-list-phone")
    row.get_by_role("link", name="0").click()
    expect(page.get_by_text("No submissions yet.")).to_be_visible()

    # Submissions come a page at a time, newest first (these have lost their message and
    # contact, as after a personal-data erasure).
    form_id = uuid.UUID(page.url.split("/")[-2])
    start = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    async def submitted(sessions: SessionFactory) -> None:
        async with sessions() as session:
            session.add_all(
                FormSubmission(form_id=form_id, created_at=start + timedelta(minutes=n))
                for n in range(SUBMISSIONS_PER_PAGE + 1)
            )
            await session.commit()

    live_server.db(submitted)
    page.reload()
    rows = page.locator("tr[data-submission]")
    expect(rows).to_have_count(SUBMISSIONS_PER_PAGE)
    expect(rows.first.locator("time")).to_have_attribute(
        "datetime", re.compile("^2025-03-01T09:25")
    )
    expect(rows.first).to_contain_text("The message was deleted.")
    page.get_by_role("link", name="Older").click()
    expect(rows).to_have_count(1)
    expect(rows.first.locator("time")).to_have_attribute(
        "datetime", re.compile("^2025-03-01T09:00")
    )
    expect(page.get_by_role("link", name="Older")).to_have_count(0)
    page.get_by_role("link", name="Newest").click()
    expect(rows).to_have_count(SUBMISSIONS_PER_PAGE)

    # In Persian the builder reads right to left; the admin's text stays as written.
    context.clear_cookies()
    live_server.sign_in(context, live_server.user(Role.ADMIN, name="Leila", language="fa"))
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/settings/forms")
    page.locator("tbody a").first.click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("[data-preview] .sb-title")).to_have_text("Spring campaign 2")
    whole_shot(page, "admin-forms-builder-fa")

    # Managers do not build forms: every page of the section is refused.
    problems.allowed.append(r"status of 403")
    form_page = page.url
    context.clear_cookies()
    live_server.sign_in(context, live_server.user(Role.MANAGER, name="Max Manager"))
    for path in (form_page, f"{form_page}/submissions", "/settings/forms/new"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path


def test_an_admin_gives_a_form_a_new_key_after_a_confirmation(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    channel_id = webform_channel(live_server, "Website")
    api = ApiAdmin(live_server)
    body = {
        "name": "Newsletter",
        "channel_id": str(channel_id),
        "fields": [{"name": "email", "label": "Email", "type": "email", "required": True}],
    }
    form = api.request("POST", "/api/v1/forms", body, status=201)
    old_urls = form["urls"]
    live_server.sign_in(context, live_server.user(Role.ADMIN, name="Ada Admin"))
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.base_url)
    page.goto(f"/settings/forms/{form['id']}")
    snippet = page.locator("[data-snippet]")
    link = page.locator("#fb-page-url")
    status = page.locator("[data-rotate-status]")
    expect(snippet).to_have_text(old_urls["snippet"])
    expect(link).to_have_attribute("href", old_urls["page"])
    assert page.request.get(old_urls["page"]).status == 200

    # The confirmation says what stops working; cancelled, nothing changes.
    rotate = page.get_by_role("button", name="Rotate key")
    dialog = page.get_by_role("dialog", name="Give this form a new key?")
    rotate.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("current page address and embed snippet stop working")
    expect(dialog).to_contain_text("Every page that embeds this form must be updated")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    whole_shot(page, "admin-forms-rotate-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(rotate).to_be_focused()
    expect(status).to_be_empty()
    expect(snippet).to_have_text(old_urls["snippet"])
    assert api.request("GET", f"/api/v1/forms/{form['id']}")["key"] == form["key"]
    # Escape closes it the same way.
    rotate.click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert api.request("GET", f"/api/v1/forms/{form['id']}")["key"] == form["key"]

    # Confirmed: the new addresses replace the old ones in place, and the copy buttons
    # copy the new ones.
    rotate.click()
    dialog.get_by_role("button", name="Rotate key").click()
    expect(status).to_have_text(re.compile(r"^The form has a new key"))
    rotated = api.request("GET", f"/api/v1/forms/{form['id']}")
    assert rotated["key"] != form["key"]
    new_urls = rotated["urls"]
    expect(snippet).to_have_text(new_urls["snippet"])
    expect(link).to_have_text(new_urls["page"])
    expect(link).to_have_attribute("href", new_urls["page"])
    assert form["key"] not in page.locator(".fb-embed").inner_text()
    expect(page.locator("[data-general-error]")).to_be_empty()
    page.locator("[data-copy='#fb-snippet']").click()
    expect(page.get_by_text("Copied.").first).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == new_urls["snippet"]
    whole_shot(page, "admin-forms-rotated")

    # The old hosted page is gone, the new one answers.
    assert page.request.get(old_urls["page"]).status == 404
    assert page.request.get(new_urls["page"]).status == 200

    # Saving the builder afterwards keeps the new key; a reload shows it.
    page.get_by_label("Name", exact=True).fill("Newsletter sign-up")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-save-status]")).to_have_text("Saved.")
    assert api.request("GET", f"/api/v1/forms/{form['id']}")["key"] == rotated["key"]
    page.reload()
    expect(snippet).to_have_text(new_urls["snippet"])
    expect(status).to_be_empty()

    # A refusal (the form was deleted meanwhile) shows in the page's notice.
    problems.allowed.append(r"status of 404")

    async def forget(sessions: SessionFactory) -> None:
        async with sessions() as session:
            await session.execute(delete(Form).where(Form.id == uuid.UUID(form["id"])))
            await session.commit()

    live_server.db(forget)
    rotate.click()
    dialog.get_by_role("button", name="Rotate key").click()
    notice = page.locator("[data-general-error]")
    expect(notice).to_have_text("That did not work: no such form")
    expect(notice).to_be_focused()
    expect(status).to_be_empty()
    expect(snippet).to_have_text(new_urls["snippet"])
    whole_shot(page, "admin-forms-rotate-error")


def test_a_manager_is_not_offered_a_new_form_key(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    """The key is the API's admin-only action; the builder is admin-only too."""
    problems.allowed.append(r"status of 403")
    channel_id = webform_channel(live_server, "Website")
    body = {
        "name": "Newsletter",
        "channel_id": str(channel_id),
        "fields": [{"name": "email", "label": "Email", "type": "email", "required": True}],
    }
    form = ApiAdmin(live_server).request("POST", "/api/v1/forms", body, status=201)
    live_server.sign_in(context, live_server.user(Role.MANAGER, name="Max Manager"))
    response = page.goto(f"/settings/forms/{form['id']}")
    assert response is not None and response.status == 403
    expect(page.get_by_role("button", name="Rotate key")).to_have_count(0)
