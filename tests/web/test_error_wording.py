"""The API's errors in the language of the page that called it: a Persian user's own
pages get Persian field errors, worded from pydantic's error types; the same request
with a token, or from an English user, gets the API's English."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from inbox.models import Role, User
from inbox.users import issue_token
from tests.web.conftest import Client
from tests.web.test_sessions import API, login, make_user, with_cookie
from web.errors import Reason
from web.keys import SESSIONS_KEY
from web.ui.error_wording import BY_TYPE, _reason
from web.ui.i18n import translator

TOO_LONG = "x" * 300  # over a team name's limit


async def _signed_in(client: Client, language: str | None) -> dict[str, str]:
    sessions = client.app[SESSIONS_KEY]
    admin = await make_user(sessions, Role.ADMIN)
    async with sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == admin.id).values(language=language))
    answer, cookie = await login(client, admin.email)
    assert cookie is not None
    return with_cookie(cookie, answer["csrf_token"])


async def _refused(client: Client, headers: dict[str, str], body: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/teams", json=body, headers=headers)
    assert response.status == 422, await response.text()
    error: dict[str, Any] = (await response.json())["error"]
    assert error["code"] == "validation_error"  # the code never changes with the language
    return error


async def test_a_persian_page_reads_field_errors_in_persian(client: Client) -> None:
    headers = await _signed_in(client, "fa")
    error = await _refused(client, headers, {"description": "d", "surprise": 1})
    assert error["message"] == "ورودی نامعتبر است"
    assert error["fields"] == {"name": "الزامی است.", "surprise": "فیلد شناخته‌شده‌ای نیست."}
    error = await _refused(client, headers, {"name": TOO_LONG, "member_ids": ["nope"]})
    # The limit comes from the error's context, so it is the schema's real one.
    assert error["fields"]["name"].startswith("حداکثر ") and error["fields"]["name"].endswith(
        " نویسه."
    )
    assert error["fields"]["member_ids.0"] == "شناسهٔ معتبری نیست."


async def test_english_users_and_token_clients_get_the_apis_english(client: Client) -> None:
    english = await _signed_in(client, "en")
    error = await _refused(client, english, {"name": TOO_LONG})
    assert error["message"] == "invalid input"
    assert error["fields"]["name"].startswith("Value should have at most 200 items")
    # A Persian admin's token: an API client, not a page.
    sessions = client.app[SESSIONS_KEY]
    admin = await make_user(sessions, Role.ADMIN)
    async with sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == admin.id).values(language="fa"))
    async with sessions() as session:
        token = await issue_token(session, admin, name="script")
    error = await _refused(client, {"Authorization": f"Bearer {token}"}, {})
    assert (error["message"], error["fields"]) == ("invalid input", {"name": "Field required"})


def test_each_reason_is_worded_from_its_type_and_context() -> None:
    persian = translator("fa")
    assert _reason(persian, Reason("string_too_long", {"max_length": 5}, "x")) == "حداکثر 5 نویسه."
    assert _reason(persian, Reason("enum", {"expected": "1, 2"}, "x")) == (
        "یکی از این‌ها را انتخاب کنید: 1, 2."  # noqa: RUF001 (Persian, with its ZWNJ)
    )
    # A length checked after a validator comes as "too_long" even for a string.
    assert _reason(persian, Reason("too_long", {"max_length": 9}, "x", text=True)) == (
        "حداکثر 9 نویسه."
    )
    assert _reason(persian, Reason("too_long", {"max_length": 9}, "x")) == "حداکثر 9 مورد."
    # A validator's own sentence the catalog does not know stays as it was said.
    assert _reason(persian, Reason("value_error", {}, "cannot connect")) == "cannot connect"
    # A context without what the wording needs: the English message, not an error.
    assert _reason(persian, Reason("string_too_long", {}, "too long")) == "too long"
    # Every wording is in the catalog, translated.
    for wording in BY_TYPE.values():
        assert persian.gettext(wording) != wording
