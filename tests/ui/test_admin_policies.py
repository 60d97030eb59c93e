"""The policies screens in Chromium: an admin builds business hours with a split day and
a holiday, an SLA policy counted in them, and a canned response whose preview fills its
placeholder, correcting what the API refuses at the field it names, then edits and
deletes; a manager writes a team's canned response in Persian but may not open business
hours or SLA policies. Screenshots of every screen, one dark, one at phone width."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from inbox.account_models import Team
from inbox.canned_models import CannedResponse
from inbox.metric_models import BusinessHours, ChannelBusinessHours, SlaPolicy
from inbox.models import Role
from tests.ui.harness import BrowserProblems, LiveServer, add_conversation, shot
from timeline.db import SessionFactory
from web.ui.admin.hours import EN_DASH


def _team(server: LiveServer, name: str) -> uuid.UUID:
    async def make(sessions: SessionFactory) -> uuid.UUID:
        async with sessions() as session, session.begin():
            team = Team(name=name)
            session.add(team)
            await session.flush()
            return team.id

    return server.db(make)


def _stored_policy(server: LiveServer) -> tuple[object, ...]:
    async def read(sessions: SessionFactory) -> tuple[object, ...]:
        async with sessions() as session:
            policy = (await session.scalars(select(SlaPolicy))).one()
            return (
                policy.name,
                policy.enabled,
                policy.first_response_seconds,
                policy.next_response_seconds,
                policy.resolution_seconds,
                policy.priorities,
            )

    return server.db(read)


def _tall_shot(page: Page, name: str) -> None:
    """A shot of the whole editor (the page scrolls inside its main column)."""
    page.set_viewport_size({"width": 1280, "height": 1600})
    shot(page, name)
    page.set_viewport_size({"width": 1280, "height": 800})


def _field_error(page: Page, label: str) -> None:
    """The control named `label` is marked invalid and described by a shown error."""
    control = page.get_by_label(label, exact=True)
    expect(control).to_have_attribute("aria-invalid", "true")
    described = (control.get_attribute("aria-describedby") or "").split()
    assert described  # the error comes last, after any hint
    expect(page.locator(f"#{described[-1]}")).to_be_visible()
    expect(page.locator(f"#{described[-1]}")).to_have_class(re.compile("field__error"))


@pytest.mark.parametrize("ui_database_url", ["postgresql"], indirect=True)
def test_an_admin_sets_hours_an_sla_and_a_canned_response(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    problems.allowed.append(r"status of (422|409)")  # the refusals this test provokes
    add_conversation(live_server, channel_name="Support email")
    _team(live_server, "Billing")
    admin = live_server.user(Role.ADMIN, name="Mina Rahimi")
    live_server.sign_in(context, admin)

    # Business hours: none yet.
    page.goto("/settings/hours")
    expect(page.locator(".admin-nav a[aria-current=page]")).to_have_attribute(
        "href", "/settings/hours"
    )
    expect(page.get_by_text("No business hours yet.")).to_be_visible()
    page.get_by_role("link", name="New schedule").click()
    page.wait_for_url("**/settings/hours/new")

    # A name, a zone the API does not know, Monday split in two, copied to the weekdays.
    page.get_by_label("Name", exact=True).fill("Berlin office")
    page.get_by_label("Time zone").fill("Mars/Olympus")
    monday = page.locator(".week-day[data-day=mon]")
    monday.get_by_label("Closes").fill("12:30")
    monday.get_by_role("button", name="Add hours").click()
    expect(monday.locator(".range")).to_have_count(2)
    monday.get_by_label("Opens").nth(1).fill("13:30")
    monday.get_by_label("Closes").nth(1).fill("18:00")
    page.get_by_role("button", name="Copy Monday to weekdays").click()
    expect(page.locator(".week-day[data-day=fri] .range")).to_have_count(2)
    expect(page.locator(".week-day[data-day=sat] [data-closed]")).to_be_visible()
    page.get_by_role("button", name="Add holiday").click()
    page.get_by_label("Date").fill("2030-12-25")
    page.get_by_label("Holiday name").fill("Christmas")
    page.get_by_role("checkbox", name="Support email").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("It could not be saved. Check the fields marked.")).to_be_visible()
    _field_error(page, "Time zone")
    expect(page.locator("[data-field=timezone] .field__error")).to_contain_text("Mars/Olympus")
    _tall_shot(page, "admin-hours-editor-error")

    # Overlapping ranges are named at their day.
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.locator(".week-day[data-day=wed]").get_by_label("Opens").nth(1).fill("11:00")
    page.get_by_role("button", name="Save").click()
    wednesday_error = page.locator(".week-day[data-day=wed] .field__error")
    expect(wednesday_error).to_contain_text("overlap")
    expect(page.locator("[data-field=timezone] .field__error")).to_be_hidden()
    page.locator(".week-day[data-day=wed]").get_by_label("Opens").nth(1).fill("13:30")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/settings/hours\?saved="))
    expect(page.get_by_text("Saved.", exact=True)).to_be_visible()
    row = page.locator("tr[data-saved]")
    expect(row).to_contain_text("Berlin office")
    expect(row).to_contain_text("Europe/Berlin")
    expect(row.locator(".week-line")).to_have_text(
        "Mon-Fri 09:00-12:30, 13:30-18:00".replace("-", EN_DASH)
    )
    expect(row.locator(".holiday-line")).to_have_text("Dec 25, 2030 Christmas")
    expect(row.locator(".policy-chip")).to_have_text("Support email")
    stored = _stored_hours(live_server)
    assert stored["timezone"] == "Europe/Berlin"
    assert stored["week"]["wed"] == [["09:00", "12:30"], ["13:30", "18:00"]]
    assert "sat" not in stored["week"]
    assert stored["holidays"] == [{"date": "2030-12-25", "name": "Christmas"}]
    assert len(stored["assigned"]) == 1
    shot(page, "admin-hours")

    # An SLA policy: a target of zero is refused at its field; the schedule it counts.
    page.get_by_role("link", name="SLA policies").click()
    expect(page.get_by_text("No SLA policies yet.")).to_be_visible()
    page.get_by_role("link", name="New policy").click()
    page.get_by_label("Name", exact=True).fill("Priority support")
    page.get_by_label("First response", exact=True).fill("0")
    page.get_by_role("button", name="Save").click()
    _field_error(page, "First response")
    page.get_by_label("First response", exact=True).fill("30")
    page.get_by_label("Unit of First response").select_option("minutes")
    page.get_by_label("Resolution", exact=True).fill("2")
    page.get_by_label("Unit of Resolution").select_option("days")
    calendars = page.locator("[data-members]")
    expect(calendars).to_have_count(1)
    page.get_by_role("checkbox", name="Billing").check()
    expect(calendars).to_be_hidden()  # Billing has no schedule: the wall clock
    page.get_by_role("checkbox", name="Billing").uncheck()
    page.get_by_role("checkbox", name="Support email").check()
    expect(calendars).to_be_visible()
    expect(calendars).to_contain_text("Berlin office")
    page.get_by_role("checkbox", name="Urgent").check()
    _tall_shot(page, "admin-sla-editor")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/settings/sla\?saved="))
    row = page.locator("tr[data-saved]")
    expect(row).to_contain_text("Priority support")
    expect(row.locator("td.num").nth(1)).to_have_text("30 min")
    expect(row.locator("td.num").nth(3)).to_have_text("2 d")
    expect(row.locator(".policy-chip")).to_have_text(["Support email", "Urgent"])

    # Edited: renamed, a next-response target, disabled.
    row.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("First response", exact=True)).to_have_value("30")
    expect(page.get_by_label("Unit of First response")).to_have_value("minutes")
    page.get_by_label("Name", exact=True).fill("Priority support (EU)")
    page.get_by_label("Next response", exact=True).fill("4")
    page.get_by_label("Unit of Next response").select_option("hours")
    page.get_by_label("Enabled").uncheck()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/settings/sla\?saved="))
    row = page.locator("tr[data-saved]")
    expect(row).to_contain_text("Priority support (EU)")
    expect(row).to_contain_text("Disabled")
    assert _stored_policy(live_server) == (
        "Priority support (EU)",
        False,
        1800,
        14400,
        172800,
        ["urgent"],
    )
    shot(page, "admin-sla")

    # A canned response: an unknown placeholder is named as it is typed; the preview
    # fills the known one from a sample contact.
    page.get_by_role("link", name="Canned responses").first.click()
    page.get_by_role("link", name="New response").click()
    expect(page.locator("#canned-preview")).to_have_text("The preview appears as you type.")
    page.get_by_label("Shortcut", exact=True).fill("greet")
    page.get_by_label("Title").fill("Greeting")
    text = page.get_by_label("Text", exact=True)
    text.fill("Hi {{contact.frist_name}}")
    expect(page.locator("[data-field=text] .field__error")).to_contain_text(
        "{{contact.frist_name}}"
    )
    expect(text).to_have_attribute("aria-invalid", "true")
    text.fill("Hello ")
    page.get_by_role("button", name="{{contact.first_name}}").click()
    text.press("End")
    text.type(", how can we help? {{agent.first_name}}")
    expect(page.locator("#canned-preview")).to_have_text("Hello Ann, how can we help? Mina")
    expect(text).not_to_have_attribute("aria-invalid", "true")
    shot(page, "admin-canned-editor")
    page.emulate_media(color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)", background
    shot(page, "admin-canned-editor-dark")
    page.emulate_media(color_scheme="light")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/settings/canned\?saved="))
    row = page.locator("tr[data-saved]")
    expect(row).to_contain_text("/greet")
    expect(row).to_contain_text("Everyone")
    expect(row).to_contain_text("Hello {{contact.first_name}}, how can we help?")

    # The same short code again is refused at the field.
    page.get_by_role("link", name="New response").click()
    page.get_by_label("Shortcut", exact=True).fill("GREET")
    page.get_by_label("Title").fill("Another")
    page.get_by_label("Text", exact=True).fill("Hi")
    page.get_by_role("button", name="Save").click()
    _field_error(page, "Shortcut")
    page.get_by_role("link", name="Cancel").click()

    # Search, then delete with a confirmation.
    page.get_by_label("Search", exact=True).fill("gree")
    page.get_by_label("Search", exact=True).press("Enter")
    expect(page.locator("tbody tr")).to_have_count(1)
    shot(page, "admin-canned")
    page.get_by_label("Search", exact=True).fill("nothing like it")
    page.get_by_label("Search", exact=True).press("Enter")
    expect(page.get_by_text("No response matches.")).to_be_visible()
    page.get_by_role("link", name="Clear").click()
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete this response?")
    expect(dialog).to_contain_text("/greet · Greeting")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    shot(page, "admin-canned-delete")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No canned responses yet.")).to_be_visible()
    assert live_server.db(_canned_count) == 0

    # The hours editor at phone width.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/settings/hours")
    page.get_by_role("link", name="Edit").click()
    expect(page.locator(".week-day[data-day=mon] .range")).to_have_count(2)
    shot(page, "admin-hours-editor-phone")


def _stored_hours(server: LiveServer) -> dict[str, Any]:
    async def read(sessions: SessionFactory) -> dict[str, Any]:
        async with sessions() as session:
            hours = (await session.scalars(select(BusinessHours))).one()
            assigned = list(await session.scalars(select(ChannelBusinessHours.channel_id)))
            return {
                "week": hours.week,
                "holidays": hours.holidays,
                "timezone": hours.timezone,
                "assigned": assigned,
            }

    return server.db(read)


async def _canned_count(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return len(list(await session.scalars(select(CannedResponse.id))))


def test_a_manager_writes_a_team_response_in_persian_but_not_hours(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    problems.allowed.append(r"status of (403|422)")
    _team(live_server, "Billing")
    manager = live_server.user(Role.MANAGER, name="Sara Karimi", language="fa")
    live_server.sign_in(context, manager)
    for path in ("/settings/hours", "/settings/hours/new", "/settings/sla"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path

    page.goto("/settings/canned")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", name="پاسخ‌های آماده")).to_be_visible()
    page.get_by_role("link", name="پاسخ تازه").click()
    page.get_by_label("میان‌بر", exact=True).fill("refund")
    page.get_by_label("عنوان").fill("بازپرداخت")
    page.get_by_label("چه کسی می‌تواند استفاده کند").select_option("team")
    page.get_by_label("متن", exact=True).fill("سلام {{contact.first_name | دوست عزیز}}")
    expect(page.locator("#canned-preview")).to_have_text("سلام Ann")
    page.get_by_role("button", name="ذخیره").click()
    # A team response needs its team: the API says so at the team picker.
    team = page.locator("#canned-team")
    expect(team).to_have_attribute("aria-invalid", "true")
    team.select_option(label="Billing")
    shot(page, "admin-canned-editor-fa")
    page.get_by_role("button", name="ذخیره").click()
    page.wait_for_url(re.compile(r"/settings/canned\?saved="))
    row = page.locator("tr[data-saved]")
    expect(row).to_contain_text("/refund")
    expect(row).to_contain_text("یک تیم")
    expect(row).to_contain_text("Billing")
    shot(page, "admin-canned-fa")
    # The sidebar offers what a manager may open.
    nav = page.locator(".admin-nav")
    expect(nav.locator("a[href='/settings/canned']")).to_have_attribute("aria-current", "page")
    expect(nav.locator("a[href='/settings/hours']")).to_have_count(0)
