"""Notes about contacts and follow-up tasks over the REST API."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from inbox.models import Role
from inbox.tasks import TaskDueNotifier
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory
from timeline.events import InProcessBus
from timeline.models import Contact
from web.app import create_app
from web.keys import BUS_KEY, SESSIONS_KEY
from web.settings import Settings

DUE = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


async def call(
    client: Client,
    user: ApiUser,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    response = await client.request(
        method, f"/api/v1{path}", json=body, params=params, headers=user.headers
    )
    text = await response.text()
    return response.status, (await response.json()) if text else None


async def expect(
    client: Client,
    user: ApiUser,
    method: str,
    path: str,
    body: Any = None,
    status: int = 200,
    params: dict[str, Any] | None = None,
) -> Any:
    got, answer = await call(client, user, method, path, body, params)
    assert got == status, answer
    return answer


async def timeline_kinds(client: Client, user: ApiUser, contact_id: object) -> list[str]:
    page = await expect(client, user, "GET", f"/contacts/{contact_id}/timeline")
    return [item["kind"] for item in page["items"]][::-1]


# --- notes -----------------------------------------------------------------------------------


async def test_notes_add_list_edit_delete(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.seen_contact("Ann")
    first = await expect(
        client, agent, "POST", f"/contacts/{ann.id}/notes", {"text": "  likes email  "}, 201
    )
    assert first["text"] == "likes email"
    assert first["author_id"] == str(agent.user.id)
    assert first["contact_id"] == str(ann.id)
    second = await expect(
        client, agent, "POST", f"/contacts/{ann.id}/notes", {"text": "call after 5pm"}, 201
    )
    page = await expect(client, agent, "GET", f"/contacts/{ann.id}/notes")
    assert [item["id"] for item in page["items"]] == [second["id"], first["id"]]  # newest first

    edited = await expect(client, agent, "PATCH", f"/notes/{first['id']}", {"text": "likes SMS"})
    assert edited["text"] == "likes SMS"
    assert edited["updated_at"] >= edited["created_at"]
    await expect(client, agent, "DELETE", f"/notes/{second['id']}", status=204)
    page = await expect(client, agent, "GET", f"/contacts/{ann.id}/notes")
    assert [item["text"] for item in page["items"]] == ["likes SMS"]
    assert await timeline_kinds(client, agent, ann.id) == [
        "note.added",
        "note.added",
        "note.deleted",
    ]


async def test_notes_page_without_gaps(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.seen_contact("Ann")
    made = [
        (await expect(client, agent, "POST", f"/contacts/{ann.id}/notes", {"text": f"n{n}"}, 201))[
            "id"
        ]
        for n in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await expect(client, agent, "GET", f"/contacts/{ann.id}/notes", params=params)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]


async def test_only_author_admin_or_manager_change_a_note(
    client: Client, agent: ApiUser, admin: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    ann = await rows.seen_contact("Ann")
    other = await make_api_user(sessions, Role.AGENT)
    await rows.member(other.user, await rows.home())  # sees Ann: may not change the note
    manager = await make_api_user(sessions, Role.MANAGER)
    note = await expect(client, agent, "POST", f"/contacts/{ann.id}/notes", {"text": "mine"}, 201)
    status, body = await call(client, other, "PATCH", f"/notes/{note['id']}", {"text": "theirs"})
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, _ = await call(client, other, "DELETE", f"/notes/{note['id']}")
    assert status == 403
    await expect(client, manager, "PATCH", f"/notes/{note['id']}", {"text": "by manager"})
    await expect(client, admin, "DELETE", f"/notes/{note['id']}", status=204)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   \n "}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({"text": "x" * 20_001}, "text"),
        ({"text": 5}, "text"),
        ({}, "text"),
        ({"text": "ok", "pinned": True}, "pinned"),
    ],
)
# Refused by the API's own checks; one database is enough (on SQLite, which stores what
# PostgreSQL would refuse, a missing check shows as a stored value instead of a 422).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_notes_are_422(
    client: Client, agent: ApiUser, rows: Rows, body: dict[str, Any], field: str
) -> None:
    ann = await rows.seen_contact("Ann")
    status, answer = await call(client, agent, "POST", f"/contacts/{ann.id}/notes", body)
    assert status == 422, answer
    assert field in answer["error"]["fields"]


async def test_notes_of_unknown_things_are_404(client: Client, agent: ApiUser) -> None:
    unknown = uuid.uuid4()
    assert (await call(client, agent, "GET", f"/contacts/{unknown}/notes"))[0] == 404
    assert (await call(client, agent, "POST", f"/contacts/{unknown}/notes", {"text": "x"}))[
        0
    ] == 404
    assert (await call(client, agent, "PATCH", f"/notes/{unknown}", {"text": "x"}))[0] == 404
    assert (await call(client, agent, "DELETE", "/notes/not-a-uuid"))[0] == 404


async def test_no_notes_on_an_erased_contact(
    client: Client, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    ann = await rows.seen_contact("Ann")
    async with sessions() as session, session.begin():
        await session.execute(
            update(Contact).where(Contact.id == ann.id).values(erased_at=datetime.now(UTC))
        )
    status, body = await call(client, agent, "POST", f"/contacts/{ann.id}/notes", {"text": "x"})
    assert (status, body["error"]["code"]) == (409, "conflict")


# --- tasks -----------------------------------------------------------------------------------


async def test_task_lifecycle(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.seen_contact("Ann")
    created = await expect(
        client,
        agent,
        "POST",
        "/tasks",
        {
            "title": "Call Ann back",
            "due_at": "2030-01-01T10:00:00+01:00",
            "contact_id": str(ann.id),
        },
        201,
    )
    assert created["assignee_id"] == str(agent.user.id)  # the creator by default
    assert created["created_by"] == str(agent.user.id)
    assert created["due_at"] == "2030-01-01T09:00:00Z"
    assert created["status"] == "open"
    assert await expect(client, agent, "GET", f"/tasks/{created['id']}") == created

    done = await expect(client, agent, "PATCH", f"/tasks/{created['id']}", {"status": "done"})
    assert done["status"] == "done" and done["completed_at"] is not None
    reopened = await expect(client, agent, "PATCH", f"/tasks/{created['id']}", {"status": "open"})
    assert reopened["status"] == "open" and reopened["completed_at"] is None
    moved = await expect(
        client,
        agent,
        "PATCH",
        f"/tasks/{created['id']}",
        {"title": "Call Ann", "due_at": "2030-02-01T09:00:00Z", "assignee_id": None},
    )
    assert (moved["title"], moved["due_at"], moved["assignee_id"]) == (
        "Call Ann",
        "2030-02-01T09:00:00Z",
        None,
    )
    await expect(client, agent, "DELETE", f"/tasks/{created['id']}", status=204)
    assert (await call(client, agent, "GET", f"/tasks/{created['id']}"))[0] == 404


async def test_task_on_a_conversation(client: Client, agent: ApiUser, rows: Rows) -> None:
    ann = await rows.seen_contact("Ann")
    bob = await rows.seen_contact("Bob")
    sms = await rows.channel("sms")
    await rows.member(agent.user, sms)
    conversation = await rows.conversation(ann, sms)
    created = await expect(
        client,
        agent,
        "POST",
        "/tasks",
        {"title": "Follow up", "due_at": DUE.isoformat(), "conversation_id": str(conversation.id)},
        201,
    )
    assert (created["contact_id"], created["conversation_id"]) == (None, str(conversation.id))
    status, body = await call(
        client,
        agent,
        "POST",
        "/tasks",
        {
            "title": "Mismatch",
            "due_at": DUE.isoformat(),
            "conversation_id": str(conversation.id),
            "contact_id": str(bob.id),
        },
    )
    assert status == 422 and "conversation_id" in body["error"]["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "due_at": "2030-01-01T09:00:00"}, "due_at"),  # no offset
        ({"title": "x", "due_at": "tomorrow"}, "due_at"),
        ({"title": "x", "due_at": "9999-12-31T23:00:00-05:00", "contact_id": "ANN"}, "due_at"),
        ({"title": "", "due_at": "2030-01-01T09:00:00Z"}, "title"),
        ({"title": "  ", "due_at": "2030-01-01T09:00:00Z"}, "title"),
        ({"title": "a\nb", "due_at": "2030-01-01T09:00:00Z"}, "title"),
        ({"title": "x" * 501, "due_at": "2030-01-01T09:00:00Z"}, "title"),
        ({"title": "x\x00", "due_at": "2030-01-01T09:00:00Z"}, "title"),
        ({"title": "x", "due_at": "2030-01-01T09:00:00Z"}, "contact_id"),  # about nothing
        ({"title": "x", "due_at": "2030-01-01T09:00:00Z", "contact_id": "UNKNOWN"}, "contact_id"),
        (
            {"title": "x", "due_at": "2030-01-01T09:00:00Z", "conversation_id": "UNKNOWN"},
            "conversation_id",
        ),
        (
            {
                "title": "x",
                "due_at": "2030-01-01T09:00:00Z",
                "assignee_id": "UNKNOWN",
                "contact_id": "ANN",
            },
            "assignee_id",
        ),
        ({"title": "x", "due_at": "2030-01-01T09:00:00Z", "contact_id": "nope"}, "contact_id"),
        (
            {"title": "x", "due_at": "2030-01-01T09:00:00Z", "contact_id": "ANN", "priority": 1},
            "priority",
        ),
    ],
)
# Refused by the API's own checks; one database is enough (on SQLite, which stores what
# PostgreSQL would refuse, a missing check shows as a stored value instead of a 422).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_tasks_are_422(
    client: Client, agent: ApiUser, rows: Rows, body: dict[str, Any], field: str
) -> None:
    ann = await rows.seen_contact("Ann")
    filled = {
        key: {"UNKNOWN": str(uuid.uuid4()), "ANN": str(ann.id)}.get(value, value)
        if isinstance(value, str)
        else value
        for key, value in body.items()
    }
    status, answer = await call(client, agent, "POST", "/tasks", filled)
    assert status == 422, answer
    assert field in answer["error"]["fields"], answer


async def test_inactive_assignee_is_422(
    client: Client, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    ann = await rows.seen_contact("Ann")
    gone = await make_api_user(sessions, Role.AGENT, active=False)
    body = {
        "title": "x",
        "due_at": DUE.isoformat(),
        "contact_id": str(ann.id),
        "assignee_id": str(gone.user.id),
    }
    status, answer = await call(client, agent, "POST", "/tasks", body)
    assert status == 422 and "assignee_id" in answer["error"]["fields"]


async def test_task_list_filters_and_order(
    client: Client, agent: ApiUser, admin: ApiUser, rows: Rows
) -> None:
    ann = await rows.seen_contact("Ann")
    bob = await rows.seen_contact("Bob")

    async def task(title: str, days: int, contact: Contact, assignee: ApiUser) -> str:
        body = {
            "title": title,
            "due_at": (DUE + timedelta(days=days)).isoformat(),
            "contact_id": str(contact.id),
            "assignee_id": str(assignee.user.id),
        }
        return str((await expect(client, agent, "POST", "/tasks", body, 201))["id"])

    later = await task("later", 3, ann, agent)
    soon = await task("soon", 1, bob, agent)
    admins = await task("admins", 2, ann, admin)
    await expect(client, agent, "PATCH", f"/tasks/{soon}", {"status": "done"})

    async def titles(**params: Any) -> list[str]:
        page = await expect(client, agent, "GET", "/tasks", params=params)
        return [item["title"] for item in page["items"]]

    assert await titles() == ["soon", "admins", "later"]
    assert await titles(assignee_id="me") == ["soon", "later"]
    assert await titles(assignee_id=str(admin.user.id)) == ["admins"]
    assert await titles(contact_id=str(ann.id)) == ["admins", "later"]
    assert await titles(status="open") == ["admins", "later"]
    assert await titles(status="done") == ["soon"]
    assert await titles(due_before=(DUE + timedelta(days=2)).isoformat()) == ["soon"]
    assert await titles(assignee_id="me", status="open") == ["later"]
    # Paging keeps the order without gaps.
    first = await expect(client, agent, "GET", "/tasks", params={"limit": 2})
    second = await expect(
        client, agent, "GET", "/tasks", params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert [i["id"] for i in first["items"] + second["items"]] == [soon, admins, later]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"assignee_id": "someone"},
        {"status": "closed"},
        {"due_before": "2030-01-01T09:00:00"},
        {"due_before": "soon"},
        {"contact_id": "x"},
        {"cursor": "garbage"},
        {"limit": "0"},
        {"color": "red"},
    ],
)
# Refused by the API's own checks; one database is enough (on SQLite, which stores what
# PostgreSQL would refuse, a missing check shows as a stored value instead of a 422).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_task_filters_are_422(
    client: Client, agent: ApiUser, params: dict[str, str]
) -> None:
    status, answer = await call(client, agent, "GET", "/tasks", params=params)
    assert status == 422, answer


async def test_only_creator_assignee_admin_or_manager_delete_a_task(
    client: Client, agent: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    ann = await rows.seen_contact("Ann")
    other = await make_api_user(sessions, Role.AGENT)
    await rows.member(other.user, await rows.home())  # sees the task: may not delete it
    manager = await make_api_user(sessions, Role.MANAGER)
    task = await expect(
        client,
        agent,
        "POST",
        "/tasks",
        {"title": "x", "due_at": DUE.isoformat(), "contact_id": str(ann.id)},
        201,
    )
    assert (await call(client, other, "DELETE", f"/tasks/{task['id']}"))[0] == 403
    await expect(client, manager, "DELETE", f"/tasks/{task['id']}", status=204)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "archived"}, "status"),
        ({"status": None}, "body"),
        ({"due_at": None}, "body"),
        ({"due_at": "2030-01-01"}, "due_at"),
        ({"title": None}, "body"),
        ({"contact_id": None}, "contact_id"),  # it would be about nothing
    ],
)
async def test_bad_task_changes_are_422(
    client: Client, agent: ApiUser, rows: Rows, body: dict[str, Any], field: str
) -> None:
    ann = await rows.seen_contact("Ann")
    task = await expect(
        client,
        agent,
        "POST",
        "/tasks",
        {"title": "x", "due_at": DUE.isoformat(), "contact_id": str(ann.id)},
        201,
    )
    status, answer = await call(client, agent, "PATCH", f"/tasks/{task['id']}", body)
    assert status == 422, answer
    assert field in answer["error"]["fields"], answer


async def test_rescheduled_task_is_due_again(
    client: Client, agent: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    ann = await rows.seen_contact("Ann")
    task = await expect(
        client,
        agent,
        "POST",
        "/tasks",
        {"title": "x", "due_at": DUE.isoformat(), "contact_id": str(ann.id)},
        201,
    )
    now = DUE

    def clock() -> datetime:
        return now

    notifier = TaskDueNotifier(sessions, InProcessBus(), clock=clock)
    assert await notifier.run_once() == 1
    shown = await expect(client, agent, "GET", f"/tasks/{task['id']}")
    assert shown["due_notified_at"] == "2030-01-01T09:00:00Z"
    later = (DUE + timedelta(hours=2)).isoformat()
    shown = await expect(client, agent, "PATCH", f"/tasks/{task['id']}", {"due_at": later})
    assert shown["due_notified_at"] is None
    now = DUE + timedelta(hours=2)
    assert await notifier.run_once() == 1
    assert (await timeline_kinds(client, agent, ann.id)).count("task.due") == 2


async def test_concurrent_task_completion_is_consistent(
    client: Client, agent: ApiUser, rows: Rows
) -> None:
    ann = await rows.seen_contact("Ann")
    task = await expect(
        client,
        agent,
        "POST",
        "/tasks",
        {"title": "x", "due_at": DUE.isoformat(), "contact_id": str(ann.id)},
        201,
    )
    results = await asyncio.gather(
        *(
            call(client, agent, "PATCH", f"/tasks/{task['id']}", {"status": "done"})
            for _ in range(5)
        )
    )
    assert [status for status, _ in results] == [200] * 5
    # Completing twice keeps the first completion time.
    assert len({body["completed_at"] for _, body in results}) == 1


async def test_the_worker_role_raises_due_notices(aiohttp_client: Any, settings: Settings) -> None:
    worker: Client = await aiohttp_client(
        create_app(settings.model_copy(update={"task_due_interval_seconds": 0.05}))
    )
    user = await make_api_user(worker.app[SESSIONS_KEY], Role.AGENT)
    # A contact the agent sees: one with a conversation on a channel of theirs.
    contact = await Rows(worker, [user.user]).seen_contact("Ann")
    async with worker.app[BUS_KEY].subscribe() as events:
        task = await expect(
            worker,
            user,
            "POST",
            "/tasks",
            {"title": "x", "due_at": "2020-01-01T00:00:00Z", "contact_id": str(contact.id)},
            201,
        )
        while (heard := await events.get(timeout=30)) is not None and heard.type != "task.due":
            pass
    assert heard is not None
    assert heard.data["task_id"] == task["id"]
    assert heard.data["contact_id"] == str(contact.id)
