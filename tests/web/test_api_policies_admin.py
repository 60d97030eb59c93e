"""What the policies screens add to the API: the live preview of a canned response
being written (POST /canned-responses/preview), filled from a sample contact or from a
conversation the writer sees, refusing what saving would refuse, naming the field."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from inbox.canned import TEXT_MAX
from inbox.models import Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory

PREVIEW = "/api/v1/canned-responses/preview"
TEXT = "Hi {{contact.first_name | there}} ({{contact.email}}), {{agent.first_name}} here."


async def _named(sessions: SessionFactory, who: ApiUser, name: str) -> None:
    async with sessions() as session, session.begin():
        user = await session.get(type(who.user), who.user.id)
        assert user is not None
        user.name = name


async def test_preview_fills_a_sample_or_a_conversation_the_writer_sees(
    client: Client, sessions: SessionFactory, agent: ApiUser, rows: Rows
) -> None:
    await _named(sessions, agent, "Bob Stone")
    sample = await client.post(PREVIEW, json={"text": TEXT}, headers=agent.headers)
    assert sample.status == 200, await sample.text()
    assert await sample.json() == {
        "text": "Hi Ann (ann.lee@example.com), Bob here.",
        "sample": True,
    }

    contact = await rows.contact("Dana Reyes", [("email", "dana@example.com")])
    mine = await rows.conversation(contact, await rows.home())
    hidden = await rows.conversation(contact, await rows.channel())  # not the agent's channel
    real = await client.post(
        PREVIEW, json={"text": TEXT, "conversation_id": str(mine.id)}, headers=agent.headers
    )
    assert real.status == 200, await real.text()
    assert await real.json() == {"text": "Hi Dana (dana@example.com), Bob here.", "sample": False}
    for conversation_id in (hidden.id, uuid.uuid4()):
        refused = await client.post(
            PREVIEW,
            json={"text": TEXT, "conversation_id": str(conversation_id)},
            headers=agent.headers,
        )
        assert refused.status == 404

    # A manager previews too; a fallback stands in for what the sample lacks (no name).
    manager = await make_api_user(sessions, Role.MANAGER)
    text = "{{agent.first_name | The team}} on {{channel.name}}"
    answer = await client.post(PREVIEW, json={"text": text}, headers=manager.headers)
    assert (await answer.json())["text"] == "The team on Support"
    assert (await client.post(PREVIEW, json={"text": TEXT})).status == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "Hi {{contact.frist_name}}"}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * (TEXT_MAX + 1)}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({}, "text"),
        ({"text": "Hi", "conversation_id": "nope"}, "conversation_id"),
        ({"text": "Hi", "extra": 1}, "extra"),
    ],
)
async def test_preview_refuses_what_saving_refuses(
    client: Client, admin: ApiUser, body: dict[str, Any], field: str
) -> None:
    response = await client.post(PREVIEW, json=body, headers=admin.headers)
    assert response.status == 422, await response.text()
    fields = (await response.json())["error"]["fields"]
    assert list(fields) == [field]
    if "frist" in body.get("text", ""):
        assert "{{contact.frist_name}}" in fields["text"]
