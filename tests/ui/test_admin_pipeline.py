"""The lead pipeline board and the merge-suggestion queue: another person's move shows
live; move a lead across the board by dragging and back by the keyboard menu (the API and
the column figures follow), a refused move puts the card back, lost asks why; merge one
suggestion keeping the contact chosen and dismiss another."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from connectors.registry import spec_for
from inbox.account_models import ChannelMember
from inbox.models import Role, User
from tests.ui.harness import ApiAdmin, BrowserProblems, LiveServer, shot
from timeline.db import SessionFactory
from timeline.models import Channel, Contact, Conversation, Identity, MergeSuggestion
from web.keys import SECRET_BOX_KEY


@dataclass(frozen=True)
class Person:
    name: str
    stage: str
    value: tuple[int, str] | None = None
    email: str | None = None
    owned: bool = False
    visible: bool = True


def add_people(server: LiveServer, member: User, people: list[Person]) -> dict[str, uuid.UUID]:
    """Contacts with a conversation on a channel `member` works (or, not `visible`, on one
    they do not); returns their ids by name."""
    box = server.app[SECRET_BOX_KEY]

    async def make(sessions: SessionFactory) -> dict[str, uuid.UUID]:
        config = spec_for("webform").config.model_validate({})
        async with sessions() as session, session.begin():
            channels = [
                Channel(
                    kind="webform",
                    name=name,
                    config_encrypted=box.encrypt(config.model_dump(mode="json")),
                    health="unknown",
                )
                for name in ("Website", "Elsewhere")
            ]
            session.add_all(channels)
            await session.flush()
            session.add(ChannelMember(channel_id=channels[0].id, user_id=member.id))
            ids = {}
            for person in people:
                minor, currency = person.value or (None, None)
                contact = Contact(
                    name=person.name,
                    lifecycle_stage=person.stage,
                    lifetime_value_minor=minor,
                    lifetime_value_currency=currency,
                    owner_id=member.id if person.owned else None,
                )
                session.add(contact)
                await session.flush()
                channel = channels[0] if person.visible else channels[1]
                session.add(Conversation(contact_id=contact.id, channel_id=channel.id))
                if person.email:
                    session.add(Identity(contact_id=contact.id, kind="email", value=person.email))
                ids[person.name] = contact.id
            return ids

    return server.db(make)


def contact_row(server: LiveServer, contact_id: uuid.UUID) -> Contact:
    async def read(sessions: SessionFactory) -> Contact:
        async with sessions() as session:
            contact = await session.get(Contact, contact_id)
            assert contact is not None
            return contact

    return server.db(read)


def column(page: Page, stage: str) -> tuple[object, ...]:
    """A column's count and total as shown, and the names of its cards."""
    node = page.locator(f".pipeline__column[data-stage={stage}]")
    return (
        node.locator("[data-count]").inner_text(),
        node.locator("[data-total]").inner_text(),
        node.locator(".pcard__name").all_inner_texts(),
    )


@pytest.mark.parametrize("ui_database_url", ["postgresql"], indirect=True)
def test_a_lead_moves_across_the_board_and_back(
    page: Page, live_server: LiveServer, signed_in: User, problems: BrowserProblems
) -> None:
    problems.allowed.append(r"status of 409")  # the refused move, on purpose
    ids = add_people(
        live_server,
        signed_in,
        [
            Person("Eli Novak", "new"),
            Person("Ben Ortiz", "lead", (30050, "EUR")),
            Person("Ann Lee", "lead", (120000, "EUR"), "ann@example.com", owned=True),
            Person("Cleo Park", "qualified", (9900, "USD"), owned=True),
            Person("Dora Diaz", "customer", (500000, "EUR")),
            Person("Hidden Lead", "lead", (99900, "EUR"), visible=False),  # not their channel
        ],
    )
    page.goto("/pipeline")
    titles = page.locator(".pipeline__title").all_inner_texts()
    assert titles == ["New", "Lead", "Qualified", "Customer", "Lost"]
    expect(page.locator(".pipeline")).to_have_attribute("aria-busy", "false")
    assert column(page, "lead") == ("2", "€1,500.50", ["Ann Lee", "Ben Ortiz"])
    assert column(page, "qualified") == ("1", "$99.00", ["Cleo Park"])
    assert column(page, "lost") == ("0", "—", [])
    expect(page.locator(".pipeline__column[data-stage=lost] [data-empty]")).to_be_visible()
    ann = page.locator(".pcard", has_text="Ann Lee")
    expect(ann.locator(".pcard__identity")).to_have_text("ann@example.com")
    expect(ann.locator(".pcard__owner-name")).to_have_text("Ada Agent")
    expect(ann.get_by_role("link", name="Ann Lee")).to_have_attribute(
        "href", f"/contacts/{ids['Ann Lee']}"
    )
    shot(page, "pipeline-board")

    # Someone else moves a lead meanwhile, through the API: the board follows, no reload.
    page.evaluate("window.stillTheSamePage = true")
    ApiAdmin(live_server, name="Olive Other").request(
        "PATCH", f"/api/v1/contacts/{ids['Eli Novak']}", {"lifecycle_stage": "customer"}
    )
    customer = page.locator(".pipeline__column[data-stage=customer]")
    expect(customer.locator(".pcard", has_text="Eli Novak")).to_have_count(1)
    expect(customer.locator("[data-count]")).to_have_text("2")
    assert column(page, "new") == ("0", "—", [])
    assert page.evaluate("window.stillTheSamePage") is True

    # Dragged to Qualified: the stage changes through the API, the figures follow.
    ann.drag_to(page.locator(".pipeline__column[data-stage=qualified]"))
    expect(page.locator("#pipeline-notice")).to_have_text("Moved Ann Lee to Qualified.")
    expect(page.locator(".pipeline__column[data-stage=qualified] [data-total]")).to_have_text(
        "€1,200.00 + $99.00"
    )
    assert column(page, "lead") == ("1", "€300.50", ["Ben Ortiz"])
    assert column(page, "qualified")[0] == "2"
    assert contact_row(live_server, ids["Ann Lee"]).lifecycle_stage == "qualified"

    # Back with the keyboard: the card's "Move to…" menu; focus stays on the card.
    menu = ann.locator("summary")
    expect(menu).to_have_accessible_name("Move to… Ann Lee")
    menu.focus()
    page.keyboard.press("Enter")
    expect(ann.get_by_role("button", name="Qualified")).to_be_hidden()  # where it is
    page.keyboard.press("Tab")
    expect(ann.get_by_role("button", name="New")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#pipeline-notice")).to_have_text("Moved Ann Lee to Lead.")
    expect(menu).to_be_focused()
    expect(page.locator(".pipeline__column[data-stage=lead] [data-total]")).to_have_text(
        "€1,500.50"
    )
    assert column(page, "lead") == ("2", "€1,500.50", ["Ann Lee", "Ben Ortiz"])
    assert column(page, "qualified") == ("1", "$99.00", ["Cleo Park"])
    assert contact_row(live_server, ids["Ann Lee"]).lifecycle_stage == "lead"

    # Lost asks why (the API needs a reason); cancelling moves nothing.
    cleo = page.locator(".pcard", has_text="Cleo Park")
    cleo.get_by_text("Move to…").click()
    cleo.get_by_role("button", name="Lost").click()
    dialog = page.get_by_role("dialog", name="Mark as lost")
    expect(dialog).to_contain_text("Cleo Park")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert column(page, "qualified")[0] == "1"
    cleo.get_by_text("Move to…").click()
    cleo.get_by_role("button", name="Lost").click()
    dialog.get_by_label("Why was it lost?").fill("Chose a competitor")
    dialog.get_by_role("button", name="Move to Lost").click()
    expect(page.locator(".pipeline__column[data-stage=lost] [data-total]")).to_have_text("$99.00")
    row = contact_row(live_server, ids["Cleo Park"])
    assert (row.lifecycle_stage, row.lost_reason) == ("lost", "Chose a competitor")

    # A move the API refuses (merged away meanwhile) puts the card back, with a message.
    async def merge_ben(sessions: SessionFactory) -> None:
        async with sessions() as session, session.begin():
            ben = await session.get(Contact, ids["Ben Ortiz"])
            assert ben is not None
            ben.merged_into_id = ids["Dora Diaz"]

    live_server.db(merge_ben)
    page.locator(".pcard", has_text="Ben Ortiz").drag_to(
        page.locator(".pipeline__column[data-stage=customer]")
    )
    notice = page.get_by_role("alert")
    expect(notice).to_contain_text("Ben Ortiz could not be moved: this contact was merged into")
    assert column(page, "lead")[2] == ["Ann Lee", "Ben Ortiz"]
    assert sorted(column(page, "customer")[2]) == ["Dora Diaz", "Eli Novak"]

    # Filtered by owner: only their cards, and the figures of those.
    page.get_by_label("Owner").select_option(label="Ada Agent (you)")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(f"**/pipeline?owner_id={signed_in.id}&tag=")
    expect(page.locator(".pipeline")).to_have_attribute("aria-busy", "false")
    assert column(page, "lead") == ("1", "€1,200.00", ["Ann Lee"])
    assert column(page, "lost") == ("1", "$99.00", ["Cleo Park"])
    assert column(page, "customer") == ("0", "—", [])
    page.get_by_role("link", name="Clear filters").click()
    expect(page.locator(".pipeline")).to_have_attribute("aria-busy", "false")

    # Dark, phone width (the board scrolls sideways), Persian figures.
    page.emulate_media(color_scheme="dark")
    shot(page, "pipeline-board-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    board = page.locator(".pipeline")
    assert board.evaluate("(node) => node.scrollWidth > node.clientWidth + 100")
    shot(page, "pipeline-board-phone")

    async def persian(sessions: SessionFactory) -> None:
        async with sessions() as session, session.begin():
            user = await session.get(User, signed_in.id)
            assert user is not None
            user.language = "fa"

    live_server.db(persian)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/pipeline")
    # 5,000 in Persian digits and separators, as Intl writes it for "fa".
    expect(page.locator(".pipeline__column[data-stage=customer] [data-total]")).to_contain_text(
        "\u06f5\u066c\u06f0\u06f0\u06f0"
    )
    expect(page.locator(".pipeline__title").nth(1)).to_have_text("سرنخ")
    shot(page, "pipeline-board-fa")


def add_suggestions(server: LiveServer) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
    """Two suggestions, each a pair of contacts that offered the same identity: (id,
    contact, other contact)."""

    async def make(sessions: SessionFactory) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
        made = []
        async with sessions() as session, session.begin():
            pairs = [
                ("Ann Lee", "ann@example.com", "A. Lee", "ann@example.com", "+14155550100"),
                ("Bob Stone", "bob@example.com", "Robert Stone", "bob@example.com", None),
            ]
            for first, email, second, shared, phone in pairs:
                one = Contact(name=first, lifecycle_stage="lead", lifetime_value_minor=5000)
                one.lifetime_value_currency = "EUR"
                two = Contact(name=second, lifecycle_stage="customer")
                session.add_all([one, two])
                await session.flush()
                session.add(Identity(contact_id=one.id, kind="email", value=email))
                session.add(Identity(contact_id=two.id, kind="email", value=shared + ".old"))
                if phone:
                    session.add(Identity(contact_id=two.id, kind="phone", value=phone))
                suggestion = MergeSuggestion(
                    contact_id=one.id, other_contact_id=two.id, reason=f"email:{email}"
                )
                session.add(suggestion)
                await session.flush()
                made.append((suggestion.id, one.id, two.id))
        return made

    return server.db(make)


def test_merge_one_suggestion_and_dismiss_another(
    page: Page, context: BrowserContext, live_server: LiveServer
) -> None:
    (first, ann, a_lee), (second, _, _) = add_suggestions(live_server)
    manager = live_server.user(Role.MANAGER, name="Mia Manager")
    live_server.sign_in(context, manager)
    page.goto("/contacts/merge-suggestions")
    items = page.locator(".merge-item")
    expect(items).to_have_count(2)
    item = items.first
    expect(item.locator('[data-field="reason"]')).to_have_text("ann@example.com")
    sides = item.locator(".merge-side")
    expect(sides.first.locator(".merge-side__name")).to_have_text("Ann Lee")
    expect(sides.first).to_contain_text("Lead")
    expect(sides.first).to_contain_text("€50.00")
    expect(sides.first.locator("[data-shared=true]")).to_contain_text("ann@example.comMatched")
    expect(sides.last.locator(".merge-side__name")).to_have_text("A. Lee")
    expect(sides.last).to_contain_text("+14155550100")
    expect(sides.last).to_contain_text("Customer")
    expect(sides.first.get_by_label("Keep this one")).to_be_checked()  # the first, unless chosen
    shot(page, "merge-queue")

    # Keep the second one; the merge asks first, and cancelling merges nothing.
    sides.last.get_by_label("Keep this one").check()
    item.get_by_role("button", name="Merge…").click()
    dialog = page.get_by_role("dialog", name="Merge these contacts?")
    expect(dialog).to_contain_text("Ann Lee will be merged into A. Lee.")
    shot(page, "merge-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(items).to_have_count(2)
    item.get_by_role("button", name="Merge…").click()
    dialog.get_by_role("button", name="Merge", exact=True).click()
    expect(page.locator("#merge-notice")).to_have_text("Merged Ann Lee into A. Lee.")
    expect(items).to_have_count(1)
    assert contact_row(live_server, ann).merged_into_id == a_lee

    # Dismissed: they stay apart, and the queue is empty.
    items.first.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#merge-notice")).to_have_text(
        "Dismissed: Bob Stone and Robert Stone stay separate."
    )
    expect(page.get_by_text("No merge suggestions")).to_be_visible()

    async def statuses(sessions: SessionFactory) -> dict[uuid.UUID, str]:
        async with sessions() as session:
            rows = (
                await session.get(MergeSuggestion, first),
                await session.get(MergeSuggestion, second),
            )
            return {row.id: row.status for row in rows if row is not None}

    assert live_server.db(statuses) == {first: "merged", second: "dismissed"}
    shot(page, "merge-queue-empty")

    # An agent looks but is not offered what the API would refuse them.
    context.clear_cookies()
    live_server.sign_in(context, live_server.user(Role.AGENT, name="Al Agent"))
    page.goto("/contacts/merge-suggestions")
    expect(page.get_by_text("Only admins and managers can merge")).to_be_visible()
    expect(page.get_by_text("No merge suggestions")).to_be_visible()
    expect(page.get_by_role("button", name="Merge…")).to_have_count(0)
