"""Shared pieces of the public form endpoint tests: forms written as rows, a movable
clock, and reading a token out of the hosted page. (No tests here.)"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.webform.config import WebformConfig
from connectors.webform.definition import FormDefinition
from tests.web.conftest import Client
from timeline.models import Channel, Form, FormSubmission, Message, utcnow
from web.keys import SECRET_BOX_KEY, SESSIONS_KEY
from web.public_forms import clock
from web.public_forms.keys import FORM_LOOKUP_KEY

ALLOWED = "https://shop.example.com"
CHANNEL_ALLOWED = "https://blog.example.com"
FOREIGN = "https://evil.example.net"
TOKEN_PATTERN = re.compile(r'name="_token" value="([^"]+)"')

CONTACT_FIELDS: list[dict[str, Any]] = [
    {"name": "name", "label": "Your name", "type": "text", "maps_to": "name"},
    {"name": "email", "label": "Email", "type": "email", "required": True, "maps_to": "email"},
    {"name": "phone", "label": "Phone", "type": "phone", "maps_to": "phone"},
    {"name": "message", "label": "Message", "type": "textarea", "maps_to": "message"},
]
FILE_FIELD: dict[str, Any] = {
    "name": "cv",
    "label": "Your CV",
    "type": "file",
    "accept": ["application/pdf", "text/plain"],
    "max_bytes": 2_000,
}
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


@dataclass
class MovableClock:
    """What `web.public_forms.clock.now` answers: the real time plus `offset`."""

    offset: timedelta = field(default_factory=timedelta)

    def now(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def timer(monkeypatch: pytest.MonkeyPatch) -> MovableClock:
    """The endpoints' clock, at the real time until a test moves it."""
    moved = MovableClock()
    monkeypatch.setattr(clock, "now", moved.now)
    return moved


async def make_channel(client: Client, *, paused: bool = False, **config: Any) -> Channel:
    """A web form channel with `config` (WebformConfig keys)."""
    settings = WebformConfig.model_validate({"allowed_origins": [CHANNEL_ALLOWED], **config})
    channel = Channel(
        kind="webform",
        name="Website",
        config_encrypted=client.app[SECRET_BOX_KEY].encrypt(settings.model_dump(mode="json")),
        health="unknown",
        paused=paused,
    )
    async with client.app[SESSIONS_KEY]() as session:
        session.add(channel)
        await session.commit()
    return channel


async def make_form(
    client: Client,
    channel: Channel | None = None,
    *,
    active: bool = True,
    fields: list[dict[str, Any]] | None = None,
    **definition: Any,
) -> Form:
    """A form row whose definition is validated as the API would."""
    channel = channel or await make_channel(client)
    document = {
        "name": "Contact us",
        "channel_id": str(channel.id),
        "fields": fields or CONTACT_FIELDS,
        "allowed_origins": [ALLOWED],
        **definition,
    }
    checked = FormDefinition.model_validate(document)
    form = Form(
        key="k" + uuid.uuid4().hex[:20],
        channel_id=channel.id,
        name=checked.name,
        definition=checked.model_dump(mode="json"),
        active=active,
    )
    async with client.app[SESSIONS_KEY]() as session:
        session.add(form)
        await session.commit()
    return form


def forget_forms(client: Client) -> None:
    """Drop the endpoint's form cache (rows were changed behind the API's back)."""
    client.app[FORM_LOOKUP_KEY].clear()


async def page_token(client: Client, form: Form) -> str:
    """A render token, as a browser gets it from the hosted page."""
    response = await client.get(f"/forms/{form.key}")
    assert response.status == 200, await response.text()
    found = TOKEN_PATTERN.search(await response.text())
    assert found is not None
    return found.group(1)


async def ready_token(client: Client, form: Form, timer: MovableClock) -> str:
    """A token from the hosted page, then the time a person takes to fill the form in."""
    token = await page_token(client, form)
    timer.advance(seconds=20)
    return token


async def stored(client: Client, form: Form) -> tuple[int, int]:
    """(messages on the form's channel, submission rows of the form)."""
    async with client.app[SESSIONS_KEY]() as session:
        messages = await session.scalar(
            select(func.count()).select_from(Message).where(Message.channel_id == form.channel_id)
        )
        submissions = await session.scalar(
            select(func.count())
            .select_from(FormSubmission)
            .where(FormSubmission.form_id == form.id)
        )
    return int(messages or 0), int(submissions or 0)
