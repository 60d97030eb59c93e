"""Channels over the REST API: create, list, get, patch, delete; validation; secrets."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from connectors.registry import spec_for
from tests.web.conftest import VALID_CONFIGS, ApiUser, Client
from timeline.events import Event
from timeline.models import Channel
from web.keys import BUS_KEY, SECRET_BOX_KEY, SESSIONS_KEY

KINDS = sorted(VALID_CONFIGS)


async def create(client: Client, user: ApiUser, kind: str, **changes: Any) -> Any:
    body = {"kind": kind, "name": f"{kind} support", "config": dict(VALID_CONFIGS[kind])}
    body.update(changes)
    response = await client.post("/api/v1/channels", json=body, headers=user.headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def stored_config(client: Client, channel_id: str) -> dict[str, Any]:
    async with client.app[SESSIONS_KEY]() as session:
        channel = await session.get(Channel, uuid.UUID(channel_id))
    assert channel is not None
    return client.app[SECRET_BOX_KEY].decrypt(channel.config_encrypted)


def assert_masked(config: dict[str, Any], kind: str) -> None:
    for name in spec_for(kind).config.secret_fields:
        assert config[name] == "***", name


@pytest.mark.parametrize("kind", KINDS)
async def test_channel_lifecycle(client: Client, admin: ApiUser, kind: str) -> None:
    created = await create(client, admin, kind)
    channel_id = created["id"]
    assert uuid.UUID(channel_id)
    assert created["kind"] == kind
    assert created["name"] == f"{kind} support"
    assert created["health"] == "unknown"
    # Running means a connector is built for it: so far only email has one.
    assert created["running"] is (spec_for(kind).factory is not None)
    for name in spec_for(kind).config.secret_fields - spec_for(kind).config.generated_secrets:
        assert created["config"][name] == "***"

    got = await client.get(f"/api/v1/channels/{channel_id}", headers=admin.headers)
    assert got.status == 200
    shown = await got.json()
    assert_masked(shown["config"], kind)

    listed = await (await client.get("/api/v1/channels", headers=admin.headers)).json()
    assert [item["id"] for item in listed["items"]] == [channel_id]
    assert listed["next_cursor"] is None
    assert_masked(listed["items"][0]["config"], kind)

    before = await stored_config(client, channel_id)
    assert before == spec_for(kind).config.model_validate(before).model_dump(mode="json")
    patched = await client.patch(
        f"/api/v1/channels/{channel_id}", json={"name": "renamed"}, headers=admin.headers
    )
    assert patched.status == 200
    body = await patched.json()
    assert body["name"] == "renamed"
    assert_masked(body["config"], kind)
    assert await stored_config(client, channel_id) == before  # a rename keeps the config

    deleted = await client.delete(f"/api/v1/channels/{channel_id}", headers=admin.headers)
    assert deleted.status == 204
    gone = await client.get(f"/api/v1/channels/{channel_id}", headers=admin.headers)
    assert gone.status == 404


async def test_stored_config_is_encrypted(client: Client, admin: ApiUser) -> None:
    created = await create(client, admin, "email")
    async with client.app[SESSIONS_KEY]() as session:
        raw = await session.scalar(
            select(Channel.config_encrypted).where(Channel.id == uuid.UUID(created["id"]))
        )
    assert raw is not None
    assert "imap-password-5f2c" not in raw and "imap.example.com" not in raw
    stored = await stored_config(client, created["id"])
    assert stored["imap_password"] == "imap-password-5f2c"
    assert stored["smtp_password"] == "smtp-password-9a1e"
    assert stored["imap_port"] == 993  # the model's defaults are stored too


async def test_telegram_secret_token_is_shown_once(client: Client, admin: ApiUser) -> None:
    created = await create(client, admin, "telegram")
    secret = created["config"]["secret_token"]
    assert secret not in (None, "***") and len(secret) >= 32
    assert created["config"]["bot_token"] == "***"
    assert (await stored_config(client, created["id"]))["secret_token"] == secret

    got = await (
        await client.get(f"/api/v1/channels/{created['id']}", headers=admin.headers)
    ).json()
    assert got["config"]["secret_token"] == "***"
    page = await (await client.get("/api/v1/channels", headers=admin.headers)).json()
    assert secret not in str(page)

    # Clearing it generates a new one, which is shown once, like at creation.
    response = await client.patch(
        f"/api/v1/channels/{created['id']}",
        json={"config": {"secret_token": None}},
        headers=admin.headers,
    )
    assert response.status == 200
    renewed = (await response.json())["config"]["secret_token"]
    assert renewed not in (None, "***", secret)
    assert (await stored_config(client, created["id"]))["secret_token"] == renewed


async def test_patch_merges_config_and_keeps_masked_secrets(client: Client, admin: ApiUser) -> None:
    created = await create(client, admin, "email")
    url = f"/api/v1/channels/{created['id']}"
    # Sending back what GET showed ("***") keeps the stored secrets.
    response = await client.patch(
        url,
        json={"config": {"imap_host": "mail.example.org", "imap_password": "***"}},
        headers=admin.headers,
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["config"]["imap_host"] == "mail.example.org"
    assert body["config"]["imap_password"] == "***"
    stored = await stored_config(client, created["id"])
    assert stored["imap_host"] == "mail.example.org"
    assert stored["imap_password"] == "imap-password-5f2c"
    assert stored["smtp_host"] == "smtp.example.com"  # omitted: kept

    response = await client.patch(
        url, json={"config": {"smtp_password": "rotated-3c3c"}}, headers=admin.headers
    )
    assert response.status == 200
    assert (await response.json())["config"]["smtp_password"] == "***"
    assert (await stored_config(client, created["id"]))["smtp_password"] == "rotated-3c3c"


async def test_patch_revalidates_merged_config(client: Client, admin: ApiUser) -> None:
    created = await create(client, admin, "email")
    response = await client.patch(
        f"/api/v1/channels/{created['id']}",
        json={"config": {"imap_port": 0, "imap_security": "ssl"}},
        headers=admin.headers,
    )
    assert response.status == 422
    fields = (await response.json())["error"]["fields"]
    assert set(fields) == {"config.imap_port", "config.imap_security"}
    assert (await stored_config(client, created["id"]))["imap_port"] == 993  # unchanged


async def test_a_name_postgresql_cannot_store_is_422(client: Client, admin: ApiUser) -> None:
    response = await client.post(
        "/api/v1/channels",
        json={"kind": "webform", "name": "forms\u0000", "config": {}},
        headers=admin.headers,
    )
    assert response.status == 422
    assert list((await response.json())["error"]["fields"]) == ["name"]


async def test_patch_cannot_change_kind(client: Client, admin: ApiUser) -> None:
    created = await create(client, admin, "webform")
    response = await client.patch(
        f"/api/v1/channels/{created['id']}", json={"kind": "sms"}, headers=admin.headers
    )
    assert response.status == 422
    assert "kind" in (await response.json())["error"]["fields"]


@pytest.mark.parametrize(
    ("kind", "config", "expected"),
    [
        (
            "email",
            {"imap_username": "u", "imap_password": "p", "smtp_host": "h", "from_address": "x"},
            {"config.imap_host", "config.from_address"},
        ),
        ("sms", {"account_sid": "AC" + "0" * 32, "auth_token": "t"}, {"config"}),
        ("sms", {"account_sid": "nope", "auth_token": "t", "phone_number": "12"}, None),
        ("telegram", {"bot_token": "not-a-token"}, {"config.bot_token"}),
        ("webform", {"unknown_option": True}, {"config.unknown_option"}),
    ],
    ids=["email-missing", "sms-no-sender", "sms-bad-values", "telegram-token", "webform-extra"],
)
async def test_invalid_config_is_422_with_field_paths(
    client: Client, admin: ApiUser, kind: str, config: dict[str, Any], expected: set[str] | None
) -> None:
    response = await client.post(
        "/api/v1/channels",
        json={"kind": kind, "name": "bad", "config": config},
        headers=admin.headers,
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_error"
    if expected is None:
        assert {"config.account_sid", "config.phone_number"} <= set(error["fields"])
    else:
        assert set(error["fields"]) == expected
    if kind == "sms" and expected == {"config"}:
        assert "phone_number or messaging_service_sid" in error["fields"]["config"]
    listed = await (await client.get("/api/v1/channels", headers=admin.headers)).json()
    assert listed["items"] == []


async def test_unknown_kind_is_422_naming_known_kinds(client: Client, admin: ApiUser) -> None:
    response = await client.post(
        "/api/v1/channels",
        json={"kind": "fax", "name": "fax", "config": {}},
        headers=admin.headers,
    )
    assert response.status == 422
    message = (await response.json())["error"]["fields"]["kind"]
    assert "unknown channel kind 'fax'" in message
    assert "known kinds: email, sms, telegram, webform" in message


async def test_mask_as_a_new_secret_is_refused(client: Client, admin: ApiUser) -> None:
    config = {**VALID_CONFIGS["sms"], "auth_token": "***"}
    response = await client.post(
        "/api/v1/channels",
        json={"kind": "sms", "name": "echo", "config": config},
        headers=admin.headers,
    )
    assert response.status == 422
    assert set((await response.json())["error"]["fields"]) == {"config.auth_token"}


async def test_only_admins_change_channels(client: Client, admin: ApiUser, agent: ApiUser) -> None:
    body = {"kind": "webform", "name": "form", "config": {}}
    response = await client.post("/api/v1/channels", json=body, headers=agent.headers)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"

    created = await create(client, admin, "webform")
    url = f"/api/v1/channels/{created['id']}"
    assert (await client.patch(url, json={"name": "x"}, headers=agent.headers)).status == 403
    assert (await client.delete(url, headers=agent.headers)).status == 403
    # Agents read the channels they are members of (and only those).
    assert (await client.get(url, headers=agent.headers)).status == 404
    members = {"user_ids": [str(agent.user.id)]}
    put = await client.put(url + "/members", json=members, headers=admin.headers)
    assert put.status == 200
    assert (await client.get(url, headers=agent.headers)).status == 200
    listed = await (await client.get("/api/v1/channels", headers=agent.headers)).json()
    assert [item["name"] for item in listed["items"]] == ["webform support"]


async def test_changes_publish_events_after_commit(client: Client, admin: ApiUser) -> None:
    async with client.app[BUS_KEY].subscribe() as events:
        created = await create(client, admin, "webform")
        url = f"/api/v1/channels/{created['id']}"
        await client.patch(url, json={"name": "renamed"}, headers=admin.headers)
        await client.delete(url, headers=admin.headers)
        seen = [await events.get(timeout=5) for _ in range(3)]
    data = {"channel_id": created["id"], "kind": "webform"}
    assert seen == [
        Event("channel.created", data),
        Event("channel.updated", data),
        Event("channel.deleted", data),
    ]


async def test_channel_list_pages(client: Client, admin: ApiUser) -> None:
    ids = [(await create(client, admin, "webform", name=f"form {n}"))["id"] for n in range(3)]
    first = await (
        await client.get("/api/v1/channels", params={"limit": 2}, headers=admin.headers)
    ).json()
    assert [item["id"] for item in first["items"]] == ids[:2]
    assert first["next_cursor"]
    second = await (
        await client.get(
            "/api/v1/channels",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=admin.headers,
        )
    ).json()
    assert [item["id"] for item in second["items"]] == ids[2:]
    assert second["next_cursor"] is None


async def test_pausing_and_resuming_a_channel(client: Client, admin: ApiUser) -> None:
    channel = await create(client, admin, "webform")
    assert channel["paused"] is False
    url = f"/api/v1/channels/{channel['id']}"
    paused = await client.patch(url, json={"paused": True}, headers=admin.headers)
    assert paused.status == 200, await paused.text()
    body = await paused.json()
    assert body["paused"] is True and body["running"] is False
    assert (await (await client.get(url, headers=admin.headers)).json())["paused"] is True
    resumed = await client.patch(url, json={"paused": False}, headers=admin.headers)
    assert (await resumed.json())["paused"] is False


async def test_connection_test_of_a_kind_with_nothing_to_connect(
    client: Client, admin: ApiUser, agent: ApiUser
) -> None:
    channel = await create(client, admin, "webform")
    url = f"/api/v1/channels/{channel['id']}/test"
    assert (await client.post(url, headers=agent.headers)).status == 403
    answer = await client.post(url, headers=admin.headers)
    assert answer.status == 200, await answer.text()
    assert await answer.json() == {"ok": True, "checked": False, "errors": {}}
    # Changes to test are validated like a PATCH, and not saved.
    bad = await client.post(
        url, json={"config": {"allowed_origins": "nope"}}, headers=admin.headers
    )
    assert bad.status == 422
    assert "config.allowed_origins" in (await bad.json())["error"]["fields"]


async def test_a_telegram_token_the_bot_api_refuses_is_not_saved(
    client: Client, admin: ApiUser
) -> None:
    config = {**VALID_CONFIGS["telegram"], "bot_token": "654321:" + "ZyXwVuTsRq" * 4}
    refused = await client.post(
        "/api/v1/channels",
        json={"kind": "telegram", "name": "bot", "config": config},
        headers=admin.headers,
    )
    assert refused.status == 422, await refused.text()
    fields = (await refused.json())["error"]["fields"]
    assert "401" in fields["config.bot_token"]
    async with client.app[SESSIONS_KEY]() as session:
        assert (await session.scalars(select(Channel))).all() == []
    # A saved channel given a refused token keeps its working one.
    channel = await create(client, admin, "telegram")
    changed = await client.patch(
        f"/api/v1/channels/{channel['id']}",
        json={"config": {"bot_token": config["bot_token"]}},
        headers=admin.headers,
    )
    assert changed.status == 422
    stored = await stored_config(client, channel["id"])
    assert stored["bot_token"] == VALID_CONFIGS["telegram"]["bot_token"]
