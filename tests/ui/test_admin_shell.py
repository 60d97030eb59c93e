"""The frame of the admin and manager screens: the sections each role may open (the
sidebar and the guard agree), the top bar's links, and the Persian layout."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from inbox.models import Role
from tests.ui.harness import BrowserProblems, LiveServer
from web.ui.admin.nav import NAV


def test_each_role_sees_and_opens_only_its_sections(
    page: Page, context: BrowserContext, live_server: LiveServer, problems: BrowserProblems
) -> None:
    problems.allowed.append(r"status of 403")
    for role in (Role.AGENT, Role.MANAGER, Role.ADMIN):
        user = live_server.user(role, name=f"A {role.value}")
        context.clear_cookies()
        live_server.sign_in(context, user)
        page.goto("/contacts")
        links = page.locator(".admin-nav a")
        shown = sorted(links.evaluate_all("(links) => links.map((a) => a.pathname)"))
        assert shown == sorted(entry.path for entry in NAV if role in entry.roles), role
        expect(page.locator(".admin-nav a[aria-current=page]")).to_have_attribute(
            "href", "/contacts"
        )
        topbar = page.locator(".topbar__nav")
        expect(topbar.get_by_role("link", name="Contacts")).to_have_attribute(
            "aria-current", "page"
        )
        expect(topbar.get_by_role("link", name="Reports")).to_have_count(
            0 if role == Role.AGENT else 1
        )
        for entry in NAV:
            response = page.goto(entry.path)
            assert response is not None
            assert response.status == (200 if role in entry.roles else 403), (role, entry)


def test_the_admin_frame_reads_right_to_left_in_persian(
    page: Page, context: BrowserContext, live_server: LiveServer
) -> None:
    admin = live_server.user(Role.ADMIN, name="Leila", language="fa")
    live_server.sign_in(context, admin)
    page.goto("/settings/channels")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator(".admin-nav")).to_contain_text("تنظیمات")
    nav_box = page.locator(".admin-nav").bounding_box()
    main_box = page.locator(".admin-main").bounding_box()
    assert nav_box is not None and main_box is not None
    assert nav_box["x"] > main_box["x"]  # the sidebar is on the right

    # At phone width the top bar's links, state and menu fit: nothing runs off the screen.
    page.set_viewport_size({"width": 390, "height": 800})
    for path in ("/inbox", "/settings/channels"):
        page.goto(path)
        expect(page.locator(".topbar__nav")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        widths = page.locator(".topbar").evaluate("(bar) => [bar.scrollWidth, bar.clientWidth]")
        assert widths[0] <= widths[1], (path, widths)
