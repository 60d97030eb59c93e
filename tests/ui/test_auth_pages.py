"""Signing in and out, the anonymous redirect, `next=`, the login limiter, CSRF and
Origin on the pages' forms, and the pages' security headers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from inbox.models import User
from tests.ui.harness import PASSWORD, BrowserProblems, LiveServer, shot

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws://127.0.0.1:{port}; frame-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'; object-src 'none'"
)
# Inline script, inline handlers and style attributes: none may exist on our pages.
INLINE = """() => [
  ...document.querySelectorAll('script:not([src]):not([type="application/json"])'),
  ...document.querySelectorAll('[style]'),
  ...[...document.querySelectorAll('*')].filter(
    (el) => [...el.attributes].some((a) => a.name.startsWith('on'))),
].map((el) => el.outerHTML.slice(0, 80))"""


def next_of(url: str) -> str | None:
    """The `next` of a /login URL."""
    parts = urlsplit(url)
    assert parts.path == "/login", url
    return parse_qs(parts.query).get("next", [None])[0]


def test_sign_in_and_out(
    page: Page, live_server: LiveServer, agent: User, problems: BrowserProblems
) -> None:
    # The refused sign-in answers 401, which Chromium reports on the console.
    problems.allowed.append(r"status of 401 .*'url': '[^']*/login'")
    # Anonymous: every page sends to the login page, remembering where it was going.
    response = page.goto("/inbox?view=mine")
    assert response is not None
    assert next_of(page.url) == "/inbox?view=mine"
    headers = response.headers
    assert headers["content-security-policy"] == CSP.format(port=live_server.port)
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert page.evaluate(INLINE) == []
    expect(page.get_by_label("Email")).to_be_focused()
    shot(page, "login")

    # A wrong password: a clear message, the email kept.
    page.get_by_label("Email").fill(agent.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value(agent.email)
    shot(page, "login-error")

    # The right one: on to where the visitor was going, with the cookie the API sets.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/inbox?view=mine")
    cookie = next(c for c in page.context.cookies() if c["name"] == "switchboard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    expect(page.locator(".sidebar__item[aria-current=page]")).to_contain_text("Mine")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "open")
    assert page.evaluate(INLINE) == []
    # The session is the API's: the page's CSRF token works for the API too.
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    answer = page.request.patch(
        "/api/v1/session",
        data={"language": None},
        headers={"X-CSRF-Token": token, "Origin": live_server.base_url},
    )
    assert answer.status == 200, answer.text()
    shot(page, "inbox")

    # GET / goes to the inbox; the user menu signs out for good.
    page.goto("/")
    assert page.url.endswith("/inbox")
    page.locator("summary.menu__button").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert not page.context.cookies()  # the cookie is gone too
    page.goto("/account")
    assert next_of(page.url) == "/account"


@pytest.mark.parametrize("server_settings", [{"login_address_failures": 3}])
def test_form_checks(context: BrowserContext, live_server: LiveServer, agent: User) -> None:
    """next= only to a local path; Origin and CSRF on the forms; the login limiter."""
    request = context.request
    origin = {"Origin": live_server.base_url}
    good: dict[str, str | float | bool] = {"email": agent.email, "password": PASSWORD}
    for target, expected in [
        ("https://evil.example/", "/inbox"),
        ("//evil.example/x", "/inbox"),
        ("/\\evil.example", "/inbox"),
        ("javascript:alert(1)", "/inbox"),
        ("/account?x=1", "/account?x=1"),
    ]:
        answer = request.post(
            "/login", form={**good, "next": target}, headers=origin, max_redirects=0
        )
        assert answer.status == 303, (target, answer.status)
        assert answer.headers["location"] == expected, target

    # Another site's page cannot sign anyone in, nor sign them out.
    foreign = request.post(
        "/login", form=good, headers={"Origin": "https://evil.example"}, max_redirects=0
    )
    assert foreign.status == 403 and "<html" in foreign.text()
    assert foreign.headers["content-security-policy"].startswith("default-src 'self'")
    assert request.post("/logout", form={}, headers=origin).status == 403
    assert request.post("/logout", form={"csrf_token": "x"}, headers=origin).status == 403
    signed_in = request.get("/account")
    assert signed_in.status == 200  # still signed in after the refused posts

    # The limiter: after 3 failures from this address, even the right password waits.
    wrong: dict[str, str | float | bool] = {"email": agent.email, "password": "nope-nope"}
    for _ in range(3):
        assert request.post("/login", form=wrong, headers=origin).status == 401
    limited = request.post("/login", form=good, headers=origin, max_redirects=0)
    assert limited.status == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in limited.text()

    # A conversation that does not exist is the app's 404 page, not the API's JSON.
    missing = request.get("/conversations/00000000-0000-0000-0000-000000000000")
    assert missing.status == 404 and "Page not found" in missing.text()
