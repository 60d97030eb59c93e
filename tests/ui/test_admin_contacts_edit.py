"""Changing what was saved on the contacts screens: renaming and deleting a saved segment
(the picker follows, a rename elsewhere arrives live, deleting asks first and goes back
to every contact), and editing and deleting notes on a contact's page (their author, an
admin or a manager; an agent sees no Edit or Delete on someone else's note and the API
refuses them)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from playwright.sync_api import BrowserContext, Page, Route, expect

from inbox import notes as contact_notes
from inbox.models import Role, User
from tests.ui.harness import ApiAdmin, BrowserProblems, LiveServer
from tests.ui.test_admin_contacts import seed, whole_shot
from timeline.db import SessionFactory
from timeline.models import utcnow


def add_note(server: LiveServer, contact_id: uuid.UUID, author: User, text: str, ago: int) -> str:
    """A note by `author`, written `ago` minutes ago (with its timeline event); its id."""

    async def make(sessions: SessionFactory) -> str:
        async with sessions() as session, session.begin():
            at = utcnow() - timedelta(minutes=ago)
            note = contact_notes.add_note(session, contact_id, author, text, at)
            await session.flush()
            return str(note.id)

    return server.db(make)


def note_texts(page: Page, contact_id: uuid.UUID) -> list[str]:
    """The contact's notes as the API has them, newest first."""
    answer = page.request.get(f"/api/v1/contacts/{contact_id}/notes")
    assert answer.ok, answer.text()
    return [note["text"] for note in answer.json()["items"]]


def refuse_patch(route: Route) -> None:
    """The API's answer to a user who may no longer change segments."""
    if route.request.method != "PATCH":
        route.fallback()
        return
    error: dict[str, Any] = {"code": "forbidden", "message": "not allowed", "fields": {}}
    route.fulfill(status=403, json={"error": error})


def test_a_manager_renames_and_deletes_a_segment_and_changes_an_agents_note(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    problems.allowed.append(r"status of 403")  # the refused rename, answered on purpose
    agent = live_server.user(Role.AGENT, name="Ali Agent")
    ids = seed(live_server, members=(agent,))
    manager = live_server.user(Role.MANAGER, name="Meg Manager")
    other = ApiAdmin(live_server, name="Olive Other")
    leads = other.request(
        "POST", "/api/v1/segments", {"name": "Leads", "filters": {"stages": ["lead"]}}, 201
    )
    customers = other.request(
        "POST", "/api/v1/segments", {"name": "Customers", "filters": {"stages": ["customer"]}}, 201
    )
    live_server.sign_in(context, manager)
    page.goto("/contacts")
    count = page.locator("[data-count]")
    expect(count).to_have_text("5")
    toolbar = page.locator(".contacts-toolbar")
    rename = toolbar.get_by_role("button", name="Rename")
    delete = toolbar.get_by_role("button", name="Delete")
    # Nothing to rename or delete without a saved segment.
    expect(rename).to_be_hidden()
    expect(delete).to_be_hidden()
    picker = page.get_by_label("Saved segment")
    picker.select_option(label="Leads")
    expect(count).to_have_text("4")
    expect(rename).to_be_visible()
    expect(delete).to_be_visible()

    # Rename, then Escape: nothing changes and the focus is back on Rename.
    rename.click()
    name = page.get_by_label("New name")
    expect(name).to_be_focused()
    expect(name).to_have_value("Leads")
    whole_shot(page, "admin-contacts-segment-renaming")
    name.fill("Never saved")
    name.press("Escape")
    expect(name).to_be_hidden()
    expect(rename).to_be_focused()
    expect(picker.locator("option:checked")).to_have_text("Leads")

    # A refusal of the API shows in the page's notice, and the name being typed stays.
    page.route(f"**/api/v1/segments/{leads['id']}", refuse_patch)
    rename.click()
    name.fill("Refused name")
    name.press("Enter")
    expect(page.locator("[data-contacts] > [data-error]")).to_have_text("You may not do that.")
    expect(name).to_have_value("Refused name")
    expect(picker.locator("option:checked")).to_have_text("Leads")
    page.unroute(f"**/api/v1/segments/{leads['id']}", refuse_patch)

    # Renamed: the picker shows the new name, the API has it.
    name.fill("Hot leads")
    page.locator("[data-rename-form]").get_by_role("button", name="Save").click()
    expect(page.locator("[data-saved]")).to_have_text("Segment renamed to “Hot leads”.")
    expect(page.locator("[data-contacts] > [data-error]")).to_be_empty()
    expect(picker.locator("option:checked")).to_have_text("Hot leads")
    expect(rename).to_be_focused()
    assert other.request("GET", f"/api/v1/segments/{leads['id']}")["name"] == "Hot leads"
    whole_shot(page, "admin-contacts-segment-renamed")

    # Another admin renames the other segment: the picker follows live.
    other.request("PATCH", f"/api/v1/segments/{customers['id']}", {"name": "Paying customers"})
    expect(picker.locator("option")).to_have_text(["All contacts", "Paying customers", "Hot leads"])
    expect(picker.locator("option:checked")).to_have_text("Hot leads")

    # Delete asks first; Cancel (and Escape) keep the segment.
    delete.click()
    dialog = page.get_by_role("dialog", name="Delete this segment?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Hot leads")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    whole_shot(page, "admin-contacts-segment-delete-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()
    delete.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(picker.locator("option:checked")).to_have_text("Hot leads")
    assert other.request("GET", f"/api/v1/segments/{leads['id']}")["name"] == "Hot leads"

    # Deleted: back to every contact, gone from the picker and from the API.
    delete.click()
    dialog.get_by_role("button", name="Delete").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-saved]")).to_have_text("Segment “Hot leads” deleted.")
    expect(picker).to_have_value("")
    expect(picker.locator("option")).to_have_text(["All contacts", "Paying customers"])
    expect(count).to_have_text("5")
    expect(page.locator("[data-filters] [name=stages][value=lead]")).not_to_be_checked()
    expect(rename).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/contacts$"))
    other.request("GET", f"/api/v1/segments/{leads['id']}", status=404)
    listed = other.request("GET", "/api/v1/segments")["items"]
    assert [segment["name"] for segment in listed] == ["Paying customers"]
    whole_shot(page, "admin-contacts-segment-deleted")

    # A manager may change an agent's note too.
    contact_id = ids["Ann Archer"]
    theirs = add_note(live_server, contact_id, agent, "Prefers email", ago=5)
    page.goto(f"/contacts/{contact_id}")
    note = page.locator(f"[data-note-id='{theirs}']")
    expect(note.locator(".note__author")).to_have_text("Ali Agent")
    note.get_by_role("button", name="Edit").click()
    editor = note.get_by_label("Note text")
    expect(editor).to_be_focused()
    editor.fill("Prefers email, never calls")
    # Another admin adds a note meanwhile: it appears, and the editor stays as it is.
    other.request("POST", f"/api/v1/contacts/{contact_id}/notes", {"text": "Renewal in May"}, 201)
    expect(page.locator("[data-notes] .note__text").first).to_have_text("Renewal in May")
    expect(editor).to_have_value("Prefers email, never calls")
    expect(editor).to_be_focused()
    editor.press("Control+Enter")
    expect(note.locator(".note__text")).to_have_text("Prefers email, never calls")
    expect(note.locator(".note__edited")).to_have_text("Edited")
    assert note_texts(page, contact_id) == ["Renewal in May", "Prefers email, never calls"]


def test_an_agent_edits_and_deletes_only_their_own_notes(
    page: Page, context: BrowserContext, live_server: LiveServer
) -> None:
    agent = live_server.user(Role.AGENT, name="Ali Agent")
    bea = live_server.user(Role.AGENT, name="Bea Other")
    ids = seed(live_server, members=(agent, bea))
    contact_id = ids["Ann Archer"]
    theirs = add_note(live_server, contact_id, bea, "Called her on Monday", ago=10)
    raw = f"Ask @[Bea Other](user:{bea.id}) about the <b>price</b>"
    mine = add_note(live_server, contact_id, agent, raw, ago=5)
    segment = ApiAdmin(live_server).request(
        "POST", "/api/v1/segments", {"name": "Leads", "filters": {"stages": ["lead"]}}, 201
    )
    live_server.sign_in(context, agent)

    # A saved segment: an agent may pick it, not rename or delete it.
    page.goto(f"/contacts?segment={segment['id']}")
    expect(page.get_by_label("Saved segment").locator("option:checked")).to_have_text("Leads")
    expect(page.locator("[data-count]")).to_have_text("4")
    expect(page.locator("[data-segment-actions], [data-rename-form]")).to_have_count(0)
    expect(page.get_by_role("button", name="Rename")).to_have_count(0)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    headers = {"X-CSRF-Token": token, "Origin": live_server.base_url}
    refused = page.request.patch(
        f"/api/v1/segments/{segment['id']}", data={"name": "Mine"}, headers=headers
    )
    assert refused.status == 403
    assert page.request.delete(f"/api/v1/segments/{segment['id']}", headers=headers).status == 403

    page.goto(f"/contacts/{contact_id}")
    notes = page.locator("[data-notes] .note")
    expect(notes).to_have_count(2)
    own = page.locator(f"[data-note-id='{mine}']")
    other = page.locator(f"[data-note-id='{theirs}']")
    expect(own.locator(".mention")).to_have_text("@Bea Other")
    expect(own.locator(".note__text")).to_have_text("Ask @Bea Other about the <b>price</b>")
    expect(own.get_by_role("button", name="Edit")).to_be_visible()
    expect(own.get_by_role("button", name="Delete")).to_be_visible()
    expect(own.locator(".note__edited")).to_have_count(0)
    # Someone else's note: no Edit, no Delete, and the API refuses both.
    expect(other.locator(".note__text")).to_have_text("Called her on Monday")
    expect(other.get_by_role("button")).to_have_count(0)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    headers = {"X-CSRF-Token": token, "Origin": live_server.base_url}
    refused = page.request.patch(f"/api/v1/notes/{theirs}", data={"text": "x"}, headers=headers)
    assert refused.status == 403
    assert page.request.delete(f"/api/v1/notes/{theirs}", headers=headers).status == 403

    # Edit from the keyboard: the raw text (mention token) to edit; Escape cancels.
    edit = own.get_by_role("button", name="Edit")
    edit.focus()
    page.keyboard.press("Enter")
    editor = own.get_by_label("Note text")
    expect(editor).to_be_focused()
    expect(editor).to_have_value(raw)
    expect(own.get_by_role("button", name="Edit")).to_be_hidden()
    editor.fill("Not this")
    page.keyboard.press("Escape")
    expect(editor).to_have_count(0)
    expect(own.locator(".note__text")).to_have_text("Ask @Bea Other about the <b>price</b>")
    expect(edit).to_be_focused()

    # Edit and save: the new text, with its mention, and the edited mark.
    page.keyboard.press("Enter")
    expect(editor).to_be_focused()
    editor.fill(f"Ask @[Bea Other](user:{bea.id}) about the discount\nand the invoice")
    whole_shot(page, "admin-contact-note-editing")
    own.get_by_role("button", name="Save").click()
    expect(own.locator(".note__text")).to_have_text(
        "Ask @Bea Other about the discount\nand the invoice"
    )
    expect(own.locator(".mention")).to_have_text("@Bea Other")
    expect(own.locator(".note__edited")).to_have_text("Edited")
    expect(page.locator("[data-notes-status]")).to_have_text("Note saved.")
    expect(own.get_by_role("button", name="Edit")).to_be_focused()
    assert note_texts(page, contact_id) == [
        f"Ask @[Bea Other](user:{bea.id}) about the discount\nand the invoice",
        "Called her on Monday",
    ]
    whole_shot(page, "admin-contact-note-edited")

    # Delete asks first; Cancel keeps the note.
    own.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete this note?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Ask @Bea Other about the discount")
    whole_shot(page, "admin-contact-note-delete-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(own.get_by_role("button", name="Delete")).to_be_focused()
    expect(notes).to_have_count(2)
    assert len(note_texts(page, contact_id)) == 2

    # Deleted: gone from the page and the API; the timeline records it.
    own.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(dialog).to_be_hidden()
    expect(own).to_have_count(0)
    expect(notes).to_have_count(1)
    expect(page.locator("[data-notes-status]")).to_have_text("Note deleted.")
    expect(page.locator("[data-timeline]")).to_contain_text("Note deleted")
    assert note_texts(page, contact_id) == ["Called her on Monday"]
    whole_shot(page, "admin-contact-note-deleted")
