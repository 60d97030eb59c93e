"""Bearer-token auth and the one JSON error shape: 400, 401, 404, 405, 413, 422, 500."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web

from inbox.models import Role
from tests.web.conftest import ApiUser, Client, MakeClient, make_api_user
from web.app import create_app
from web.keys import SESSIONS_KEY
from web.settings import Settings


def assert_error(body: Any, code: str) -> dict[str, Any]:
    """The body is the error shape with `code`; returns its `error` object."""
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sb_not-a-token-anyone-has"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "unknown", "basic", "empty"],
)
async def test_api_without_a_valid_token_is_401(client: Client, headers: dict[str, str]) -> None:
    response = await client.get("/api/v1/contacts", headers=headers)
    assert response.status == 401
    assert_error(await response.json(), "unauthorized")


async def test_token_of_inactive_user_is_401(client: Client) -> None:
    inactive = await make_api_user(client.app[SESSIONS_KEY], Role.ADMIN, active=False)
    response = await client.get("/api/v1/contacts", headers=inactive.headers)
    assert response.status == 401


async def test_valid_token_is_accepted_case_insensitive_scheme(
    client: Client, agent: ApiUser
) -> None:
    response = await client.get(
        "/api/v1/contacts", headers={"Authorization": f"bearer {agent.token}"}
    )
    assert response.status == 200
    assert (await response.json())["items"] == []


async def test_malformed_json_is_400(client: Client, admin: ApiUser) -> None:
    response = await client.post(
        "/api/v1/channels",
        data=b'{"kind": "webform", "name": ',
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert_error(await response.json(), "bad_request")


async def test_json_that_is_not_an_object_is_422_on_body(client: Client, admin: ApiUser) -> None:
    response = await client.post("/api/v1/channels", json=["webform"], headers=admin.headers)
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    assert list(error["fields"]) == ["body"]


async def test_oversized_body_is_413(make_client: MakeClient, settings: Settings) -> None:
    client = await make_client(settings.model_copy(update={"max_request_bytes": 1024}))
    admin = await make_api_user(client.app[SESSIONS_KEY], Role.ADMIN)
    body = {"kind": "webform", "name": "x" * 4096, "config": {}}
    response = await client.post("/api/v1/channels", json=body, headers=admin.headers)
    assert response.status == 413
    assert_error(await response.json(), "payload_too_large")
    # Within the limit the same request is served.
    body["name"] = "small"
    response = await client.post("/api/v1/channels", json=body, headers=admin.headers)
    assert response.status == 201


async def test_unknown_api_path_is_json_404(client: Client, agent: ApiUser) -> None:
    response = await client.get("/api/v1/nothing-here", headers=agent.headers)
    assert response.status == 404
    assert_error(await response.json(), "not_found")


async def test_wrong_method_is_json_405(client: Client, agent: ApiUser) -> None:
    response = await client.put("/api/v1/contacts", headers=agent.headers)
    assert response.status == 405
    assert_error(await response.json(), "method_not_allowed")
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/contacts/not-a-uuid", "/api/v1/conversations/123", "/api/v1/channels/x-y"],
)
async def test_malformed_uuid_in_path_is_404(client: Client, agent: ApiUser, path: str) -> None:
    response = await client.get(path, headers=agent.headers)
    assert response.status == 404
    assert_error(await response.json(), "not_found")


async def test_unhandled_exception_is_500_without_details(
    aiohttp_client: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("database password is hunter2")

    app = create_app(settings, roles=frozenset({"web"}))
    app.router.add_get("/boom", boom)
    client: Client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="web.errors"):
        response = await client.get("/boom")
    assert response.status == 500
    text = await response.text()
    assert "hunter2" not in text and "Traceback" not in text
    assert_error(await response.json(), "internal_error")
    assert any("hunter2" in (record.exc_text or "") for record in caplog.records)
