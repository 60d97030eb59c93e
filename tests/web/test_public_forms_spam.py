"""Each spam defence of POST /forms/{key} over real HTTP: the honeypot, the render token
(too fast, too old, another form's, forged, missing when required), and posts without a
token when the form does not require one."""

from __future__ import annotations

import pytest

from connectors.webform.spam import issue_token
from tests.web.conftest import SECRET_KEY, Client
from tests.web.test_public_forms_support import (
    MovableClock,
    make_channel,
    make_form,
    page_token,
    ready_token,
    stored,
    timer,
)
from web.public_forms.keys import TOKEN_SECRET_KEY
from web.public_forms.token import token_secret

__all__ = ["timer"]

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
HTML = {"Accept": "text/html"}
SUCCESS = {"ok": True, "message": "Thank you, we received your message.", "redirect_url": None}


async def test_honeypot_is_answered_like_success_and_stores_nothing(
    client: Client, timer: MovableClock
) -> None:
    form = await make_form(client)
    token = await ready_token(client, form, timer)
    caught = await client.post(
        f"/forms/{form.key}",
        json={"email": "bot@example.com", "website": "http://spam.example", "_token": token},
    )
    assert caught.status == 200
    assert await caught.json() == SUCCESS
    assert await stored(client, form) == (0, 0)
    real = await client.post(
        f"/forms/{form.key}", json={"email": "ann@example.com", "_token": token}
    )
    assert (real.status, await real.json()) == (caught.status, SUCCESS)
    assert await stored(client, form) == (1, 1)


@sqlite_only
async def test_honeypot_on_a_plain_post_redirects_like_success(
    client: Client, timer: MovableClock
) -> None:
    form = await make_form(client)
    token = await ready_token(client, form, timer)
    response = await client.post(
        f"/forms/{form.key}",
        data={"email": "bot@example.com", "website": "x", "_token": token},
        headers=HTML,
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/forms/{form.key}/thanks"
    assert await stored(client, form) == (0, 0)


@sqlite_only
async def test_channel_can_rename_the_honeypot(client: Client, timer: MovableClock) -> None:
    form = await make_form(client, await make_channel(client, honeypot_field="homepage"))
    page = await (await client.get(f"/forms/{form.key}")).text()
    assert 'name="homepage"' in page
    token = await ready_token(client, form, timer)
    response = await client.post(
        f"/forms/{form.key}", json={"email": "bot@example.com", "homepage": "x", "_token": token}
    )
    assert await response.json() == SUCCESS
    assert await stored(client, form) == (0, 0)


@sqlite_only
async def test_token_used_too_fast_is_refused(client: Client, timer: MovableClock) -> None:
    form = await make_form(client)
    token = await page_token(client, form)
    timer.advance(seconds=1)
    response = await client.post(
        f"/forms/{form.key}", json={"email": "a@example.com", "_token": token}
    )
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "too_fast"
    timer.advance(seconds=5)  # the same token, a moment later, is fine
    again = await client.post(
        f"/forms/{form.key}", json={"email": "a@example.com", "_token": token}
    )
    assert again.status == 200
    assert await stored(client, form) == (1, 1)


@sqlite_only
async def test_too_fast_plain_post_shows_the_form_again_with_the_values(
    client: Client, timer: MovableClock
) -> None:
    form = await make_form(client)
    token = await page_token(client, form)
    response = await client.post(
        f"/forms/{form.key}",
        data={"email": "ann@example.com", "name": "Ann <3", "_token": token},
        headers=HTML,
    )
    assert response.status == 422
    page = await response.text()
    assert "That was very quick" in page
    assert 'value="ann@example.com"' in page and 'value="Ann &lt;3"' in page
    assert await stored(client, form) == (0, 0)


@sqlite_only
async def test_channel_minimum_time_applies(client: Client, timer: MovableClock) -> None:
    form = await make_form(client, await make_channel(client, min_seconds_to_submit=60))
    token = await ready_token(client, form, timer)  # 20 seconds: not enough here
    response = await client.post(
        f"/forms/{form.key}", json={"email": "a@example.com", "_token": token}
    )
    assert (await response.json())["error"]["code"] == "too_fast"


@sqlite_only
async def test_token_too_old_is_refused(client: Client, timer: MovableClock) -> None:
    form = await make_form(client)
    token = await page_token(client, form)
    timer.advance(hours=25)
    response = await client.post(
        f"/forms/{form.key}", json={"email": "a@example.com", "_token": token}
    )
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "expired"
    assert await stored(client, form) == (0, 0)


@sqlite_only
async def test_token_of_another_form_is_refused(client: Client, timer: MovableClock) -> None:
    form = await make_form(client)
    other = await make_form(client)
    token = await ready_token(client, other, timer)
    response = await client.post(
        f"/forms/{form.key}", json={"email": "a@example.com", "_token": token}
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "wrong_form"
    assert await stored(client, form) == (0, 0)


@sqlite_only
@pytest.mark.parametrize("how", ["tampered", "other secret", "raw secret", "garbage", "huge"])
async def test_forged_token_is_refused(client: Client, timer: MovableClock, how: str) -> None:
    form = await make_form(client)
    real = await ready_token(client, form, timer)
    issued_at = timer.now()
    secret = client.app[TOKEN_SECRET_KEY]
    forged = {
        # An earlier issue time, to get past "too fast", breaks the signature.
        "tampered": real.replace(real.split(".")[2], str(int(real.split(".")[2]) - 100)),
        "other secret": issue_token(token_secret("another installation"), form.key, issued_at),
        # The installation's secret itself is never the signing key.
        "raw secret": issue_token(SECRET_KEY.encode(), form.key, issued_at),
        "garbage": "v1.\x00.<script>",
        "huge": "v1." + "a" * 10_000,
    }[how]
    assert forged != real and secret
    response = await client.post(
        f"/forms/{form.key}", json={"email": "a@example.com", "_token": forged}
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "bad_token"
    assert await stored(client, form) == (0, 0)


@sqlite_only
async def test_required_token_refuses_a_post_without_one(
    client: Client, timer: MovableClock
) -> None:
    form = await make_form(client, require_token=True)
    response = await client.post(f"/forms/{form.key}", json={"email": "a@example.com"})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "missing_token"
    token = await ready_token(client, form, timer)
    accepted = await client.post(
        f"/forms/{form.key}", json={"email": "a@example.com", "_token": token}
    )
    assert accepted.status == 200
    assert await stored(client, form) == (1, 1)


async def test_plain_api_post_without_a_token_is_accepted(client: Client) -> None:
    form = await make_form(client)
    response = await client.post(
        f"/forms/{form.key}",
        data={"email": "api@example.com", "message": "from a server"},
    )
    assert response.status == 200
    assert await response.json() == SUCCESS
    assert await stored(client, form) == (1, 1)


async def test_double_submit_with_one_token_makes_one_message(
    client: Client, timer: MovableClock
) -> None:
    form = await make_form(client)
    token = await ready_token(client, form, timer)
    body = {"email": "ann@example.com", "message": "once", "_token": token}
    for _ in range(2):
        response = await client.post(f"/forms/{form.key}", json=body)
        assert await response.json() == SUCCESS
    assert await stored(client, form) == (1, 1)
