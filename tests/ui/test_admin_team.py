"""The team screen: an admin invites an agent, who sets a password through the link in
another browser and signs in; an admin changes roles, channels, capacity and the active
flag, and makes, renames and deletes teams. Screenshots in light, dark and phone width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from inbox.models import Role, User
from inbox.routing_models import AgentCapacity
from tests.ui.conftest import DESKTOP
from tests.ui.harness import BrowserProblems, LiveServer, add_conversation, shot
from timeline.db import SessionFactory

NEW_PASSWORD = "a brand new password"


def test_an_invited_agent_sets_a_password_and_signs_in(
    browser: Browser,
    context: BrowserContext,
    page: Page,
    live_server: LiveServer,
    problems: BrowserProblems,
) -> None:
    # The set-password page answers 422 to a refused password, 410/404 to dead links.
    problems.allowed.append(r"status of 4(22|10|04) .*'url': '[^']*/invitations/inv_")
    admin = live_server.user(Role.ADMIN, name="Ada Admin")
    add_conversation(live_server, channel_name="Support")
    add_conversation(live_server, channel_name="Sales")
    live_server.sign_in(context, admin)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/settings/team")
    expect(page.get_by_role("heading", name="Agents and teams", level=1)).to_be_visible()
    expect(page.locator(".admin-nav a[aria-current=page]")).to_have_attribute(
        "href", "/settings/team"
    )

    page.get_by_role("button", name="Invite an agent").click()
    dialog = page.locator("#invite-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Email").fill("nika@example.com")
    dialog.get_by_label("Name").fill("Nika Newcomer")
    dialog.get_by_label("Role").select_option("agent")
    dialog.get_by_label("Support").check()
    shot(page, "team-invite")
    dialog.get_by_role("button", name="Create the invitation link").click()
    link = dialog.get_by_label("Invitation link")
    expect(link).to_be_visible()
    url = link.input_value()
    assert re.fullmatch(rf"{live_server.base_url}/invitations/inv_[\w-]{{43}}", url), url
    expect(dialog).to_contain_text("Send this link to nika@example.com. It works once, until")
    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.get_by_role("status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == url
    shot(page, "team-invite-link")
    dialog.get_by_role("button", name="Done").click()
    page.wait_for_url("**/settings/team?done=saved")
    nika = page.locator("#agents tbody tr", has_text="Nika Newcomer")
    expect(nika).to_contain_text("Invited")
    expect(nika).to_contain_text("Support")
    expect(nika).not_to_contain_text("Sales")
    # A new link replaces the first one.
    nika.get_by_role("button", name="New link").click()
    expect(link).to_be_visible()
    first_url, url = url, link.input_value()
    assert url != first_url and url.startswith(f"{live_server.base_url}/invitations/inv_")
    dialog.get_by_role("button", name="Done").click()
    page.wait_for_url("**/settings/team?done=saved")
    expect(nika).to_contain_text("Link valid until")

    # The invitee, in a browser of their own: no session, only the link.
    invitee = browser.new_context(base_url=live_server.base_url, viewport=DESKTOP)  # type: ignore[arg-type]
    invitee.set_default_timeout(15_000)
    problems.watch(invitee)
    try:
        other = invitee.new_page()
        other.goto(first_url)
        expect(other.locator("#invitation-state")).to_have_text(
            "A newer invitation replaced this one"
        )
        other.goto(url)
        expect(other.get_by_role("heading", name="Welcome to Switchboard")).to_be_visible()
        expect(other.get_by_label("Email")).to_have_value("nika@example.com")
        other.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        other.get_by_label("Repeat the new password").fill("something else entirely")
        other.get_by_role("button", name="Set password and sign in").click()
        expect(other.locator("#f-confirm_password-error")).to_have_text(
            "The two new passwords differ."
        )
        other.get_by_label("New password", exact=True).fill("short")
        other.get_by_label("Repeat the new password").fill("short")
        other.get_by_role("button", name="Set password and sign in").click()
        expect(other.locator("#f-new_password-error")).to_have_text("Use at least 8 characters.")
        shot(other, "invitation-error")
        other.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        other.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
        other.get_by_role("button", name="Set password and sign in").click()
        other.wait_for_url("**/inbox")
        expect(other.locator(".menu__name")).to_contain_text("Nika Newcomer")

        # The link worked once.
        other.goto(url)
        expect(other.get_by_role("heading", name="This invitation has been used")).to_be_visible()
        shot(other, "invitation-used")
        other.goto("/invitations/inv_not-a-real-token")
        expect(other.locator("#invitation-state")).to_have_text(
            "This invitation link does not work"
        )

        # Signed out, they sign in with their new password.
        invitee.clear_cookies()
        other.goto("/login")
        other.get_by_label("Email").fill("nika@example.com")
        other.get_by_label("Password").fill(NEW_PASSWORD)
        other.get_by_role("button", name="Sign in").click()
        other.wait_for_url("**/inbox")
    finally:
        invitee.close()

    page.reload()
    expect(nika.locator(".team-state")).to_have_text("Active")
    expect(nika.get_by_role("button", name="New link")).to_have_count(0)


@pytest.mark.parametrize("ui_database_url", ["postgresql"], indirect=True)
def test_an_admin_changes_agents_and_teams(
    context: BrowserContext, page: Page, live_server: LiveServer, problems: BrowserProblems
) -> None:
    # Refusals the test provokes: an empty limit, and demoting the last admin.
    problems.allowed.append(r"status of 422 .*'url': '[^']*/api/v1/agents/[\w-]+/capacity'")
    problems.allowed.append(r"status of 409 .*'url': '[^']*/api/v1/users/[\w-]+'")
    admin = live_server.user(Role.ADMIN, name="Ada Admin")
    bea = live_server.user(Role.AGENT, name="Bea Agent")
    live_server.user(Role.AGENT, name="Cyrus Agent")
    add_conversation(live_server, channel_name="Support", members=(bea,))
    add_conversation(live_server, channel_name="Sales")
    live_server.sign_in(context, admin)
    page.goto("/settings/team")
    bea_row = page.locator("#agents tbody tr", has_text="Bea Agent")
    expect(bea_row).to_contain_text("Support")
    expect(bea_row.locator(".team-capacity")).to_contain_text("Policy default")

    # Bea becomes a manager on Sales instead of Support, with at most 3 open conversations.
    bea_row.get_by_role("button", name="Edit Bea Agent").click()
    dialog = page.locator("#agent-dialog")
    expect(dialog).to_contain_text(bea.email)
    expect(dialog.get_by_label("Support")).to_be_checked()
    dialog.get_by_label("Role").select_option("manager")
    dialog.get_by_label("Support").uncheck()
    dialog.get_by_label("Sales").check()
    dialog.get_by_label("Open conversations at most").fill("3")
    expect(dialog.get_by_label("At most this many")).to_be_checked()
    shot(page, "team-edit-agent")
    dialog.get_by_role("button", name="Save").click()
    page.wait_for_url("**/settings/team?done=saved")
    expect(page.locator("#team-notice")).to_have_text("Saved.")
    expect(bea_row.locator("[data-role]")).to_have_text("Manager")
    expect(bea_row).to_contain_text("Sales")
    expect(bea_row).not_to_contain_text("Support")
    expect(bea_row.locator(".team-capacity")).to_contain_text("At most 3")
    assert _capacity(live_server, bea) == 3

    # The capacity goes back to the policy's default; an empty limit is refused.
    bea_row.get_by_role("button", name="Edit Bea Agent").click()
    expect(dialog.get_by_label("Open conversations at most")).to_have_value("3")
    dialog.get_by_label("Open conversations at most").fill("")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "It could not be saved. Check the fields marked."
    )
    expect(dialog.get_by_label("Open conversations at most")).to_have_attribute(
        "aria-invalid", "true"
    )
    dialog.get_by_label("Policy default").check()
    dialog.get_by_role("button", name="Save").click()
    page.wait_for_url("**/settings/team?done=saved")
    expect(bea_row.locator(".team-capacity")).to_contain_text("Policy default")
    assert _capacity(live_server, bea) is None

    # The last admin cannot step down; Cyrus is deactivated and reactivated.
    page.locator("#agents tbody tr", has_text="Ada Admin").get_by_role("button").click()
    dialog.get_by_label("Role").select_option("agent")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_have_text("Someone must remain an active admin.")
    dialog.get_by_role("button", name="Cancel").click()
    cyrus_row = page.locator("#agents tbody tr", has_text="Cyrus Agent")
    cyrus_row.get_by_role("button", name="Edit Cyrus Agent").click()
    dialog.get_by_role("button", name="Deactivate").click()
    page.wait_for_url("**/settings/team?done=saved")
    expect(cyrus_row.locator(".team-state")).to_have_text("Deactivated")
    cyrus_row.get_by_role("button", name="Edit Cyrus Agent").click()
    expect(dialog.get_by_role("button", name="Deactivate")).to_be_hidden()
    dialog.get_by_role("button", name="Reactivate").click()
    page.wait_for_url("**/settings/team?done=saved")
    expect(cyrus_row.locator(".team-state")).to_have_text("Active")

    # A team with two members, renamed, then deleted.
    expect(page.locator("#teams-title")).to_be_visible()
    page.get_by_role("button", name="New team").click()
    team_dialog = page.locator("#team-dialog")
    expect(team_dialog.get_by_role("heading")).to_have_text("New team")
    team_dialog.get_by_label("Name", exact=True).fill("First line")
    team_dialog.get_by_label("Description").fill("Answers everything first")
    team_dialog.get_by_label("Bea Agent").check()
    team_dialog.get_by_label("Cyrus Agent").check()
    team_dialog.get_by_role("button", name="Save").click()
    page.wait_for_url("**/settings/team?done=saved")
    team_row = page.locator("#teams tbody tr", has_text="First line")
    expect(team_row).to_contain_text("Bea Agent")
    expect(team_row).to_contain_text("Cyrus Agent")
    expect(bea_row).to_contain_text("First line")
    shot(page, "team")

    team_row.get_by_role("button", name="Edit First line").click()
    expect(team_dialog.get_by_role("heading")).to_have_text("Edit team")
    expect(team_dialog.get_by_label("Bea Agent")).to_be_checked()
    team_dialog.get_by_label("Name", exact=True).fill("Front desk")
    team_dialog.get_by_label("Cyrus Agent").uncheck()
    team_dialog.get_by_role("button", name="Save").click()
    page.wait_for_url("**/settings/team?done=saved")
    team_row = page.locator("#teams tbody tr", has_text="Front desk")
    expect(team_row).not_to_contain_text("Cyrus Agent")

    page.emulate_media(color_scheme="dark")
    shot(page, "team-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(bea_row).to_be_visible()
    shot(page, "team-phone")
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]

    team_row.get_by_role("button", name="Delete Front desk").click()
    confirm = page.locator("#confirm-dialog")
    expect(confirm).to_contain_text("Front desk will be deleted.")
    confirm.get_by_role("button", name="Delete").click()
    page.wait_for_url("**/settings/team?done=deleted")
    expect(page.locator("#team-notice")).to_have_text("The team was deleted.")
    expect(page.locator("#teams")).to_have_count(0)
    expect(bea_row).not_to_contain_text("Front desk")


def _capacity(server: LiveServer, user: User) -> int | None:
    async def read(sessions: SessionFactory) -> int | None:
        async with sessions() as session:
            row = await session.get(AgentCapacity, user.id)
            return None if row is None else row.max_open

    return server.db(read)
