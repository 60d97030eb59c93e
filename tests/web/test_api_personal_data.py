"""A contact's personal data over the REST API: the zip export and the erase."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.registry import spec_for
from inbox.models import Role
from tests.web.conftest import ApiUser, Client, Rows, make_api_user
from timeline.db import SessionFactory
from timeline.files import blob_path, store_blob
from timeline.models import Attachment, Contact, Identity, Message
from timeline.outbound_build import build_outbound
from timeline.send_outcome import Failed
from web.keys import SETTINGS_KEY


@pytest.fixture
async def manager(sessions: SessionFactory) -> ApiUser:
    return await make_api_user(sessions, Role.MANAGER)


async def _ann_with_a_file(client: Client, rows: Rows, sessions: SessionFactory) -> Any:
    channel = await rows.channel("email")
    ann = await rows.contact("Ann Example", [("email", "ann@example.com")])
    conversation = await rows.conversation(ann, channel)
    message = await rows.message(conversation, text="Ann's question")
    data_dir: Path = client.app[SETTINGS_KEY].data_dir
    digest, size = store_blob(data_dir, b"the file Ann sent")
    async with sessions() as session, session.begin():
        session.add(
            Attachment(
                message_id=message.id,
                sha256=digest,
                size=size,
                content_type="text/plain",
                filename="/abs/../../evil.txt",
            )
        )
    return ann, conversation, message, blob_path(data_dir, digest)


async def test_a_manager_downloads_the_export_as_a_zip(
    client: Client, manager: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    ann, _, message, _ = await _ann_with_a_file(client, rows, sessions)
    response = await client.get(f"/api/v1/contacts/{ann.id}/export", headers=manager.headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="contact-{ann.id}.zip"'
    )
    with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
        names = archive.namelist()
        document = json.loads(archive.read("contact.json"))
        assert archive.read(f"attachments/{message.id}/evil.txt") == b"the file Ann sent"
    assert all(".." not in name.split("/") and not name.startswith("/") for name in names)
    assert document["contact"]["name"] == "Ann Example"
    assert [m["text"] for m in document["messages"]] == ["Ann's question"]


async def test_the_export_of_a_merged_id_is_the_survivors(
    client: Client, admin: ApiUser, rows: Rows
) -> None:
    ann = await rows.contact("Ann")
    dup = await rows.contact("Dup")
    merged = await client.post(
        f"/api/v1/contacts/{ann.id}/merge", json={"other_id": str(dup.id)}, headers=admin.headers
    )
    assert merged.status == 200
    response = await client.get(f"/api/v1/contacts/{dup.id}/export", headers=admin.headers)
    assert response.status == 200
    assert str(ann.id) in response.headers["Content-Disposition"]


async def test_agents_may_not_export_and_unknown_contacts_are_404(
    client: Client, agent: ApiUser, admin: ApiUser, rows: Rows
) -> None:
    ann = await rows.contact("Ann")
    forbidden = await client.get(f"/api/v1/contacts/{ann.id}/export", headers=agent.headers)
    assert forbidden.status == 403
    unknown = await client.get(f"/api/v1/contacts/{uuid.uuid4()}/export", headers=admin.headers)
    assert unknown.status == 404
    assert (await client.get(f"/api/v1/contacts/{ann.id}/export")).status == 401


async def test_an_admin_erases_with_the_id_as_confirmation(
    client: Client, admin: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    ann, conversation, _, blob = await _ann_with_a_file(client, rows, sessions)
    path = f"/api/v1/contacts/{ann.id}/erase"
    response = await client.post(path, json={"confirm": str(ann.id)}, headers=admin.headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["contact_id"] == str(ann.id) and body["already_erased"] is False
    assert body["counts"]["identities"] == 1 and body["files_removed"] == 1
    assert not blob.exists()
    async with sessions() as session:
        contact = await session.get(Contact, ann.id)
        assert contact is not None and contact.name is None and contact.erased_at is not None
        assert await session.scalar(select(func.count()).select_from(Identity)) == 0
        assert set(await session.scalars(select(Message.text))) == {"[erased]"}
    again = await client.post(path, json={"confirm": str(ann.id)}, headers=admin.headers)
    assert again.status == 200 and (await again.json())["already_erased"] is True
    shown = await client.get(f"/api/v1/contacts/{ann.id}", headers=admin.headers)
    assert (await shown.json())["name"] is None and (await shown.json())["identities"] == []
    listed = await client.get(
        "/api/v1/conversations", params={"contact_id": str(ann.id)}, headers=admin.headers
    )
    assert [c["id"] for c in (await listed.json())["items"]] == [str(conversation.id)]


@pytest.mark.parametrize(
    "body",
    [{}, {"confirm": ""}, {"confirm": "yes"}, {"confirm": str(uuid.uuid4())}, {"confirm": 1}],
)
async def test_a_missing_or_wrong_confirmation_is_422(
    client: Client, admin: ApiUser, rows: Rows, sessions: SessionFactory, body: Any
) -> None:
    ann = await rows.contact("Ann", [("email", "ann@example.com")])
    response = await client.post(
        f"/api/v1/contacts/{ann.id}/erase", json=body, headers=admin.headers
    )
    assert response.status == 422
    assert "confirm" in (await response.json())["error"]["fields"]
    async with sessions() as session:
        contact = await session.get(Contact, ann.id)
    assert contact is not None and contact.erased_at is None and contact.name == "Ann"


async def test_only_admins_erase_and_unknown_or_merged_contacts_are_refused(
    client: Client, admin: ApiUser, manager: ApiUser, rows: Rows
) -> None:
    ann, dup = await rows.contact("Ann"), await rows.contact("Dup")
    refused = await client.post(
        f"/api/v1/contacts/{ann.id}/erase", json={"confirm": str(ann.id)}, headers=manager.headers
    )
    assert refused.status == 403
    unknown = uuid.uuid4()
    missing = await client.post(
        f"/api/v1/contacts/{unknown}/erase", json={"confirm": str(unknown)}, headers=admin.headers
    )
    assert missing.status == 404
    await client.post(
        f"/api/v1/contacts/{ann.id}/merge", json={"other_id": str(dup.id)}, headers=admin.headers
    )
    merged = await client.post(
        f"/api/v1/contacts/{dup.id}/erase", json={"confirm": str(dup.id)}, headers=admin.headers
    )
    assert merged.status == 409
    assert str(ann.id) in (await merged.json())["error"]["message"]


async def _erased_conversation(client: Client, admin: ApiUser, rows: Rows) -> Any:
    channel = await rows.channel("email")
    ann = await rows.contact("Ann", [("email", "ann@example.com")])
    conversation = await rows.conversation(ann, channel)
    await rows.message(conversation, text="question")
    erased = await client.post(
        f"/api/v1/contacts/{ann.id}/erase", json={"confirm": str(ann.id)}, headers=admin.headers
    )
    assert erased.status == 200
    return conversation


async def test_a_reply_to_an_erased_contact_is_never_sent(
    client: Client, admin: ApiUser, rows: Rows, sessions: SessionFactory
) -> None:
    conversation = await _erased_conversation(client, admin, rows)
    response = await client.post(
        f"/api/v1/conversations/{conversation.id}/messages",
        json={"text": "are you there?"},
        headers=admin.headers,
    )
    if response.status == 422:  # refused up front (see the next test)
        return
    assert response.status == 201
    message_id = uuid.UUID((await response.json())["id"])
    # The outbox addresses replies at send time: with no identity left, nothing to send to.
    async with sessions() as session:
        built = await build_outbound(
            session,
            message_id,
            spec_for("email").capabilities,
            client.app[SETTINGS_KEY].data_dir,
        )
    assert isinstance(built, Failed) and built.permanent
    assert "no email to send to" in built.reason


async def test_a_reply_to_an_erased_contact_is_refused_up_front(
    client: Client, admin: ApiUser, rows: Rows
) -> None:
    conversation = await _erased_conversation(client, admin, rows)
    response = await client.post(
        f"/api/v1/conversations/{conversation.id}/messages",
        json={"text": "are you there?"},
        headers=admin.headers,
    )
    assert response.status == 422, await response.text()
    assert "channel_id" in (await response.json())["error"]["fields"]
    # A private note about the conversation is still fine: nothing is sent.
    note = await client.post(
        f"/api/v1/conversations/{conversation.id}/messages",
        json={"text": "erased on request", "private": True},
        headers=admin.headers,
    )
    assert note.status == 201
