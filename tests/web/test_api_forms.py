"""Forms over the REST API: define, list, read, change, rotate, delete; submissions;
hostile definitions; who may do what; the OpenAPI document."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

import web.api.forms
from inbox.account_models import Team
from inbox.models import AttributeDefinition, Role
from tests.timeline.conftest import wait_for_lock_waiters
from tests.web.conftest import T0, ApiUser, Client, Rows, make_api_user, minutes
from timeline.db import SessionFactory
from timeline.events import Event
from timeline.models import Form, FormSubmission, Message
from web.keys import BUS_KEY, ENGINE_KEY, SETTINGS_KEY

FIELDS: list[dict[str, Any]] = [
    {"name": "name", "label": "Your name", "type": "text", "required": True, "maps_to": "name"},
    {"name": "email", "label": "Email", "type": "email", "required": True, "maps_to": "email"},
    {"name": "phone", "label": "Phone", "type": "phone", "maps_to": "phone"},
    {"name": "message", "label": "Message", "type": "textarea", "maps_to": "message"},
    {
        "name": "plan",
        "label": "Plan",
        "type": "select",
        "options": ["basic", {"value": "pro", "label": "Pro plan"}],
        "maps_to": "attribute:plan",
    },
]
KEY = re.compile(r"[A-Za-z0-9_-]{22}")
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
async def plan_attribute(sessions: SessionFactory) -> None:
    """The custom attribute FIELDS maps to: a form may only map to defined attributes."""
    async with sessions() as session, session.begin():
        session.add(
            AttributeDefinition(key="plan", label="Plan", type="select", options=["basic", "pro"])
        )


def form_body(channel_id: object, /, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Contact us", "channel_id": str(channel_id), "fields": FIELDS}
    body.update(changes)
    return body


async def create_form(client: Client, user: ApiUser, channel_id: object, /, **changes: Any) -> Any:
    response = await client.post(
        "/api/v1/forms", json=form_body(channel_id, **changes), headers=user.headers
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def refused(response: Any, status: int = 422) -> dict[str, str]:
    """The field errors of a refusal with `status`."""
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    fields: dict[str, str] = error["fields"]
    return fields


async def test_forms_are_defined_read_changed_and_deleted(
    client: Client, rows: Rows, admin: ApiUser, agent: ApiUser, sessions: SessionFactory
) -> None:
    channel = await rows.channel("webform")
    manager = await make_api_user(sessions, Role.MANAGER)
    async with sessions() as session, session.begin():
        row = Team(name="Sales")
        session.add(row)
    team = row.id
    async with client.app[BUS_KEY].subscribe() as events:
        created = await create_form(
            client,
            admin,
            channel.id,
            name="  Contact us  ",
            allowed_origins=[
                "HTTPS://Example.COM:443",
                "https://example.com",
                "http://a.test:8080",
            ],
            redirect_url="https://example.com/thanks",
            team_id=str(team).upper(),
            description="Line one\nLine two",
            language="pt-BR",
        )
        form_id = created["id"]
        url = f"/api/v1/forms/{form_id}"
        # The DESIGN.md shape, normalized by the definition model.
        assert KEY.fullmatch(created["key"])
        assert created["name"] == "Contact us"
        assert created["channel_id"] == str(channel.id)
        assert created["team_id"] == str(team)
        assert created["active"] is True
        assert created["allowed_origins"] == ["https://example.com", "http://a.test:8080"]
        assert [f["name"] for f in created["fields"]] == [f["name"] for f in FIELDS]
        assert created["fields"][4]["options"] == [
            {"value": "basic", "label": "basic"},
            {"value": "pro", "label": "Pro plan"},
        ]
        assert (
            created["fields"][0]["maps_to"] == "name" and created["fields"][2]["required"] is False
        )
        assert created["submit_label"] == "Send" and created["honeypot_field"] == "website"
        assert created["description"] == "Line one\nLine two"
        page = created["urls"]["page"]
        assert page == f"{client.app[SETTINGS_KEY].base_url}/forms/{created['key']}"
        assert created["urls"]["submit"] == page
        assert created["urls"]["script"] == f"{page}/embed.js"
        assert created["urls"]["description"] == f"{page}/form.json"
        assert created["urls"]["snippet"] == (
            f'<div data-switchboard-form="{created["key"]}"></div>\n'
            f'<script src="{page}/embed.js" async></script>'
        )
        async with sessions() as session:
            stored = await session.get(Form, uuid.UUID(form_id))
        assert stored is not None and stored.key == created["key"]
        assert stored.definition["channel_id"] == str(channel.id)
        assert "active" not in stored.definition and "key" not in stored.definition

        # Admins and managers read; agents are refused everything; no token is 401.
        for reader in (admin, manager):
            got = await client.get(url, headers=reader.headers)
            assert got.status == 200 and await got.json() == created
        for method, path in [
            ("GET", "/api/v1/forms"),
            ("POST", "/api/v1/forms"),
            ("GET", url),
            ("PATCH", url),
            ("DELETE", url),
            ("GET", f"{url}/submissions"),
            ("POST", f"{url}/rotate-key"),
        ]:
            body = form_body(channel.id) if path == "/api/v1/forms" or method == "PATCH" else None
            as_agent = await client.request(method, path, json=body, headers=agent.headers)
            assert (await as_agent.json())["error"]["code"] == "forbidden", (method, path)
            assert as_agent.status == 403
            anonymous = await client.request(method, path, json=body)
            assert anonymous.status == 401, (method, path)
        assert (await client.patch(url, json={"name": "x"}, headers=manager.headers)).status == 403
        assert (await client.delete(url, headers=manager.headers)).status == 403

        # A change merges onto the stored definition; the key stays.
        patched = await client.patch(
            url,
            json={"name": "Talk to sales", "active": False, "description": None},
            headers=admin.headers,
        )
        assert patched.status == 200, await patched.text()
        changed = await patched.json()
        assert changed["key"] == created["key"]
        assert (changed["name"], changed["active"], changed["description"]) == (
            "Talk to sales",
            False,
            None,
        )
        assert changed["fields"] == created["fields"]
        assert changed["allowed_origins"] == created["allowed_origins"]
        assert changed["updated_at"] >= created["updated_at"]
        assert changed["created_at"] == created["created_at"]
        async with sessions() as session:
            stored = await session.get(Form, uuid.UUID(form_id))
        assert stored is not None and stored.name == "Talk to sales" and not stored.active

        # Rotation: a new key, the old one names nothing any more.
        rotated = await client.post(f"{url}/rotate-key", headers=admin.headers)
        assert rotated.status == 200
        new_key = (await rotated.json())["key"]
        assert KEY.fullmatch(new_key) and new_key != created["key"]
        async with sessions() as session:
            keys = (await session.scalars(select(Form.key))).all()
        assert keys == [new_key]

        deleted = await client.delete(url, headers=admin.headers)
        assert deleted.status == 204
        assert (await client.get(url, headers=admin.headers)).status == 404
        assert (await client.delete(url, headers=admin.headers)).status == 404
        seen = [await events.get(timeout=5) for _ in range(4)]
    data = {"form_id": form_id, "channel_id": str(channel.id)}
    assert seen == [
        Event("form.created", data),
        Event("form.updated", data),
        Event("form.updated", data),
        Event("form.deleted", data),
    ]


async def test_the_list_pages_and_filters(client: Client, rows: Rows, admin: ApiUser) -> None:
    first_channel = await rows.channel("webform")
    other_channel = await rows.channel("webform", name="other")
    ids = [
        (await create_form(client, admin, first_channel.id, name=f"f{n}"))["id"] for n in range(3)
    ]
    other = await create_form(client, admin, other_channel.id, name="other", active=False)
    assert other["active"] is False

    async def listed(**params: Any) -> list[str]:
        response = await client.get("/api/v1/forms", params=params, headers=admin.headers)
        assert response.status == 200, await response.text()
        return [item["id"] for item in (await response.json())["items"]]

    first = await (
        await client.get("/api/v1/forms", params={"limit": 2}, headers=admin.headers)
    ).json()
    assert [item["id"] for item in first["items"]] == ids[:2]
    assert await listed(limit=2, cursor=first["next_cursor"]) == [ids[2], other["id"]]
    assert await listed(channel_id=str(first_channel.id)) == ids
    assert await listed(channel_id=str(other_channel.id)) == [other["id"]]
    assert await listed(channel_id=str(uuid.uuid4())) == []
    assert await listed(active="false") == [other["id"]]
    assert await listed(active="true", channel_id=str(other_channel.id)) == []
    for params in ({"channel_id": "nope"}, {"active": "perhaps"}, {"cursor": "x"}, {"x": "1"}):
        response = await client.get("/api/v1/forms", params=params, headers=admin.headers)
        assert set(await refused(response)) == set(params), params


# Each case: changes to a valid body, and the field the refusal must name (its message
# must contain the last element when one is given).
HOSTILE: list[tuple[str, dict[str, Any], str, str]] = [
    ("long name", {"name": "x" * 201}, "name", "at most 200"),
    ("blank name", {"name": "   "}, "name", "at least 1"),
    ("NUL in name", {"name": "a\x00b"}, "name", "NUL"),
    ("bell in name", {"name": "a\x07b"}, "name", "control"),
    ("lone surrogate in name", {"name": "a\ud800b"}, "name", "unicode"),
    ("lone surrogate as a key", {"\udfff": 1}, "body", "unicode"),
    ("newline in name", {"name": "a\nb"}, "name", "control"),
    ("C1 in submit label", {"submit_label": "G\x9bo"}, "submit_label", "control"),
    ("escape in description", {"description": "a\x1b[31m"}, "description", "control"),
    ("NUL in success message", {"success_message": "ok\x00"}, "success_message", "NUL"),
    ("long label", {"fields": [{"name": "a", "label": "l" * 201}]}, "fields.0.label", ""),
    ("NUL in label", {"fields": [{"name": "a", "label": "x\x00"}]}, "fields.0.label", "NUL"),
    ("tab in label", {"fields": [{"name": "a", "label": "x\ty"}]}, "fields.0.label", "control"),
    (
        "control in option",
        {"fields": [{"name": "a", "label": "A", "type": "select", "options": ["o\x01"]}]},
        "fields.0.options.0.value",
        "control",
    ),
    (
        "NUL in help text",
        {"fields": [{"name": "a", "label": "A", "help_text": "\x00"}]},
        "fields.0.help_text",
        "NUL",
    ),
    (
        "51 fields",
        {"fields": [{"name": f"f{n}", "label": "F"} for n in range(51)]},
        "fields",
        "at most 50",
    ),
    ("no fields", {"fields": []}, "fields", "at least 1"),
    (
        "duplicate names",
        {"fields": [{"name": "Email", "label": "A"}, {"name": "email", "label": "B"}]},
        "body",
        "used twice",
    ),
    (
        "two fields to email",
        {
            "fields": [
                {"name": "a", "label": "A", "type": "email", "maps_to": "email"},
                {"name": "b", "label": "B", "type": "email", "maps_to": "email"},
            ]
        },
        "body",
        "only one field",
    ),
    (
        "email from a text field",
        {"fields": [{"name": "a", "label": "A", "type": "text", "maps_to": "email"}]},
        "fields.0",
        "email",
    ),
    (
        "select without options",
        {"fields": [{"name": "a", "label": "A", "type": "select"}]},
        "fields.0",
        "needs options",
    ),
    (
        "unknown type",
        {"fields": [{"name": "a", "label": "A", "type": "html"}]},
        "fields.0.type",
        "",
    ),
    (
        "unknown mapping",
        {"fields": [{"name": "a", "label": "A", "maps_to": "password"}]},
        "fields.0.maps_to",
        "",
    ),
    ("bad field name", {"fields": [{"name": "1 a", "label": "A"}]}, "fields.0.name", "letter"),
    (
        "field name is the honeypot",
        {"fields": [{"name": "website", "label": "A"}]},
        "body",
        "honeypot",
    ),
    ("origin with a path", {"allowed_origins": ["https://x.com/path"]}, "allowed_origins", "path"),
    ("javascript origin", {"allowed_origins": ["javascript:"]}, "allowed_origins", "origin"),
    (
        "51 origins",
        {"allowed_origins": [f"https://{n}.test" for n in range(51)]},
        "allowed_origins",
        "",
    ),
    ("javascript redirect", {"redirect_url": "javascript:alert(1)"}, "redirect_url", "http"),
    ("relative redirect", {"redirect_url": "/thanks"}, "redirect_url", "http"),
    ("bad language", {"language": "english!"}, "language", "BCP 47"),
    ("bad honeypot", {"honeypot_field": "<x>"}, "honeypot_field", ""),
    ("unknown key", {"colour": "red"}, "colour", "not a known field"),
    ("key is not the client's", {"key": "mine"}, "key", "not a known field"),
    (
        "unknown field key",
        {"fields": [{"name": "a", "label": "A", "colour": "red"}]},
        "fields.0.colour",
        "not a known field",
    ),
    ("fields not a list", {"fields": "name,email"}, "fields", ""),
    ("name not a string", {"name": 5}, "name", "string"),
    (
        "required not a bool",
        {"fields": [{"name": "a", "label": "A", "required": "maybe"}]},
        "fields.0.required",
        "",
    ),
    ("active not a bool", {"active": "yes"}, "active", "boolean"),
    ("malformed channel id", {"channel_id": "not-a-uuid"}, "channel_id", "UUID"),
    ("unknown channel", {"channel_id": str(uuid.uuid4())}, "channel_id", "no such channel"),
    ("NUL channel id", {"channel_id": "\x00"}, "channel_id", ""),
    ("malformed team id", {"team_id": "team-1"}, "team_id", "UUID"),
    ("unknown team", {"team_id": str(uuid.uuid4())}, "team_id", "no such team"),
    (
        "undefined custom attribute",
        {"fields": [*FIELDS, {"name": "size", "label": "Size", "maps_to": "attribute:size"}]},
        "fields.5.maps_to",
        "no custom attribute 'size'",
    ),
]


@SQLITE_ONLY
async def test_hostile_definitions_are_refused_with_the_field_named(
    client: Client, rows: Rows, admin: ApiUser, sessions: SessionFactory
) -> None:
    channel = await rows.channel("webform")
    email_channel = await rows.channel("email")
    cases = [
        *HOSTILE,
        ("email channel", {"channel_id": str(email_channel.id)}, "channel_id", "webform"),
    ]
    for case, changes, field, reason in cases:
        response = await client.post(
            "/api/v1/forms", json=form_body(channel.id, **changes), headers=admin.headers
        )
        assert response.status == 422, (case, await response.text())
        fields = await refused(response)
        assert field in fields, (case, fields)
        assert reason in fields[field], (case, fields)
    for raw, status in [(b"{", 400), (b"[]", 422), (b"null", 422), (b"\xff\xfe", 400)]:
        response = await client.post(
            "/api/v1/forms",
            data=raw,
            headers={**admin.headers, "Content-Type": "application/json"},
        )
        assert response.status == status, raw
    # Line breaks stay allowed where a form shows paragraphs.
    accepted = await create_form(
        client,
        admin,
        channel.id,
        description="a\r\n\tb",
        success_message="Thanks!\nWe will call.",
        fields=[{"name": "a", "label": "A", "help_text": "one\ntwo"}],
    )
    assert accepted["fields"][0]["help_text"] == "one\ntwo"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Form)) == 1


@SQLITE_ONLY
async def test_changes_are_validated_as_a_whole(client: Client, rows: Rows, admin: ApiUser) -> None:
    channel = await rows.channel("webform")
    other = await rows.channel("webform", name="other")
    email_channel = await rows.channel("email")
    created = await create_form(client, admin, channel.id)
    url = f"/api/v1/forms/{created['id']}"
    cases: list[tuple[dict[str, Any], str, str]] = [
        # Valid alone, but not with the stored fields.
        ({"honeypot_field": "email"}, "body", "honeypot"),
        ({"name": None}, "name", ""),
        ({"fields": None}, "fields", ""),
        ({"submit_label": ""}, "submit_label", ""),
        ({"fields": [{"name": "a", "label": "\x00"}]}, "fields.0.label", "NUL"),
        ({"description": "\x7f"}, "description", "control"),
        ({"channel_id": str(email_channel.id)}, "channel_id", "webform"),
        ({"channel_id": "x"}, "channel_id", "UUID"),
        ({"team_id": "x"}, "team_id", "UUID"),
        ({"key": "chosen"}, "key", "not a known field"),
        ({"id": str(uuid.uuid4())}, "id", "not a known field"),
        ({"allowed_origins": ["javascript:"]}, "allowed_origins", ""),
        ({"active": "no"}, "active", ""),
    ]
    for changes, field, reason in cases:
        fields = await refused(await client.patch(url, json=changes, headers=admin.headers))
        assert field in fields and reason in fields[field], (changes, fields)
    unchanged = await (await client.get(url, headers=admin.headers)).json()
    assert unchanged == created

    moved = await client.patch(
        url,
        json={"channel_id": str(other.id).upper(), "fields": FIELDS[:2], "allowed_origins": []},
        headers=admin.headers,
    )
    assert moved.status == 200, await moved.text()
    body = await moved.json()
    assert body["channel_id"] == str(other.id) and len(body["fields"]) == 2
    assert body["key"] == created["key"]

    for bad in (str(uuid.uuid4()), "not-a-uuid"):
        path = f"/api/v1/forms/{bad}"
        assert (await client.get(path, headers=admin.headers)).status == 404
        assert (await client.patch(path, json={"name": "x"}, headers=admin.headers)).status == 404
        assert (await client.delete(path, headers=admin.headers)).status == 404
        assert (await client.post(f"{path}/rotate-key", headers=admin.headers)).status == 404
        assert (await client.get(f"{path}/submissions", headers=admin.headers)).status == 404


async def test_submissions_are_listed_and_keep_their_form(
    client: Client, rows: Rows, admin: ApiUser, sessions: SessionFactory
) -> None:
    channel = await rows.channel("webform")
    form = await create_form(client, admin, channel.id)
    empty = await create_form(client, admin, channel.id, name="never used")
    contact = await rows.contact("Ann", [("email", "ann@example.com")])
    conversation = await rows.conversation(contact, channel)
    message = await rows.message(conversation, text="Hello from the form")
    form_id = uuid.UUID(form["id"])
    submissions = [
        FormSubmission(
            form_id=form_id,
            message_id=message.id,
            contact_id=contact.id,
            attribution={"utm_source": "news", "page_url": "https://example.com/p"},
            ip="203.0.113.9",
            created_at=T0,
        ),
        FormSubmission(form_id=form_id, attribution={}, ip=None, created_at=T0 + minutes(1)),
    ]
    async with sessions() as session:
        session.add_all(submissions)
        await session.commit()

    url = f"/api/v1/forms/{form['id']}/submissions"
    first = await (await client.get(url, params={"limit": 1}, headers=admin.headers)).json()
    assert [item["id"] for item in first["items"]] == [str(submissions[1].id)]
    assert first["items"][0]["message_id"] is None
    assert first["items"][0]["conversation_id"] is None
    second = await (
        await client.get(
            url, params={"limit": 1, "cursor": first["next_cursor"]}, headers=admin.headers
        )
    ).json()
    assert second["next_cursor"] is None
    assert second["items"] == [
        {
            "id": str(submissions[0].id),
            "form_id": form["id"],
            "created_at": T0.isoformat().replace("+00:00", "Z"),
            "message_id": str(message.id),
            "contact_id": str(contact.id),
            "conversation_id": str(conversation.id),
            "attribution": {"utm_source": "news", "page_url": "https://example.com/p"},
            "ip": "203.0.113.9",
        }
    ]
    other_url = f"/api/v1/forms/{empty['id']}/submissions"
    assert (await (await client.get(other_url, headers=admin.headers)).json())["items"] == []

    # A form with submissions stays (deactivated instead); one without goes.
    form_url = f"/api/v1/forms/{form['id']}"
    conflict = await client.delete(form_url, headers=admin.headers)
    assert conflict.status == 409
    assert "deactivate" in (await conflict.json())["error"]["message"]
    assert (await client.get(form_url, headers=admin.headers)).status == 200
    deactivated = await client.patch(form_url, json={"active": False}, headers=admin.headers)
    assert (await deactivated.json())["active"] is False
    assert (
        await client.delete(f"/api/v1/forms/{empty['id']}", headers=admin.headers)
    ).status == 204
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(FormSubmission)) == 2
        assert await session.get(Message, message.id) is not None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_delete_waits_for_a_submission_being_written(
    client: Client, rows: Rows, admin: ApiUser, sessions: SessionFactory
) -> None:
    channel = await rows.channel("webform")
    form = await create_form(client, admin, channel.id)
    async with sessions() as writer:
        # An uncommitted submission: its foreign key check holds a share lock on the form.
        writer.add(FormSubmission(form_id=uuid.UUID(form["id"]), attribution={}))
        await writer.flush()
        deleting = asyncio.ensure_future(
            client.delete(f"/api/v1/forms/{form['id']}", headers=admin.headers)
        )
        assert await wait_for_lock_waiters(client.app[ENGINE_KEY]) == 1
        await writer.commit()
    response = await deleting
    assert response.status == 409
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(FormSubmission)) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.text(max_size=220), label=st.text(max_size=220), description=st.text(max_size=300))
async def test_any_text_is_stored_as_shown_or_refused_by_name(
    client: Client,
    rows: Rows,
    admin: ApiUser,
    sessions: SessionFactory,
    name: str,
    label: str,
    description: str,
) -> None:
    channel = await rows.channel("webform")
    changes = {"fields": [{"name": "a", "label": label}], "description": description}
    response = await client.post(
        "/api/v1/forms", json=form_body(channel.id, name=name, **changes), headers=admin.headers
    )
    if response.status == 422:
        fields = await refused(response)
        assert fields and set(fields) <= {"name", "fields", "fields.0.label", "description"}, fields
        return
    assert response.status == 201, await response.text()
    created = await response.json()
    shown = (created["name"], created["fields"][0]["label"], created["description"])
    async with sessions() as session:
        stored = await session.get(Form, uuid.UUID(created["id"]))
    assert stored is not None
    assert (stored.name, stored.definition["fields"][0]["label"]) == shown[:2]
    assert stored.definition["description"] == shown[2]
    # Trimmed at most, never rewritten.
    assert shown[0] in name and shown[1] in label and (shown[2] or "") in description


@pytest.fixture
def colliding_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Keys handed out in order (the list is filled by the test), then random ones."""
    queue: list[str] = []
    real = web.api.forms.new_key
    monkeypatch.setattr(web.api.forms, "new_key", lambda: queue.pop(0) if queue else real())
    yield queue


@SQLITE_ONLY
async def test_a_colliding_key_is_drawn_again(
    client: Client, rows: Rows, admin: ApiUser, colliding_keys: list[str]
) -> None:
    channel = await rows.channel("webform")
    taken = (await create_form(client, admin, channel.id))["key"]
    colliding_keys.append(taken)
    second = await create_form(client, admin, channel.id)
    assert second["key"] != taken and KEY.fullmatch(second["key"])
    assert colliding_keys == []

    colliding_keys.append(taken)
    rotated = await client.post(f"/api/v1/forms/{second['id']}/rotate-key", headers=admin.headers)
    assert (await rotated.json())["key"] not in (taken, second["key"])

    # Only a broken generator collides every time: that is a server error, not a loop.
    colliding_keys.extend([taken] * web.api.forms._KEY_ATTEMPTS)
    response = await client.post("/api/v1/forms", json=form_body(channel.id), headers=admin.headers)
    assert response.status == 500
    assert colliding_keys == []


@SQLITE_ONLY
async def test_the_openapi_document_describes_forms(client: Client) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).json()
    schemas = spec["components"]["schemas"]

    def schema(ref: dict[str, Any]) -> Any:
        return schemas[ref["$ref"].rsplit("/", 1)[1]]

    paths = spec["paths"]
    assert set(paths["/api/v1/forms"]) == {"get", "post"}
    assert set(paths["/api/v1/forms/{id}"]) == {"get", "patch", "delete"}
    assert set(paths["/api/v1/forms/{id}/submissions"]) == {"get"}
    assert set(paths["/api/v1/forms/{id}/rotate-key"]) == {"post"}
    create = paths["/api/v1/forms"]["post"]
    body = schema(create["requestBody"]["content"]["application/json"]["schema"])
    assert {"name", "channel_id", "fields"} <= set(body["required"])
    assert body["additionalProperties"] is False
    field = schema(body["properties"]["fields"]["items"])
    assert {"name", "label", "type", "required", "maps_to", "options"} <= set(field["properties"])
    created = schema(create["responses"]["201"]["content"]["application/json"]["schema"])
    assert {"id", "key", "urls", "fields", "active", "created_at"} <= set(created["properties"])
    assert set(create["responses"]) >= {"201", "401", "403", "422"}
    listing = paths["/api/v1/forms"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"cursor", "limit", "channel_id", "active"}
    patch = schema(
        paths["/api/v1/forms/{id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    )
    assert {"active", "fields", "allowed_origins"} <= set(patch["properties"])
    assert "409" in paths["/api/v1/forms/{id}"]["delete"]["responses"]
