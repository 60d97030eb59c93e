"""Who may call what: every role, on every route of the OpenAPI document (read from the
document, so a new route fails here until it is given a row), on a channel the agent is
a member of or not. SQLite only: this is about the handlers' checks, not about SQL."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest

from inbox.models import ContactNote, Role, Task
from tests.web.conftest import T0, ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory
from web.keys import OPENAPI_KEY

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

OK = "ok"  # allowed: not 401 or 403, and not 404 when the path names a real row
Expect = tuple[object, object, object, object]  # admin, manager, member agent, other agent

ALL: Expect = (OK, OK, OK, OK)
STAFF: Expect = (OK, OK, 403, 403)  # admins and managers
ADMIN: Expect = (OK, 403, 403, 403)
SCOPED: Expect = (OK, OK, OK, 404)  # about the member channel's conversation or contact
AUTHOR: Expect = (OK, OK, 403, 404)  # the admin's note: its author, staff; others not even see it

TABLE: dict[str, Expect] = {
    "GET /channels": ALL,
    "POST /channels": ADMIN,
    "GET /channels/{id}": SCOPED,
    "PATCH /channels/{id}": ADMIN,
    "DELETE /channels/{id}": ADMIN,
    "POST /channels/{id}/test": ADMIN,
    "GET /channels/{id}/members": ADMIN,
    "PUT /channels/{id}/members": ADMIN,
    "POST /channels/test": ADMIN,
    "GET /channels/{id}/endpoints": ADMIN,
    "GET /contacts": ALL,
    "GET /contacts/{id}": SCOPED,
    "PATCH /contacts/{id}": SCOPED,
    "GET /contacts/{id}/timeline": SCOPED,
    "GET /contacts/{id}/notes": SCOPED,
    "POST /contacts/{id}/notes": SCOPED,
    "POST /contacts/{id}/merge": STAFF,
    "GET /contacts/{id}/export": STAFF,
    "POST /contacts/{id}/erase": ADMIN,
    "POST /contacts/export.csv": STAFF,
    "GET /attributes": ALL,
    "POST /attributes": STAFF,
    "PATCH /attributes/{key}": STAFF,
    "DELETE /attributes/{key}": STAFF,
    "PATCH /notes/{id}": AUTHOR,
    "DELETE /notes/{id}": AUTHOR,
    "GET /tasks": ALL,
    "POST /tasks": ALL,
    "GET /tasks/{id}": SCOPED,
    "PATCH /tasks/{id}": SCOPED,
    "DELETE /tasks/{id}": AUTHOR,
    "GET /segments": ALL,
    "POST /segments": STAFF,
    "POST /segments/preview": ALL,
    "POST /segments/preview/contacts": ALL,
    "GET /segments/{id}": ALL,
    "PATCH /segments/{id}": STAFF,
    "DELETE /segments/{id}": STAFF,
    "GET /segments/{id}/contacts": ALL,
    "GET /segments/{id}/export.csv": STAFF,
    "GET /merge-suggestions": ALL,
    "POST /merge-suggestions/{id}/dismiss": STAFF,
    "POST /merge-suggestions/{id}/merge": STAFF,
    "GET /pipeline": ALL,  # visibility: tests/web/test_api_pipeline.py
    "GET /pipeline/cards": ALL,
    "GET /conversations": ALL,
    "POST /conversations/bulk": ALL,
    "GET /conversations/{id}": SCOPED,
    "PATCH /conversations/{id}": SCOPED,
    "GET /conversations/{id}/messages": SCOPED,
    "POST /conversations/{id}/messages": SCOPED,
    "GET /conversations/{id}/reply-channels": SCOPED,
    "POST /conversations/{id}/participants/{user_id}": SCOPED,
    "DELETE /conversations/{id}/participants/{user_id}": SCOPED,
    "POST /conversations/{id}/read": SCOPED,
    "POST /conversations/{id}/unread": SCOPED,
    "GET /conversations/{id}/sla": SCOPED,
    "GET /conversations/{id}/metrics": SCOPED,
    "GET /forms": STAFF,
    "POST /forms": ADMIN,
    "GET /forms/{id}": STAFF,
    "PATCH /forms/{id}": ADMIN,
    "DELETE /forms/{id}": ADMIN,
    "POST /forms/{id}/rotate-key": ADMIN,
    "GET /forms/{id}/submissions": STAFF,
    "POST /session": ALL,
    "GET /session": ALL,
    "DELETE /session": ALL,
    "PATCH /session": ALL,
    "POST /session/password": ALL,
    "GET /users": ALL,
    "POST /users": ADMIN,
    "GET /users/{id}": ALL,
    "PATCH /users/{id}": ADMIN,
    "GET /users/{id}/tokens": ADMIN,  # the admin's own: others may list only theirs
    "POST /users/{id}/tokens": ADMIN,
    "DELETE /users/{id}/tokens/{token_id}": ADMIN,
    "GET /users/{id}/channels": STAFF,
    "PUT /users/{id}/channels": ADMIN,
    "POST /users/{id}/invitation": ADMIN,
    "POST /invitations": ADMIN,
    "GET /invitations": ADMIN,
    "POST /invitations/accept": ALL,  # public: the token decides (test_api_invitations.py)
    "GET /teams": ALL,
    "POST /teams": ADMIN,
    "GET /teams/{id}": ALL,
    "PATCH /teams/{id}": ADMIN,
    "DELETE /teams/{id}": ADMIN,
    "GET /business-hours": STAFF,
    "POST /business-hours": ADMIN,
    "GET /business-hours/{id}": STAFF,
    "PATCH /business-hours/{id}": ADMIN,
    "DELETE /business-hours/{id}": ADMIN,
    "GET /sla-policies": STAFF,
    "POST /sla-policies": ADMIN,
    "GET /sla-policies/{id}": STAFF,
    "PATCH /sla-policies/{id}": ADMIN,
    "DELETE /sla-policies/{id}": ADMIN,
    "GET /webhooks/event-types": ADMIN,
    "GET /webhooks": ADMIN,
    "POST /webhooks": ADMIN,
    "GET /webhooks/{id}": ADMIN,
    "PATCH /webhooks/{id}": ADMIN,
    "DELETE /webhooks/{id}": ADMIN,
    "POST /webhooks/{id}/rotate-secret": ADMIN,
    "GET /webhooks/{id}/deliveries": ADMIN,
    "POST /webhooks/deliveries/{id}/redeliver": ADMIN,
    "GET /reports/summary": STAFF,
    "GET /reports/summary/export.csv": STAFF,
    "GET /reports/volume": STAFF,
    "GET /reports/volume/export.csv": STAFF,
    "GET /reports/series": STAFF,
    "GET /reports/series/export.csv": STAFF,
    "GET /reports/overview": STAFF,
    "GET /openapi.json": ALL,
    "GET /routing-rules": STAFF,
    "POST /routing-rules": ADMIN,
    "GET /routing-rules/{id}": STAFF,
    "PATCH /routing-rules/{id}": ADMIN,
    "DELETE /routing-rules/{id}": ADMIN,
    "GET /assignment-policies": STAFF,
    "POST /assignment-policies": ADMIN,
    "GET /assignment-policies/{id}": STAFF,
    "PATCH /assignment-policies/{id}": ADMIN,
    "DELETE /assignment-policies/{id}": ADMIN,
    "GET /assignment-policies/{id}/agents": STAFF,
    "GET /agents/{user_id}/capacity": STAFF,
    "PUT /agents/{user_id}/capacity": ADMIN,
    "DELETE /agents/{user_id}/capacity": ADMIN,
    "GET /canned-responses": ALL,
    "POST /canned-responses": ALL,
    "GET /canned-responses/{id}": ALL,
    "PATCH /canned-responses/{id}": ALL,
    "DELETE /canned-responses/{id}": ALL,
    "POST /canned-responses/{id}/render": ALL,
    "POST /canned-responses/preview": ALL,
    "GET /notifications": ALL,
    "GET /notifications/unread-count": ALL,
    "POST /notifications/{id}/read": ALL,
    "POST /notifications/read-all": ALL,
    "GET /directory/users": ALL,  # per channel: tests/web/test_api_directory.py
    "GET /directory/teams": ALL,
    "GET /search": ALL,  # visibility: tests/web/test_api_search.py
    "GET /conversations/counts": ALL,
    "GET /conversations/previews": ALL,
    "GET /attachments/{id}": SCOPED,  # through its message: tests/web/test_api_thread.py
    "POST /messages/{id}/retry": SCOPED,
}

# Valid bodies where an empty one would be refused before the checks this test is about,
# or would change what later rows rely on (the member's membership).
BODIES: dict[str, Any] = {
    "POST /contacts/{id}/notes": {"text": "a note"},
    "PATCH /notes/{id}": {"text": "edited"},
    "POST /conversations/{id}/messages": {"text": "a note", "private": True},
    "POST /canned-responses": {"short_code": "mine", "title": "Mine", "text": "Hello"},
    "POST /canned-responses/preview": {"text": "Hi {{contact.first_name}}"},
    "PATCH /session": {"language": "fa"},
}
# Rows deleted for real; other DELETEs name an unknown id so that later rows keep their data.
DELETED = ("notes", "tasks", "conversations", "contacts")
ROLES = ["admin", "manager", "member", "stranger", "disabled", "anonymous"]


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_on_every_route(
    client: Client, rows: Rows, sessions: SessionFactory, admin: ApiUser, role: str
) -> None:
    channel = await rows.channel()
    contact = await rows.contact("Ann", [("email", "ann@example.com")])
    conversation = await rows.conversation(contact, channel)
    await rows.message(conversation)
    users = {
        "admin": admin,
        "manager": await make_api_user(sessions, Role.MANAGER),
        "member": await make_api_user(sessions, Role.AGENT),
        "stranger": await make_api_user(sessions, Role.AGENT),
        "disabled": await make_api_user(sessions, Role.ADMIN, active=False),
    }
    await rows.member(users["member"].user, channel)
    await rows.member(users["disabled"].user, channel)
    async with sessions() as session, session.begin():
        note = ContactNote(contact_id=contact.id, author_id=admin.user.id, text="by the admin")
        task = Task(
            title="call back", due_at=T0 + timedelta(days=1), conversation_id=conversation.id
        )
        session.add_all([note, task])
    ids = {
        "channels": channel.id,
        "contacts": contact.id,
        "conversations": conversation.id,
        "notes": note.id,
        "tasks": task.id,
        "users": admin.user.id,
    }
    member_id = users["member"].user.id
    BODIES["PUT /channels/{id}/members"] = {"user_ids": [str(member_id)]}
    caller = users.get(role)
    headers = caller.headers if caller else {}

    document = client.app[OPENAPI_KEY]
    unlisted = []
    failures = []
    for full_path, item in document["paths"].items():
        path = full_path.removeprefix("/api/v1")
        for method, operation in item.items():
            name = f"{method.upper()} {path}"
            if name not in TABLE:
                unlisted.append(name)
                continue
            url, real = _url(path, method.upper(), ids, member_id)
            body = BODIES.get(name, {}) if "requestBody" in operation else None
            response = await client.request(method, url, json=body, headers=headers)
            public = operation.get("security") == []
            expected = _expected(TABLE[name], role, public)
            if not _matches(expected, response.status, real):
                failures.append(f"{name}: {role} got {response.status}, expected {expected}")
    assert not unlisted, f"routes without a row in TABLE: {unlisted}"
    assert not failures, "\n".join(failures)


def _url(
    path: str, method: str, ids: dict[str, uuid.UUID], member_id: uuid.UUID
) -> tuple[str, bool]:
    """The path with real ids where the test made the row, unknown ones elsewhere."""
    real = False

    def fill(match: re.Match[str]) -> str:
        nonlocal real
        name, parent = match.group(2), match.group(1)
        if name == "user_id":
            return str(member_id)
        if name == "key":
            return "no_such_key"
        if name == "id" and parent in ids and (method != "DELETE" or parent in DELETED):
            real = True
            return str(ids[parent])
        return str(uuid.uuid4())

    filled = re.sub(r"([\w-]+)/{(\w+)}", lambda m: f"{m.group(1)}/{fill(m)}", path)
    return "/api/v1" + filled, real


def _expected(row: Expect, role: str, public: bool) -> object:
    if public:
        return OK
    if role in ("disabled", "anonymous"):
        return 401
    return row[["admin", "manager", "member", "stranger"].index(role)]


def _matches(expected: object, status: int, real: bool) -> bool:
    if expected == OK:
        return status not in (401, 403) and not (real and status == 404) and status < 500
    return status == expected
