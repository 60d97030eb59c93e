"""The app's frame: views from the database, conversations by visibility, Persian right
to left, the dark theme, phone width, and keyboard access with visible focus."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from inbox.models import Role, User
from tests.ui.harness import PASSWORD, BrowserProblems, LiveServer, add_conversation, shot

# The focusable controls of a page, in document order, that a keyboard must reach.
CONTROLS = """() => [...document.querySelectorAll(
  'a[href], button, input:not([type=hidden]), select, textarea, summary')]
  .filter((el) => el.checkVisibility({ contentVisibilityAuto: true }))
  .map((el) => el.id || el.getAttribute('name') || el.textContent.trim().slice(0, 30))"""
FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    key: el.id || el.getAttribute('name') || el.textContent.trim().slice(0, 30),
    ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
  };
}"""


def tab_through(page: Page) -> None:
    """Tab round the page: every control gets focus, each with a visible ring."""
    controls = page.evaluate(CONTROLS)
    seen = []
    for _ in range(len(controls) + 2):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(FOCUSED))
    reached = {s["key"] for s in seen}
    assert set(controls) <= reached, (controls, seen)
    assert all(s["ring"] for s in seen if s["key"] in controls), seen


def test_views_visibility_and_persian(
    page: Page, live_server: LiveServer, signed_in: User, problems: BrowserProblems
) -> None:
    problems.allowed.append(r"status of 404 .*'url': '[^']*/conversations/")
    mine = add_conversation(
        live_server, channel_name="Support mail", members=(signed_in,), label="billing"
    )
    theirs = add_conversation(live_server, channel_name="Sales SMS")
    page.goto("/inbox")
    sidebar = page.locator(".sidebar")
    expect(sidebar).to_contain_text("Support mail")
    expect(sidebar).to_contain_text("billing")
    expect(sidebar).not_to_contain_text("Sales SMS")  # not a channel of theirs
    page.get_by_role("link", name="billing").click()
    expect(page.locator(".sidebar__views")).to_have_attribute("data-query", '{"label": "billing"}')

    # Their conversation opens; another channel's is the app's 404 page.
    page.goto(f"/conversations/{mine}")
    expect(page.locator(".app")).to_have_attribute("data-conversation-id", str(mine))
    response = page.goto(f"/conversations/{theirs}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading")).to_have_text("Page not found")
    shot(page, "not-found")

    # Persian, chosen on the account page: the whole interface turns right to left.
    page.goto("/account")
    page.get_by_label("Interface language").select_option("fa")
    page.get_by_role("button", name="Save language").click()
    page.wait_for_url("**/account?saved=language")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "fa")
    expect(page.get_by_role("status").first).to_be_visible()
    page.goto("/inbox")
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    expect(page.get_by_role("link", name="مال من")).to_be_visible()
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "open")
    expect(page.locator(".presence__text")).to_have_text("در دسترس")  # from the JS catalog
    sidebar_box = page.locator(".sidebar").bounding_box()
    list_box = page.locator(".pane--list").bounding_box()
    assert sidebar_box and list_box and sidebar_box["x"] > list_box["x"]  # views on the right
    shot(page, "inbox-fa")
    page.goto(f"/conversations/{mine}")
    shot(page, "conversation-fa")


def test_dark_theme_and_phone_width(
    context: BrowserContext,
    live_server: LiveServer,
    signed_in: User,
) -> None:
    conversation = add_conversation(live_server, channel_name="Support", members=(signed_in,))
    page = context.new_page()
    page.emulate_media(color_scheme="dark")
    page.goto("/inbox")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)", background
    shot(page, "inbox-dark")
    page.goto("/account")
    shot(page, "account-dark")

    # A phone: one pane at a time, the views behind the menu button, a back button.
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/inbox")
    expect(page.locator(".pane--list")).to_be_visible()
    expect(page.locator(".pane--conversation")).to_be_hidden()
    expect(page.locator(".sidebar")).to_be_hidden()
    menu = page.get_by_role("button", name="Views")
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".sidebar")).to_be_visible()
    shot(page, "phone-views")
    page.keyboard.press("Escape")
    expect(page.locator(".sidebar")).to_be_hidden()
    page.goto(f"/conversations/{conversation}")
    expect(page.locator(".pane--list")).to_be_hidden()
    expect(page.get_by_role("link", name="Back to the list")).to_be_visible()
    shot(page, "phone-conversation")
    page.get_by_role("link", name="Back to the list").click()
    page.wait_for_url("**/inbox")


def test_keyboard_and_password_change(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    problems.allowed.append(r"status of 422 .*'url': '[^']*/account/password'")
    # The login page: every control by Tab, each with a visible focus ring.
    page.goto("/login")
    tab_through(page)

    # The account page likewise (the user menu opened by keyboard shows its items).
    user = live_server.user(Role.AGENT, name="Kim Keys")
    live_server.sign_in(context, user)
    page.goto("/account")
    tab_through(page)
    page.locator("summary.menu__button").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["key"] == "Account"
    page.keyboard.press("Escape")

    # Change the password from the keyboard alone.
    page.get_by_label("Current password").focus()
    page.keyboard.type("wrong password!")
    page.keyboard.press("Tab")
    page.keyboard.type("a new password 123")
    page.keyboard.press("Tab")
    page.keyboard.type("a new password 123")
    page.keyboard.press("Enter")
    expect(page.locator("#f-current_password-error")).to_have_text(
        "That is not your current password."
    )
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("a new password 123")
    page.get_by_label("Repeat the new password").fill("a new password 123")
    page.get_by_label("Repeat the new password").press("Enter")
    expect(page.get_by_role("status").filter(has_text="changed")).to_be_visible()
    shot(page, "account")
