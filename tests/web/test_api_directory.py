"""The user directory (web/api/directory.py): whom a conversation on a channel may be
assigned to or mention, with presence, and the teams. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from inbox import presence
from inbox.account_models import ChannelTeam, Team, TeamMember
from inbox.models import Role, User
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory


async def _get(client: Client, caller: ApiUser, path: str, **query: str) -> tuple[int, Any]:
    response = await client.get(f"/api/v1/directory/{path}", params=query, headers=caller.headers)
    return response.status, await response.json()


async def _named(sessions: SessionFactory, role: Role, name: str, **kw: Any) -> ApiUser:
    made = await make_api_user(sessions, role, **kw)
    async with sessions() as session, session.begin():
        user = await session.get(User, made.user.id)
        assert user is not None
        user.name = name
    return ApiUser(user, made.token)


async def test_the_users_who_see_a_channel_with_presence_and_the_teams(
    client: Client, sessions: SessionFactory, rows: Rows, admin: ApiUser
) -> None:
    channel = await rows.channel("sms", name="Texts")
    other_channel = await rows.channel("email", name="Mail")
    manager = await _named(sessions, Role.MANAGER, "Mia Manager")
    member = await _named(sessions, Role.AGENT, "Ada Member")
    teammate = await _named(sessions, Role.AGENT, "Tom 50%_Team")
    outsider = await _named(sessions, Role.AGENT, "Otto Outside")
    retired = await _named(sessions, Role.AGENT, "Rita Retired", active=False)
    await rows.member_of(channel, member.user, retired.user)
    await rows.member_of(other_channel, outsider.user)
    async with sessions() as session, session.begin():
        support = Team(name="Support")
        archive = Team(name="Archive")
        session.add_all([support, archive])
        await session.flush()
        session.add_all(
            [
                TeamMember(team_id=support.id, user_id=teammate.user.id),
                ChannelTeam(channel_id=channel.id, team_id=support.id),
            ]
        )
        for who, availability in ((member, "online"), (manager, "away")):
            await presence.connect(
                session,
                connection_id=uuid.uuid4(),
                user_id=who.user.id,
                status=availability,
                process="t",
            )

    # An agent of the channel sees who else works it: staff, direct and team members,
    # never the deactivated member nor an agent of another channel.
    status, body = await _get(client, member, "users", channel_id=str(channel.id))
    assert status == 200, body
    found = {item["id"]: item for item in body["items"]}
    assert set(found) == {
        str(admin.user.id),
        str(manager.user.id),
        str(member.user.id),
        str(teammate.user.id),
    }
    assert found[str(member.user.id)] | {"email": None} == {
        "id": str(member.user.id),
        "name": "Ada Member",
        "email": None,
        "role": "agent",
        "presence": "online",
    }
    assert found[str(manager.user.id)]["presence"] == "away"
    assert found[str(teammate.user.id)]["presence"] == "offline"
    assert found[str(admin.user.id)]["name"] == admin.user.email  # unnamed: the address
    names = [item["name"] for item in body["items"]]
    assert names == sorted(names, key=str.casefold)

    # q filters by name or address, its wildcards taken literally.
    status, body = await _get(client, member, "users", channel_id=str(channel.id), q="50%_")
    assert [item["name"] for item in body["items"]] == ["Tom 50%_Team"]
    status, body = await _get(client, admin, "users", channel_id=str(channel.id), q="m%")
    assert body["items"] == []
    status, body = await _get(client, admin, "users", channel_id=str(other_channel.id))
    assert str(outsider.user.id) in {item["id"] for item in body["items"]}
    assert str(member.user.id) not in {item["id"] for item in body["items"]}

    # Teams: those working the channel first.
    status, body = await _get(client, teammate, "teams", channel_id=str(channel.id))
    assert status == 200
    assert [(t["name"], t["works_channel"]) for t in body["items"]] == [
        ("Support", True),
        ("Archive", False),
    ]

    # A channel the caller cannot see, or none at all, is a 404; no channel is a 422.
    for path in ("users", "teams"):
        assert (await _get(client, outsider, path, channel_id=str(channel.id)))[0] == 404
        assert (await _get(client, admin, path, channel_id=str(uuid.uuid4())))[0] == 404
        status, body = await _get(client, admin, path)
        assert status == 422 and "channel_id" in body["error"]["fields"]
