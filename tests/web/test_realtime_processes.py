"""Two web processes on one database and one Redis: what happens on one reaches the
websockets held by the other (issue 9: fan-out through Redis pub/sub)."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.types import ChannelId, ExternalId, IdentityKind, Inbound, SenderHandle
from inbox.models import Role
from tests.web.conftest import MakeClient, Rows, make_api_user
from tests.web.test_realtime import hello, of_type, opened, until
from web.keys import INGESTOR_KEY, SESSIONS_KEY
from web.settings import Settings


async def test_two_web_processes_share_events_and_presence(
    make_client: MakeClient, settings: Settings, redis_url: str
) -> None:
    shared = settings.model_copy(update={"redis_url": redis_url})
    app_a = await make_client(shared)
    app_b = await make_client(shared)
    sessions = app_a.app[SESSIONS_KEY]
    admin = await make_api_user(sessions, Role.ADMIN)
    agent = await make_api_user(sessions, Role.AGENT)
    rows = Rows(app_a, [agent.user])
    channel = await rows.channel("email")
    await rows.member_of(channel, agent.user)

    async with opened(app_b, admin) as on_b, opened(app_a, admin) as on_a:
        await hello(on_b)
        await hello(on_a)
        # An inbound message handled by A reaches the socket held on B.
        result = await app_a.app[INGESTOR_KEY].ingest(
            Inbound(
                channel_id=ChannelId(str(channel.id)),
                external_id=ExternalId("two-processes-1"),
                sender=SenderHandle(IdentityKind.EMAIL, "ann@example.com"),
                text="hello from A",
                sent_at=datetime.now(UTC),
            )
        )
        conversation_id = str(result.conversation_id)
        got = await until(on_b, of_type("message.created", conversation_id=conversation_id))
        assert got[-1]["id"] and got[-1]["data"]["direction"] == "in"

        # A change made through B's API reaches the socket held on A.
        patched = await app_b.patch(
            f"/api/v1/conversations/{conversation_id}",
            json={"status": "pending"},
            headers=admin.headers,
        )
        assert patched.status == 200, await patched.text()
        updated = await until(
            on_a, of_type("conversation.updated", conversation_id=conversation_id)
        )
        assert updated[-1]["data"]["status"] == "pending"

        # Presence set on A is seen on B, live and in B's next hello.
        async with opened(app_a, agent) as agent_on_a:
            await hello(agent_on_a)
            me = str(agent.user.id)
            await until(on_b, of_type("presence.changed", user_id=me, status="online"))
            await agent_on_a.send_json({"type": "presence", "status": "away"})
            await until(on_b, of_type("presence.changed", user_id=me, status="away"))
            async with opened(app_b, admin) as later_on_b:
                assert (await hello(later_on_b))["presence"][me] == "away"
        await until(on_b, of_type("presence.changed", user_id=me, status="offline"))
