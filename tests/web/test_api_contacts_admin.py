"""The contact list of an unsaved filter (POST /segments/preview/contacts), which the admin
contacts screen shows while a filter is being built: the same contacts the count and
the CSV export see, paged, within what the user may see; bad filters are 422 with the
field named. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from inbox.models import Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from tests.web.test_api_segments import add_contact, call, define_plan
from timeline.db import SessionFactory

URL = "/segments/preview/contacts"


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


async def test_lists_and_pages_the_contacts_a_filter_matches(
    client: Client, agent: ApiUser, sessions: SessionFactory, rows: Rows
) -> None:
    home = await rows.home()  # the agent's channel
    await define_plan(sessions)
    await add_contact(sessions, "Ann", stage="lead", plan="pro", minute=1, channel=home)
    await add_contact(sessions, "Bob", stage="lead", tags=("vip",), minute=2, channel=home)
    await add_contact(sessions, "Cat", stage="lead", plan="pro", minute=3, channel=home)
    await add_contact(sessions, "Dan", stage="customer", plan="pro", minute=4, channel=home)
    await add_contact(sessions, "Eve", stage="lead", erased=True, minute=5, channel=home)
    await add_contact(sessions, "Hid", stage="lead", plan="pro", minute=6)  # another channel

    pro_leads = {
        "filters": {
            "stages": ["lead"],
            "attributes": [{"key": "plan", "op": "eq", "value": "pro"}],
        }
    }
    first = await call(client, agent, "POST", URL, 200, pro_leads, limit=1)
    assert names(first) == ["Cat"]  # most recent activity first
    assert first["items"][0]["attributes"] == {"plan": "pro"}
    assert first["next_cursor"] is not None
    second = await call(client, agent, "POST", URL, 200, pro_leads, cursor=first["next_cursor"])
    assert names(second) == ["Ann"]
    assert second["next_cursor"] is None
    # The same contacts the live count counts.
    counted = await call(client, agent, "POST", "/segments/preview", 200, pro_leads)
    assert counted["count"] == 2

    # No filter: every contact the agent sees, not erased ones.
    everyone = await call(client, agent, "POST", URL, 200, {})
    assert names(everyone) == ["Dan", "Cat", "Bob", "Ann"]
    tagged = await call(client, agent, "POST", URL, 200, {"filters": {"tags_any": ["VIP"]}})
    assert names(tagged) == ["Bob"]


async def test_an_admin_sees_every_channel_and_may_include_erased(
    client: Client, admin: ApiUser, agent: ApiUser, sessions: SessionFactory
) -> None:
    await add_contact(sessions, "Eve", stage="lead", erased=True, minute=1)
    await add_contact(sessions, "Hid", stage="lead", minute=2)
    audit = {"filters": {"stages": ["lead"], "include_erased": True}}
    assert names(await call(client, admin, "POST", URL, 200, audit)) == ["Hid", "Eve"]
    assert names(await call(client, admin, "POST", URL, 200, {})) == ["Hid"]
    manager = await make_api_user(sessions, Role.MANAGER)
    for user in (manager, agent):
        await call(client, user, "POST", URL, 403, audit)
    assert names(await call(client, agent, "POST", URL, 200, {})) == []


async def test_bad_filters_and_paging_are_refused_with_the_field_named(
    client: Client, agent: ApiUser, sessions: SessionFactory
) -> None:
    await define_plan(sessions)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"filters": {"stages": ["nope"]}}, "filters.stages.0"),
        ({"filters": {"colour": "red"}}, "filters.colour"),
        ({"filters": {"q": "x" * 201}}, "filters.q"),
        ({"filters": {"tags_any": ["t" * 101]}}, "filters.tags_any.0"),
        (
            {"filters": {"attributes": [{"key": "plan", "op": "gt", "value": 3}]}},
            "filters.attributes.0",
        ),
        ({"filters": {"attributes": [{"key": "gone", "op": "is_set"}]}}, "filters.attributes.0"),
    ]
    for body, field in cases:
        error = await call(client, agent, "POST", URL, 422, body)
        fields = error["error"]["fields"]
        assert any(path.startswith(field) for path in fields), (body, fields)
    error = await call(client, agent, "POST", URL, 422, {}, limit=0)
    assert "limit" in error["error"]["fields"]
    error = await call(client, agent, "POST", URL, 422, {}, cursor="not-a-cursor")
    assert "cursor" in error["error"]["fields"]
    await call(client, None, "POST", URL, 401, {})
