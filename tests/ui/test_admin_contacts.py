"""The contacts screens: building a filter with its live count, saving it as a segment,
exporting it as CSV, a contact's page (editing an attribute, a note), erasing a contact
behind the typed confirmation; what an agent sees on PostgreSQL, Persian and Arabic
names side by side, the dark theme and phone width."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from connectors.registry import spec_for
from inbox.account_models import ChannelMember
from inbox.models import AttributeDefinition, Role, User
from tests.ui.harness import ApiAdmin, BrowserProblems, LiveServer, shot
from timeline.db import SessionFactory
from timeline.models import (
    Channel,
    Contact,
    ContactAttribute,
    ContactTag,
    Conversation,
    Identity,
    Message,
    TimelineEvent,
    utcnow,
)
from web.keys import SECRET_BOX_KEY

PERSIAN = "مریم رضایی"
ARABIC = "محمد العلي"


@dataclass(frozen=True)
class Person:
    name: str
    stage: str
    plan: str
    email: str
    wrote: str
    tags: tuple[str, ...] = ()


PEOPLE = (
    Person("Ann Archer", "lead", "pro", "ann@example.com", "Could we see a demo?", ("vip",)),
    Person("Bob Baker", "lead", "free", "bob@example.com", "Hello"),
    Person("Cat Cooper", "customer", "pro", "cat@example.com", "Thanks!"),
    Person(PERSIAN, "lead", "pro", "maryam@example.com", "سلام، قیمت طرح حرفه‌ای چند است؟"),
    Person(ARABIC, "lead", "pro", "mohammed@example.com", "مرحبا، أريد عرض سعر", ("vip",)),
)


def seed(server: LiveServer, members: tuple[User, ...] = ()) -> dict[str, uuid.UUID]:
    """Two attribute definitions, an email channel (worked by `members`) and PEOPLE, each
    with an identity and a conversation there; returns their ids by name."""
    box = server.app[SECRET_BOX_KEY]

    async def make(sessions: SessionFactory) -> dict[str, uuid.UUID]:
        now = utcnow()
        async with sessions() as session, session.begin():
            session.add_all(
                [
                    AttributeDefinition(
                        key="plan", label="Plan", type="select", options=["free", "pro"]
                    ),
                    AttributeDefinition(key="company", label="Company", type="text"),
                ]
            )
            config = spec_for("webform").config.model_validate({})
            channel = Channel(
                kind="webform",
                name="Website",
                config_encrypted=box.encrypt(config.model_dump(mode="json")),
                health="unknown",
            )
            session.add(channel)
            await session.flush()
            session.add_all(ChannelMember(channel_id=channel.id, user_id=u.id) for u in members)
            ids = {}
            for n, person in enumerate(PEOPLE):
                at = now - timedelta(hours=n)
                contact = Contact(
                    name=person.name,
                    lifecycle_stage=person.stage,
                    created_at=at,
                    last_activity_at=at,
                )
                session.add(contact)
                await session.flush()
                conversation = Conversation(
                    contact_id=contact.id,
                    channel_id=channel.id,
                    subject=f"Question from {person.name}",
                    created_at=at,
                    last_activity_at=at,
                    last_seq=1,
                )
                session.add_all(
                    [
                        Identity(contact_id=contact.id, kind="email", value=person.email),
                        ContactAttribute(contact_id=contact.id, key="plan", text_value=person.plan),
                        conversation,
                        *(ContactTag(contact_id=contact.id, tag=tag) for tag in person.tags),
                    ]
                )
                await session.flush()
                message = Message(
                    conversation_id=conversation.id,
                    channel_id=channel.id,
                    contact_id=contact.id,
                    direction="in",
                    text=person.wrote,
                    sent_at=at,
                    seq=1,
                )
                session.add(message)
                await session.flush()
                session.add(
                    TimelineEvent(
                        contact_id=contact.id,
                        conversation_id=conversation.id,
                        message_id=message.id,
                        kind="message.received",
                        data={},
                        occurred_at=at,
                    )
                )
                ids[person.name] = contact.id
            return ids

    return server.db(make)


def whole_shot(page: Page, name: str) -> None:
    """A screenshot of the whole page: .admin-main scrolls on its own, so the window is
    made as tall as its content for the shot."""
    size = page.viewport_size
    assert size is not None
    height = page.evaluate("document.querySelector('.admin-main').scrollHeight + 60")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    shot(page, name)
    page.set_viewport_size(size)


def export(page: Page, file_name: str) -> list[str]:
    """Click Export CSV; the names in the downloaded file (each on the pro plan)."""
    with page.expect_download() as info:
        page.get_by_role("button", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename == file_name
    text = download.path().read_text(encoding="utf-8-sig")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert {row["attribute:plan"] for row in exported} == {"pro"}
    return sorted(row["name"] for row in exported)


def rows(page: Page) -> list[str]:
    return page.locator("[data-rows] .contact-link__name").all_inner_texts()


def test_filter_save_export_edit_note_and_erase(
    page: Page, context: BrowserContext, live_server: LiveServer
) -> None:
    ids = seed(live_server)
    admin = live_server.user(Role.ADMIN, name="Ada Admin")
    live_server.sign_in(context, admin)
    page.goto("/contacts")
    count = page.locator("[data-count]")
    expect(count).to_have_text("5")
    assert rows(page) == [person.name for person in PEOPLE]  # most recent activity first
    # Customer-written names: isolated and in their own direction, side by side.
    for name in (PERSIAN, ARABIC):
        expect(page.locator(".contact-link__name", has_text=name)).to_have_attribute("dir", "auto")
    persian = page.locator(".contact-link__name", has_text=PERSIAN).bounding_box()
    arabic = page.locator(".contact-link__name", has_text=ARABIC).bounding_box()
    assert persian and arabic and persian["width"] > 0 and arabic["width"] > 0

    # Build the filter: leads on the pro plan.
    filters = page.locator("[data-filters]")
    filters.get_by_label("Lead", exact=True).check()
    expect(count).to_have_text("4")
    filters.get_by_role("button", name="Add a condition").click()
    condition = filters.locator("[data-condition]")
    condition.get_by_label("Attribute").select_option("plan")
    condition.get_by_label("Comparison").select_option("eq")
    condition.get_by_label("Value to compare").select_option("pro")
    expect(count).to_have_text("3")
    assert rows(page) == ["Ann Archer", PERSIAN, ARABIC]
    expect(page.locator("[data-filter-count]")).to_have_text("2")
    # Unsaved, the filter exports as it is.
    assert export(page, "contacts.csv") == sorted(["Ann Archer", PERSIAN, ARABIC])

    # Save it as a segment: it is picked, and the URL remembers it.
    page.get_by_placeholder("Segment name").fill("Pro leads")
    page.get_by_role("button", name="Save as segment").click()
    expect(page.locator("[data-saved]")).to_have_text("Segment “Pro leads” saved.")
    picker = page.get_by_label("Saved segment")
    expect(picker.locator("option:checked")).to_have_text("Pro leads")
    page.wait_for_url("**/contacts?segment=*")
    segment_id = page.url.rsplit("=", 1)[1]

    # Export it: the file is the segment's, with exactly its contacts.
    assert export(page, "Pro-leads.csv") == sorted(["Ann Archer", PERSIAN, ARABIC])

    # A reload shows the saved segment with the same contacts.
    page.goto(f"/contacts?segment={segment_id}")
    expect(count).to_have_text("3")
    expect(page.locator("[data-filters] [name=stages][value=lead]")).to_be_checked()
    expect(page.locator("[data-condition]").get_by_label("Value to compare")).to_have_value("pro")
    expect(page.locator("[data-action=update-segment]")).to_be_hidden()
    whole_shot(page, "admin-contacts-list")

    # The contact page: edit an attribute, add a note.
    page.locator(".contact-link", has_text="Ann Archer").click()
    page.wait_for_url(f"**/contacts/{ids['Ann Archer']}")
    expect(page.locator("[data-contact-name]")).to_have_text("Ann Archer")
    expect(page.locator("[data-stage]")).to_have_text("Lead")
    expect(page.locator("[data-identities]")).to_contain_text("ann@example.com")
    expect(page.locator("[data-conversations] a")).to_have_attribute(
        "href", f"/conversations/{_conversation_of(live_server, ids['Ann Archer'])}"
    )
    attributes = page.locator("[data-attributes-form]")
    expect(attributes.get_by_label("Plan")).to_have_value("pro")
    attributes.get_by_label("Company").fill("Archer & Sons")
    attributes.get_by_role("button", name="Save").click()
    expect(attributes.locator("[data-status]")).to_have_text("Changes saved.")
    note = page.locator("[data-note-form]")
    note.get_by_label("New note").fill("Wants a <b>demo</b> next week")
    note.get_by_role("button", name="Add note").click()
    expect(page.locator("[data-notes] .note__text").first).to_have_text(
        "Wants a <b>demo</b> next week"
    )
    expect(page.locator("[data-timeline]")).to_contain_text("Note added")
    message = page.locator("[data-timeline] [data-kind='message.received'] .timeline__text")
    expect(message).to_have_text("Could we see a demo?")
    expect(message).to_have_attribute("dir", "auto")
    expect(page.locator("[data-timeline]")).to_contain_text("Details changed")
    api = page.request.get(f"/api/v1/contacts/{ids['Ann Archer']}")
    assert api.json()["attributes"] == {"company": "Archer & Sons", "plan": "pro"}
    whole_shot(page, "admin-contact-page")

    # Another admin tags her meanwhile: the page shows it live, and keeps what is being
    # typed in the details (a reload must not undo it); then that is saved too.
    details = page.locator("[data-details-form]")
    details.get_by_label("Name").fill("Ann Archer-Smith")
    ApiAdmin(live_server, name="Olive Other").request(
        "PATCH", f"/api/v1/contacts/{ids['Ann Archer']}", {"add_tags": ["renewal"]}
    )
    expect(page.locator("[data-head-tags]")).to_contain_text("renewal")
    expect(details.get_by_label("Name")).to_have_value("Ann Archer-Smith")
    details.get_by_role("button", name="Save").click()
    expect(page.locator("[data-contact-name]")).to_have_text("Ann Archer-Smith")
    saved = page.request.get(f"/api/v1/contacts/{ids['Ann Archer']}").json()
    assert (saved["name"], saved["tags"]) == ("Ann Archer-Smith", ["renewal", "vip"])

    # Erase: locked until the name is typed; then the page shows the erased state.
    page.get_by_role("button", name="Erase").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    erase = dialog.get_by_role("button", name="Erase personal data")
    expect(erase).to_be_disabled()
    confirm = dialog.get_by_label("To confirm, type the contact's name:")
    confirm.fill("Ann")
    expect(erase).to_be_disabled()
    confirm.fill("ann archer-smith")
    expect(erase).to_be_enabled()
    erase.click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-erased-badge]")).to_be_visible()
    expect(page.locator("[data-erased-notice]")).to_be_visible()
    expect(page.locator("[data-details-form]")).to_be_hidden()
    expect(page.locator("[data-note-form]")).to_be_hidden()
    expect(page.get_by_role("button", name="Erase")).to_be_hidden()
    erased = page.request.get(f"/api/v1/contacts/{ids['Ann Archer']}").json()
    assert erased["erased"] is True
    assert erased["identities"] == [] and erased["attributes"] == {}
    conversations = page.request.get(
        "/api/v1/conversations", params={"contact_id": str(ids["Ann Archer"])}
    ).json()["items"]
    assert [c["subject"] for c in conversations] == [None]
    expect(page.locator("[data-conversations]")).not_to_contain_text("Ann Archer")
    expect(message).to_have_text("[erased]")
    whole_shot(page, "admin-contact-erased")

    # The segment no longer counts the erased contact.
    page.goto(f"/contacts?segment={segment_id}")
    expect(count).to_have_text("2")


def _conversation_of(server: LiveServer, contact_id: uuid.UUID) -> uuid.UUID:
    from sqlalchemy import select

    async def find(sessions: SessionFactory) -> uuid.UUID:
        async with sessions() as session:
            found = await session.scalar(
                select(Conversation.id).where(Conversation.contact_id == contact_id)
            )
            assert found is not None
            return found

    return server.db(find)


@pytest.mark.parametrize("ui_database_url", ["postgresql"], indirect=True)
def test_an_agent_filters_and_works_a_contact_in_persian_on_postgresql(
    context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    problems.allowed.append(r"status of 404")  # the hidden contact's page, asked on purpose
    agent = live_server.user(Role.AGENT, name="Ali Agent", language="fa")
    ids = seed(live_server, members=(agent,))
    seed_hidden = _hidden_contact(live_server)
    live_server.sign_in(context, agent)
    page = context.new_page()
    page.goto("/contacts")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    count = page.locator("[data-count]")
    expect(count).to_have_text(in_persian(5))
    assert "Hidden Person" not in rows(page)
    # No bulk export, no saving, no erasing for an agent.
    expect(page.locator("[data-action=export]")).to_have_count(0)
    expect(page.locator("[data-save-segment]")).to_have_count(0)
    page.get_by_label("جستجو").fill("مریم")
    expect(count).to_have_text(in_persian(1))
    assert rows(page) == [PERSIAN]
    page.get_by_label("جستجو").fill("")
    page.locator("[data-filters] [name=tags_any]").fill("VIP")
    expect(count).to_have_text(in_persian(2))
    assert rows(page) == ["Ann Archer", ARABIC]
    page.emulate_media(color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)", background
    whole_shot(page, "admin-contacts-list-dark-fa")

    # The contact page on a phone: a tag added, the owner shown, no erase.
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/contacts/{ids[ARABIC]}")
    expect(page.locator("[data-contact-name]")).to_have_text(ARABIC)
    expect(page.locator("[data-timeline]")).to_contain_text("مرحبا، أريد عرض سعر")
    expect(page.locator("[data-contact-name]")).to_have_attribute("dir", "auto")
    expect(page.locator("[data-action=erase]")).to_have_count(0)
    expect(page.locator("[data-action=export-personal]")).to_have_count(0)
    page.locator("[data-tag-form] [name=tag]").fill("عربي")
    page.locator("[data-tag-form] button").click()
    expect(page.locator("[data-head-tags]")).to_contain_text("عربي")
    details = page.locator("[data-details-form]")
    details.locator("[name=owner_id]").select_option(str(agent.id))
    details.locator("button[type=submit]").click()
    expect(page.locator("[data-owner]")).to_have_text("Ali Agent")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # nothing wider than the phone
    whole_shot(page, "admin-contact-page-phone-fa")
    # A contact on a channel the agent does not work is not found.
    response = page.goto(f"/contacts/{seed_hidden}")
    assert response is not None and response.status == 404
    # The pipeline's merge queue keeps its own page under /contacts/.
    response = page.goto("/contacts/merge-suggestions")
    assert response is not None and response.status == 200


def in_persian(n: int) -> str:
    """A number as Intl.NumberFormat("fa") writes it (Extended Arabic-Indic digits)."""
    return "".join(chr(0x06F0 + int(digit)) for digit in str(n))


def _hidden_contact(server: LiveServer) -> uuid.UUID:
    box = server.app[SECRET_BOX_KEY]

    async def make(sessions: SessionFactory) -> uuid.UUID:
        async with sessions() as session, session.begin():
            config = spec_for("webform").config.model_validate({})
            channel = Channel(
                kind="webform",
                name="Elsewhere",
                config_encrypted=box.encrypt(config.model_dump(mode="json")),
                health="unknown",
            )
            contact = Contact(name="Hidden Person", lifecycle_stage="lead")
            session.add_all([channel, contact])
            await session.flush()
            session.add(Conversation(contact_id=contact.id, channel_id=channel.id))
            return contact.id

    return server.db(make)
