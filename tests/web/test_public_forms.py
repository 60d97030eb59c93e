"""The public form endpoints over real HTTP: the hosted page, the embed script and
description, CORS, plain form posts without JavaScript, and every refusal of a body."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, update

from tests.web.conftest import Client
from tests.web.test_public_forms_support import (
    ALLOWED,
    CHANNEL_ALLOWED,
    CONTACT_FIELDS,
    FILE_FIELD,
    FOREIGN,
    PDF,
    MovableClock,
    forget_forms,
    make_channel,
    make_form,
    ready_token,
    stored,
    timer,
)
from timeline.models import Attachment, Form, Message
from web.keys import SESSIONS_KEY, SETTINGS_KEY

__all__ = ["timer"]

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON_ACCEPT = {"Accept": "application/json"}


def own_origin(client: Client) -> str:
    return client.app[SETTINGS_KEY].base_url


# --- the hosted page -----------------------------------------------------------------


@sqlite_only
async def test_hosted_page_has_its_security_headers_and_a_nonced_style(client: Client) -> None:
    form = await make_form(client)
    response = await client.get(f"/forms/{form.key}?utm_source=news")
    assert response.status == 200
    assert response.content_type == "text/html"
    csp = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    page = await response.text()
    assert f'<style nonce="{nonce.group(1)}">' in page
    assert "default-src 'none'" in csp
    # Framing allowed to the form's and the channel's origins only.
    assert ALLOWED in csp and CHANNEL_ALLOWED in csp and FOREIGN not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "no-store" in response.headers["Cache-Control"]
    assert 'name="_token" value="v1.' in page
    assert "<script" not in page  # works without JavaScript
    assert 'name="website"' in page  # the honeypot
    assert f'action="/forms/{form.key}"' in page
    assert "utm_source=news" in page  # the page URL is posted back for attribution


@sqlite_only
async def test_every_render_gets_its_own_nonce_and_token(client: Client) -> None:
    form = await make_form(client)
    a = await client.get(f"/forms/{form.key}")
    b = await client.get(f"/forms/{form.key}")
    assert a.headers["Content-Security-Policy"] != b.headers["Content-Security-Policy"]
    tokens = [re.findall(r'name="_token" value="([^"]+)"', await r.text()) for r in (a, b)]
    assert tokens[0] != tokens[1]


@sqlite_only
@pytest.mark.parametrize("key", ["nope", "x" * 65, "k%00ey", "%E2%80%AE", "k%20y"])
async def test_unknown_form_is_a_small_404_page(client: Client, key: str) -> None:
    await make_form(client)
    response = await client.get(f"/forms/{key}")
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "Form not found" in await response.text()
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    post = await client.post(f"/forms/{key}", json={"email": "a@example.com"})
    assert post.status == 404
    assert (await post.json())["error"]["code"] == "not_found"


@sqlite_only
async def test_inactive_form_is_404_everywhere(client: Client) -> None:
    form = await make_form(client, active=False)
    for path in ("", "/form.json", "/embed.js", "/thanks"):
        response = await client.get(f"/forms/{form.key}{path}")
        assert response.status == 404, path
    post = await client.post(f"/forms/{form.key}", json={"email": "ann@example.com"})
    assert post.status == 404
    assert await stored(client, form) == (0, 0)


@sqlite_only
async def test_a_form_deactivated_later_is_404_once_the_cache_forgets_it(client: Client) -> None:
    form = await make_form(client)
    assert (await client.get(f"/forms/{form.key}")).status == 200
    async with client.app[SESSIONS_KEY]() as session:
        await session.execute(update(Form).where(Form.id == form.id).values(active=False))
        await session.commit()
    forget_forms(client)
    assert (await client.get(f"/forms/{form.key}")).status == 404


@sqlite_only
async def test_paused_channel_makes_the_form_unavailable_503(client: Client) -> None:
    form = await make_form(client, await make_channel(client, paused=True))
    page = await client.get(f"/forms/{form.key}")
    assert page.status == 503
    assert page.headers["Retry-After"]
    assert "not accepting submissions" in await page.text()
    post = await client.post(f"/forms/{form.key}", json={"email": "ann@example.com"})
    assert post.status == 503
    assert (await post.json())["error"]["code"] == "unavailable"
    assert await stored(client, form) == (0, 0)


async def test_plain_form_post_round_trip_urlencoded(client: Client, timer: MovableClock) -> None:
    form = await make_form(client)
    token = await ready_token(client, form, timer)
    response = await client.post(
        f"/forms/{form.key}",
        data={
            "name": "Ann Lee",
            "email": "Ann@Example.com",
            "message": "Call me back\r\nplease",
            "website": "",
            "_token": token,
            "_page_url": "https://shop.example.com/contact?utm_campaign=spring",
        },
        headers={**HTML, "Origin": own_origin(client)},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == f"/forms/{form.key}/thanks"
    thanks = await client.get(response.headers["Location"])
    assert thanks.status == 200
    assert "Thank you, we received your message." in await thanks.text()
    assert "nonce-" in thanks.headers["Content-Security-Policy"]
    assert await stored(client, form) == (1, 1)
    async with client.app[SESSIONS_KEY]() as session:
        text = await session.scalar(
            select(Message.text).where(Message.channel_id == form.channel_id)
        )
    assert text is not None and text.startswith("Call me back\nplease")


async def test_plain_form_post_multipart_with_a_file(client: Client, timer: MovableClock) -> None:
    form = await make_form(client, fields=[*CONTACT_FIELDS, FILE_FIELD])
    page = await client.get(f"/forms/{form.key}")
    assert 'enctype="multipart/form-data"' in await page.text()
    token = await ready_token(client, form, timer)
    data = aiohttp.FormData()
    data.add_field("email", "bob@example.com")
    data.add_field("message", "My CV")
    data.add_field("_token", token)
    data.add_field("cv", PDF, filename="cv.pdf", content_type="application/pdf")
    response = await client.post(
        f"/forms/{form.key}", data=data, headers=HTML, allow_redirects=False
    )
    assert response.status == 303, await response.text()
    assert await stored(client, form) == (1, 1)
    async with client.app[SESSIONS_KEY]() as session:
        files = (await session.scalars(select(Attachment))).all()
    assert [(f.filename, f.content_type, f.size) for f in files] == [
        ("cv.pdf", "application/pdf", len(PDF))
    ]


@sqlite_only
async def test_plain_post_goes_to_the_forms_redirect_url(
    client: Client, timer: MovableClock
) -> None:
    form = await make_form(client, redirect_url="https://shop.example.com/thanks")
    token = await ready_token(client, form, timer)
    response = await client.post(
        f"/forms/{form.key}",
        data={"email": "ann@example.com", "_token": token},
        headers=HTML,
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "https://shop.example.com/thanks"
    csp = (await client.get(f"/forms/{form.key}")).headers["Content-Security-Policy"]
    assert "form-action 'self' https://shop.example.com" in csp


# --- embed script and description ----------------------------------------------------


@sqlite_only
async def test_embed_script_names_its_form_and_is_cached_briefly(client: Client) -> None:
    form = await make_form(client)
    response = await client.get(f"/forms/{form.key}/embed.js")
    assert response.status == 200
    assert response.content_type == "application/javascript"
    assert "max-age=300" in response.headers["Cache-Control"]
    script = await response.text()
    base = own_origin(client)
    assert f'"descriptionUrl": "{base}/forms/{form.key}/form.json"' in script
    assert "/*SWITCHBOARD_CONFIG*/null" not in script
    missing = await client.get("/forms/nope/embed.js")
    assert missing.status == 404


@sqlite_only
async def test_description_has_a_fresh_token_and_cors_for_allowed_origins(
    client: Client,
) -> None:
    form = await make_form(client)
    response = await client.get(f"/forms/{form.key}/form.json", headers={"Origin": ALLOWED})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store"
    document = await response.json()
    assert document["token"].startswith("v1.")
    assert document["submit_url"] == f"{own_origin(client)}/forms/{form.key}"
    assert [f["name"] for f in document["fields"]] == ["name", "email", "phone", "message"]
    assert "channel_id" not in document and "allowed_origins" not in document
    again = await (await client.get(f"/forms/{form.key}/form.json")).json()
    assert again["token"] != document["token"]
    foreign = await client.get(f"/forms/{form.key}/form.json", headers={"Origin": FOREIGN})
    assert foreign.status == 200
    assert "Access-Control-Allow-Origin" not in foreign.headers


# --- CORS ----------------------------------------------------------------------------


def preflight_headers(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type",
    }


@sqlite_only
@pytest.mark.parametrize("origin", [ALLOWED, CHANNEL_ALLOWED, "HTTPS://Shop.Example.com:443"])
async def test_preflight_for_an_allowed_origin(client: Client, origin: str) -> None:
    form = await make_form(client)
    response = await client.options(f"/forms/{form.key}", headers=preflight_headers(origin))
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    assert "Idempotency-Key" in response.headers["Access-Control-Allow-Headers"]
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert response.headers["Vary"] == "Origin"
    described = await client.options(
        f"/forms/{form.key}/form.json", headers=preflight_headers(origin, "GET")
    )
    assert described.status == 204
    assert described.headers["Access-Control-Allow-Methods"] == "GET"


@sqlite_only
@pytest.mark.parametrize(
    ("origin", "method"),
    [
        (FOREIGN, "POST"),
        ("null", "POST"),
        ("https://shop.example.com.evil.net", "POST"),
        ("http://shop.example.com", "POST"),  # another scheme is another origin
        (ALLOWED, "DELETE"),
    ],
)
async def test_preflight_refused_without_cors_headers(
    client: Client, origin: str, method: str
) -> None:
    form = await make_form(client)
    response = await client.options(f"/forms/{form.key}", headers=preflight_headers(origin, method))
    assert response.status == 403
    assert not any(h.startswith("Access-Control-") for h in response.headers)


@sqlite_only
async def test_post_from_a_foreign_origin_is_refused(client: Client) -> None:
    form = await make_form(client)
    for origin in (FOREIGN, "null"):
        response = await client.post(
            f"/forms/{form.key}", json={"email": "ann@example.com"}, headers={"Origin": origin}
        )
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden_origin"
        assert "Access-Control-Allow-Origin" not in response.headers
    assert await stored(client, form) == (0, 0)


async def test_posts_from_allowed_own_and_no_origin_are_accepted(client: Client) -> None:
    form = await make_form(client)
    for n, origin in enumerate((ALLOWED, own_origin(client), None)):
        headers = {"Origin": origin} if origin else {}
        response = await client.post(
            f"/forms/{form.key}",
            json={"email": f"visitor{n}@example.com", "message": "hello"},
            headers={**JSON_ACCEPT, **headers},
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body == {
            "ok": True,
            "message": "Thank you, we received your message.",
            "redirect_url": None,
        }
        allow = response.headers.get("Access-Control-Allow-Origin")
        assert allow == (ALLOWED if origin == ALLOWED else None)
    assert await stored(client, form) == (3, 3)


# --- refused bodies ------------------------------------------------------------------


@sqlite_only
async def test_oversize_body_is_413_declared_or_not(client: Client) -> None:
    form = await make_form(client)
    big = b"message=" + b"a" * (300 * 1024)
    declared = await client.post(
        f"/forms/{form.key}",
        data=big,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert declared.status == 413
    assert (await declared.json())["error"]["code"] == "too_large"

    async def chunks() -> Any:
        for _ in range(40):
            yield b"a" * (16 * 1024)

    streamed = await client.post(
        f"/forms/{form.key}",
        data=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status == 413
    assert await stored(client, form) == (0, 0)


@sqlite_only
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "", "application/x-www-form-urlencoded; charset=latin-1"],
)
async def test_other_content_types_are_415(client: Client, content_type: str) -> None:
    form = await make_form(client)
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(f"/forms/{form.key}", data=b"email=a@example.com", headers=headers)
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_media_type"


@sqlite_only
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"email": '),
        ("application/json", b'["email", "a@example.com"]'),
        ("application/json", b'"just a string"'),
        ("application/json", b"\xff\xfe{}"),
        ("application/json", b"[" * 100_000),
        ("multipart/form-data", b"--x\r\n\r\nno boundary declared"),
        ("multipart/form-data; boundary=zzz", b"--zzz\r\nContent-Disposition: form-data"),
    ],
)
async def test_malformed_bodies_are_400(client: Client, content_type: str, body: bytes) -> None:
    form = await make_form(client)
    response = await client.post(
        f"/forms/{form.key}", data=body, headers={"Content-Type": content_type}
    )
    assert response.status == 400, await response.text()
    assert (await response.json())["error"]["code"] == "malformed"


@sqlite_only
async def test_field_errors_are_422_json(client: Client) -> None:
    form = await make_form(client)
    response = await client.post(
        f"/forms/{form.key}",
        json={"email": "not an email", "name": "x" * 501, "phone": "12", "message": ["a", "b"]},
        headers={"Origin": ALLOWED},
    )
    assert response.status == 422
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    error = (await response.json())["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"email", "name", "phone", "message"}
    assert "at most 500 characters" in error["fields"]["name"]
    missing = await client.post(f"/forms/{form.key}", json={"name": "Ann"})
    assert (await missing.json())["error"]["fields"] == {"email": "This field is required."}
    assert await stored(client, form) == (0, 0)


@sqlite_only
async def test_invalid_utf8_and_nul_are_field_answers_not_crashes(client: Client) -> None:
    form = await make_form(client)
    response = await client.post(
        f"/forms/{form.key}",
        data=b"email=%FF%FE&name=A%00nn",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 422
    fields = (await response.json())["error"]["fields"]
    assert fields == {"email": "This field is not valid UTF-8 text."}


@sqlite_only
async def test_plain_post_with_errors_shows_the_form_again_escaped(
    client: Client, timer: MovableClock
) -> None:
    form = await make_form(client)
    token = await ready_token(client, form, timer)
    response = await client.post(
        f"/forms/{form.key}",
        data={
            "name": '<script>alert("x")</script>',
            "email": "<b>nope</b>",
            "message": "</textarea><script>bad()</script>",
            "_token": token,
        },
        headers=HTML,
    )
    assert response.status == 422
    assert response.content_type == "text/html"
    page = await response.text()
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;/textarea&gt;&lt;script&gt;bad()&lt;/script&gt;" in page
    assert "There is a problem" in page
    assert 'aria-invalid="true"' in page
    assert "Enter a valid email address" in page
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    assert nonce is not None and f'<style nonce="{nonce.group(1)}">' in page
    # The visitor's token still stands: correcting and sending at once is not "too fast".
    assert f'value="{token}"' in page


@sqlite_only
@pytest.mark.parametrize(
    ("data", "filename", "content_type", "message"),
    [
        (b"%PDF-1.4\n" + b"0" * 3_000, "big.pdf", "application/pdf", "too large"),
        (b"<html><script>x()</script></html>", "cv.pdf", "application/pdf", ""),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "cv.png", "image/png", ""),
    ],
)
async def test_file_size_and_type_limits(
    client: Client, data: bytes, filename: str, content_type: str, message: str
) -> None:
    form = await make_form(client, fields=[*CONTACT_FIELDS, FILE_FIELD])
    body = aiohttp.FormData()
    body.add_field("email", "ann@example.com")
    body.add_field("cv", data, filename=filename, content_type=content_type)
    response = await client.post(f"/forms/{form.key}", data=body, headers=JSON_ACCEPT)
    assert response.status == 422, await response.text()
    fields = (await response.json())["error"]["fields"]
    assert list(fields) == ["cv"]
    assert message in fields["cv"]
    async with client.app[SESSIONS_KEY]() as session:
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 0


@sqlite_only
async def test_file_bigger_than_the_whole_form_allows_is_413(client: Client) -> None:
    form = await make_form(client, fields=[*CONTACT_FIELDS, FILE_FIELD])
    body = aiohttp.FormData()
    body.add_field("email", "ann@example.com")
    body.add_field("cv", b"%PDF" + b"0" * (400 * 1024), filename="a.pdf")
    response = await client.post(f"/forms/{form.key}", data=body)
    assert response.status == 413
