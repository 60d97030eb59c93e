"""Loading forms by key: the effective definition, the cache and what empties it, and
bodies of any shape never crashing the endpoint."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from connectors.webform.config import WebformConfig
from connectors.webform.definition import FormDefinition
from tests.web.conftest import Client
from tests.web.test_public_forms_support import (
    ALLOWED,
    CHANNEL_ALLOWED,
    CONTACT_FIELDS,
    make_channel,
    make_form,
)
from timeline.events import Event
from timeline.models import Channel, Form
from web.keys import READ_SESSIONS_KEY, SECRET_BOX_KEY, SESSIONS_KEY
from web.public_forms.lookup import FormLookup, effective_definition

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def definition(**extra: object) -> FormDefinition:
    return FormDefinition.model_validate(
        {"name": "F", "channel_id": "c", "fields": CONTACT_FIELDS, **extra}
    )


def test_effective_definition_adds_channel_origins_and_honeypot() -> None:
    config = WebformConfig(allowed_origins=[CHANNEL_ALLOWED, ALLOWED], honeypot_field="url")
    merged = effective_definition(definition(allowed_origins=[ALLOWED]), config)
    assert merged.allowed_origins == (ALLOWED, CHANNEL_ALLOWED)
    assert merged.honeypot_field == "url"
    # A channel honeypot named like one of the form's fields would swallow real answers.
    clash = effective_definition(definition(), WebformConfig(honeypot_field="Email"))
    assert clash.honeypot_field == "website"


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@sqlite_only
async def test_cache_keeps_a_form_for_its_lifetime_and_forgets_on_events(client: Client) -> None:
    form = await make_form(client)
    ticks = Ticks()
    lookup = FormLookup(
        client.app[READ_SESSIONS_KEY], client.app[SECRET_BOX_KEY], ttl=5, clock=ticks
    )
    first = await lookup.get(form.key)
    assert first is not None and first.available
    async with client.app[SESSIONS_KEY]() as session:
        await session.execute(update(Form).where(Form.id == form.id).values(active=False))
        await session.commit()
    assert await lookup.get(form.key) is first  # cached
    lookup.observe(Event("form.submitted", {}))  # not a change of the form
    assert await lookup.get(form.key) is first
    lookup.observe(Event("form.updated", {"id": str(form.id)}))
    assert await lookup.get(form.key) is None
    async with client.app[SESSIONS_KEY]() as session:
        await session.execute(update(Form).where(Form.id == form.id).values(active=True))
        await session.execute(
            update(Channel).where(Channel.id == form.channel_id).values(paused=True)
        )
        await session.commit()
    assert await lookup.get(form.key) is None  # the "absent" answer is cached too
    ticks.now += 6
    paused = await lookup.get(form.key)
    assert paused is not None and not paused.available
    lookup.observe(Event("channel.updated", {}))
    assert len(lookup._entries) == 0


@sqlite_only
async def test_unreadable_channel_settings_make_the_form_unavailable(client: Client) -> None:
    channel = await make_channel(client)
    form = await make_form(client, channel)
    async with client.app[SESSIONS_KEY]() as session:
        await session.execute(
            update(Channel).where(Channel.id == channel.id).values(config_encrypted="garbage")
        )
        await session.commit()
    lookup = FormLookup(client.app[READ_SESSIONS_KEY], client.app[SECRET_BOX_KEY])
    found = await lookup.get(form.key)
    assert found is not None and not found.available


@sqlite_only
async def test_a_form_on_a_channel_of_another_kind_is_not_served(client: Client) -> None:
    form = await make_form(client)
    async with client.app[SESSIONS_KEY]() as session:
        await session.execute(
            update(Channel).where(Channel.id == form.channel_id).values(kind="sms")
        )
        await session.commit()
    lookup = FormLookup(client.app[READ_SESSIONS_KEY], client.app[SECRET_BOX_KEY])
    assert await lookup.get(form.key) is None


BODY_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b",
    "application/json; charset=utf-16",
]


@sqlite_only
async def test_no_body_crashes_the_endpoint(client: Client) -> None:
    form = await make_form(client, await make_channel(client, submissions_per_hour_per_ip=10_000))

    # Hypothesis drives synchronous functions only: draw the bodies first, then post them.
    bodies: list[tuple[str, bytes]] = []

    @settings(max_examples=80, deadline=None, database=None)
    @given(
        content_type=st.sampled_from(BODY_TYPES),
        body=st.one_of(
            st.binary(max_size=300),
            st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.dictionaries(
                st.text(max_size=10),
                st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30)),
                max_size=5,
            ).map(lambda d: json.dumps(d).encode()),
        ),
    )
    def draw(content_type: str, body: bytes) -> None:
        bodies.append((content_type, body))

    draw()
    for content_type, body in bodies:
        response = await client.post(
            f"/forms/{form.key}", data=body, headers={"Content-Type": content_type}
        )
        assert response.status in (200, 400, 413, 415, 422), await response.text()
        document = await response.json()
        assert ("ok" in document) == (response.status == 200), (content_type, body)
