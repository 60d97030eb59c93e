"""The outgoing webhooks API: subscriptions (admins only), the secret shown once, URL and
event-type validation, the delivery log and redelivery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from inbox.webhook_kinds import EVENT_KINDS
from inbox.webhook_models import WebhookDelivery, WebhookSubscription
from tests.web.conftest import ApiUser, Client, MakeClient, Rows
from timeline.db import SessionFactory
from web.settings import Settings

API = "/api/v1/webhooks"


async def create(client: Client, admin: ApiUser, **body: Any) -> dict[str, Any]:
    body.setdefault("url", "https://hooks.example.com/in")
    body.setdefault("event_types", ["message.received"])
    response = await client.post(API, json=body, headers=admin.headers)
    assert response.status == 201, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def test_admins_manage_subscriptions_and_see_the_secret_once(
    client: Client, admin: ApiUser, agent: ApiUser, sessions: SessionFactory
) -> None:
    made = await create(
        client, admin, description="CRM sync", event_types=["message.received", "message.received"]
    )
    assert made["secret"].startswith("whsec_") and made["active"] is True
    assert made["event_types"] == ["message.received"]
    hook = f"{API}/{made['id']}"
    async with sessions() as session:
        row = await session.get(WebhookSubscription, uuid.UUID(made["id"]))
    assert row is not None and made["secret"] not in row.secret_encrypted  # encrypted at rest

    got = await (await client.get(hook, headers=admin.headers)).json()
    listed = await (await client.get(API, headers=admin.headers)).json()
    assert "secret" not in got and [item["id"] for item in listed["items"]] == [made["id"]]
    assert made["secret"] not in str(got) + str(listed)

    changed = await client.patch(
        hook,
        json={"event_types": ["*", "task.due"], "active": False, "description": None},
        headers=admin.headers,
    )
    body = await changed.json()
    assert changed.status == 200
    assert (body["event_types"], body["active"], body["description"]) == (["*"], False, None)
    inactive = await (await client.get(API + "?active=false", headers=admin.headers)).json()
    assert [item["id"] for item in inactive["items"]] == [made["id"]]

    rotated = await client.post(
        f"{hook}/rotate-secret", json={"previous_secret_valid_seconds": 3600}, headers=admin.headers
    )
    rotated_body = await rotated.json()
    assert rotated.status == 200 and rotated_body["secret"] not in (made["secret"], None)
    assert rotated_body["previous_secret_expires_at"] is not None
    at_once = await (
        await client.post(f"{hook}/rotate-secret", json={}, headers=admin.headers)
    ).json()
    assert at_once["previous_secret_expires_at"] is None

    kinds = await (await client.get(f"{API}/event-types", headers=admin.headers)).json()
    assert {item["name"] for item in kinds["items"]} == set(EVENT_KINDS)

    # Agents (and managers) do not manage integrations.
    for method, path, json_body in [
        ("GET", API, None),
        ("POST", API, {"url": "https://x.example.com", "event_types": ["*"]}),
        ("GET", hook, None),
        ("PATCH", hook, {"active": True}),
        ("DELETE", hook, None),
        ("POST", f"{hook}/rotate-secret", {}),
        ("GET", f"{hook}/deliveries", None),
        ("GET", f"{API}/event-types", None),
    ]:
        response = await client.request(method, path, json=json_body, headers=agent.headers)
        assert response.status == 403, (method, path)
        assert (await client.request(method, path, json=json_body)).status == 401

    assert (await client.delete(hook, headers=admin.headers)).status == 204
    for method in ("GET", "DELETE"):
        assert (await client.request(method, hook, headers=admin.headers)).status == 404
    assert (await client.get(f"{API}/not-a-uuid", headers=admin.headers)).status == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x", "event_types": ["*"]}, "url"),
        ({"url": "https://u:p@example.com/x", "event_types": ["*"]}, "url"),
        ({"url": "https://example.com/\x00", "event_types": ["*"]}, "url"),
        ({"url": "https://example.com/" + "a" * 2001, "event_types": ["*"]}, "url"),
        ({"url": "https://example.com", "event_types": ["message.exploded"]}, "event_types"),
        ({"url": "https://example.com", "event_types": []}, "event_types"),
        ({"url": "https://example.com", "event_types": "*"}, "event_types"),
        (
            {"url": "https://example.com", "event_types": ["*"], "description": "a\nb"},
            "description",
        ),
        (
            {"url": "https://example.com", "event_types": ["*"], "description": "x" * 501},
            "description",
        ),
        ({"url": "https://example.com", "event_types": ["*"], "active": "yes"}, "active"),
        ({"url": "https://example.com", "event_types": ["*"], "secret": "mine"}, "secret"),
        ({"event_types": ["*"]}, "url"),
    ],
)
async def test_invalid_subscriptions_are_refused_naming_the_field(
    client: Client, admin: ApiUser, body: dict[str, Any], field: str
) -> None:
    response = await client.post(API, json=body, headers=admin.headers)
    assert response.status == 422
    assert field in (await response.json())["error"]["fields"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_production_needs_https_to_public_hosts(
    make_client: MakeClient, settings: Settings, client: Client, admin: ApiUser
) -> None:
    assert (await create(client, admin, url="http://127.0.0.1:9000/dev"))["url"].startswith("http:")
    production = await make_client(settings.model_copy(update={"env": "production"}))
    for url in ("http://hooks.example.com/in", "https://127.0.0.1/in", "https://localhost/in"):
        response = await production.post(
            API, json={"url": url, "event_types": ["*"]}, headers=admin.headers
        )
        assert response.status == 422 and "url" in (await response.json())["error"]["fields"]
    made = await create(production, admin, url="https://hooks.example.com/in")
    patched = await production.patch(
        f"{API}/{made['id']}", json={"url": "http://hooks.example.com/in"}, headers=admin.headers
    )
    assert patched.status == 422
    nulled = await production.patch(
        f"{API}/{made['id']}", json={"url": None}, headers=admin.headers
    )
    assert nulled.status == 422


async def test_the_delivery_log_pages_newest_first_and_redelivers(
    client: Client, admin: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    made = await create(client, admin)
    other = await create(client, admin)
    ann = await rows.contact("Ann")
    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    async with sessions() as session, session.begin():
        for n in range(5):
            session.add(
                WebhookDelivery(
                    subscription_id=uuid.UUID(made["id"]),
                    event_id=uuid.uuid4(),
                    event_kind="message.received",
                    contact_id=ann.id,
                    payload={} if n == 0 else {"n": n},
                    status="failed" if n % 2 else "delivered",
                    attempts=3,
                    next_attempt_at=t0,
                    retry_from=t0,
                    last_status_code=500 if n % 2 else 200,
                    last_error="HTTP 500: boom" if n % 2 else None,
                    created_at=t0 + timedelta(minutes=n),
                )
            )
    log = f"{API}/{made['id']}/deliveries"
    first = await (await client.get(log + "?limit=3", headers=admin.headers)).json()
    second = await (
        await client.get(f"{log}?limit=3&cursor={first['next_cursor']}", headers=admin.headers)
    ).json()
    items = first["items"] + second["items"]
    assert [item["payload"].get("n", 0) for item in items] == [4, 3, 2, 1, 0]
    assert second["next_cursor"] is None
    assert items[1]["status"] == "failed" and items[1]["last_error"] == "HTTP 500: boom"
    assert items[1]["next_attempt_at"] is None and items[1]["event"] == "message.received"
    failed = await (await client.get(log + "?status=failed", headers=admin.headers)).json()
    assert [item["payload"]["n"] for item in failed["items"]] == [3, 1]
    empty = await (
        await client.get(f"{API}/{other['id']}/deliveries", headers=admin.headers)
    ).json()
    assert empty == {"items": [], "next_cursor": None}
    bad = await client.get(log + "?status=lost", headers=admin.headers)
    assert bad.status == 422
    # The list names each subscription's newest delivery (none yet for the other), also
    # across its pages.
    listed = await (await client.get(API, headers=admin.headers)).json()
    newest = {item["id"]: item["last_delivery"] for item in listed["items"]}
    assert newest[other["id"]] is None
    last = newest[made["id"]]
    assert (last["id"], last["status"], last["last_status_code"]) == (
        items[0]["id"],
        "delivered",
        200,
    )
    assert "payload" not in last
    paged = await (await client.get(API + "?limit=1", headers=admin.headers)).json()
    rest = await (
        await client.get(f"{API}?limit=1&cursor={paged['next_cursor']}", headers=admin.headers)
    ).json()
    assert [i["last_delivery"] for i in paged["items"] + rest["items"]] == [last, None]

    again = await client.post(f"{API}/deliveries/{items[1]['id']}/redeliver", headers=admin.headers)
    body = await again.json()
    assert again.status == 200
    assert (body["id"], body["status"], body["attempts"]) == (items[1]["id"], "queued", 0)
    assert body["next_attempt_at"] is not None
    erased = await client.post(
        f"{API}/deliveries/{items[4]['id']}/redeliver", headers=admin.headers
    )
    assert erased.status == 409
    for missing in (uuid.uuid4(), "nope"):
        response = await client.post(f"{API}/deliveries/{missing}/redeliver", headers=admin.headers)
        assert response.status == 404
    assert (
        await client.get(f"{API}/{uuid.uuid4()}/deliveries", headers=admin.headers)
    ).status == 404

    # Deleting a subscription takes its log with it.
    assert (await client.delete(f"{API}/{made['id']}", headers=admin.headers)).status == 204
    async with sessions() as session:
        assert list(await session.scalars(select(WebhookDelivery.id))) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_openapi_document_describes_the_routes(client: Client) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/webhooks"])
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/webhooks/{id}"])
    assert "post" in paths["/api/v1/webhooks/deliveries/{id}/redeliver"]
    assert "secret" in document["components"]["schemas"]["WebhookWithSecret"]["properties"]
    assert "secret" not in document["components"]["schemas"]["WebhookOut"]["properties"]
