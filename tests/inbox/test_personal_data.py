"""A person's data: the export holds everything (and only safe file names); after an erase
no table holds their email, phone or name, while report counts stay."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.registry import spec_for
from connectors.types import (
    ExternalId,
    IdentityKind,
    InboundAttachment,
    RawPayload,
    SenderHandle,
)
from inbox.merge import merge_contacts
from inbox.models import ContactNote, Task
from inbox.personal_data import (
    ERASED,
    ERASED_TEXT,
    ContactMerged,
    erase_contact,
    export_contact,
    remove_unreferenced_blobs,
    safe_entry_name,
    scrub_event_data,
)
from tests.timeline.conftest import CONFIGS, SECRET
from tests.timeline.test_ingest import inbound
from tests.timeline.test_ingest_extras import tg
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.events import InProcessBus
from timeline.files import blob_path
from timeline.ingest import Ingestor
from timeline.merge import ContactNotFound
from timeline.models import (
    Base,
    Channel,
    Contact,
    ContactAttribute,
    ContactTag,
    Conversation,
    Form,
    FormSubmission,
    Identity,
    Message,
    RawInbound,
    TimelineEvent,
)
from timeline.outbox import queue_outbound

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EMAIL = "ann.secret@example.com"
PHONE = "+14155550123"
NAME = "Annabelle Quixote"
SHARED_FILE = b"a file Bob sent too"
OWN_FILE = b"Annabelle's passport scan"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def ingestor(sessions: SessionFactory, data_dir: Path) -> AsyncIterator[Ingestor]:
    ing = Ingestor(
        sessions,
        InProcessBus(),
        reopen_window=timedelta(days=7),
        data_dir=data_dir,
        secret_box=SecretBox(SECRET),
    )
    await ing.start()
    yield ing
    await ing.close()


async def _channel(sessions: SessionFactory, kind: str) -> uuid.UUID:
    config = spec_for(kind).config.model_validate(CONFIGS[kind])
    channel = Channel(
        kind=kind,
        name=f"{kind} test",
        config_encrypted=SecretBox(SECRET).encrypt(config.model_dump(mode="json")),
    )
    async with sessions() as session, session.begin():
        session.add(channel)
    return channel.id


@dataclass
class World:
    ann: uuid.UUID
    bob: uuid.UUID
    email_conversation: uuid.UUID
    email: uuid.UUID
    first_mail: Any


def _raw(content_type: str, body: str) -> RawPayload:
    return RawPayload(content_type, body.encode())


async def _world(sessions: SessionFactory, ingestor: Ingestor) -> World:
    """Annabelle by email (with files), by Telegram (offering her phone and email, an edit),
    merged into one; a form submission, a note, a task, tags, attributes and a reply.
    Bob shares one of her files."""
    email = await _channel(sessions, "email")
    telegram = await _channel(sessions, "telegram")
    webform = await _channel(sessions, "webform")
    files = (
        InboundAttachment("../../etc/passwd", "application/pdf", OWN_FILE),
        InboundAttachment("shared.txt", "text/plain", SHARED_FILE),
    )
    mail = dataclasses.replace(
        inbound(email, "<1@mail>", sender=EMAIL, text=f"Hello, {NAME} here, call {PHONE}"),
        sender=SenderHandle(IdentityKind.EMAIL, EMAIL, NAME),
        html=f"<p>{NAME}</p>",
        attachments=files,
        thread=dataclasses.replace(inbound(email, "x").thread, subject=f"From {NAME}"),
        raw=_raw("message/rfc822", f"From: {NAME} <{EMAIL}>\r\n\r\ncall {PHONE}"),
    )
    first = await ingestor.ingest(mail)
    offered = (
        SenderHandle(IdentityKind.PHONE, PHONE, NAME),
        SenderHandle(IdentityKind.EMAIL, EMAIL, NAME),
    )
    chat = await ingestor.ingest(
        tg(
            telegram,
            "777:1",
            "777",
            sender=SenderHandle(IdentityKind.TELEGRAM, "777", NAME),
            identities=offered,
            text=f"I am {NAME}",
            raw=_raw("application/json", json.dumps({"from": NAME, "text": "hi"})),
        )
    )
    edit = tg(
        telegram,
        "777:1:edit:1900000000",
        "777",
        sender=SenderHandle(IdentityKind.TELEGRAM, "777", NAME),
        edit_of=ExternalId("777:1"),
        text=f"Edited: {NAME}, {PHONE}",
        raw=_raw("application/json", json.dumps({"from": NAME, "text": PHONE})),
        sent_at=NOW + timedelta(minutes=5),
    )
    await ingestor.ingest(edit)
    # Someone else offers her phone: their timeline and the suggestion quote it.
    other = SenderHandle(IdentityKind.PHONE, PHONE, "Someone")
    await ingestor.ingest(tg(telegram, "888:1", "888", identities=(other,)))
    bob = await ingestor.ingest(
        dataclasses.replace(
            inbound(email, "<2@mail>", sender="bob@example.com", text="Bob's file"),
            attachments=(InboundAttachment("shared.txt", "text/plain", SHARED_FILE),),
        )
    )
    assert first.contact_id and chat.contact_id and bob.contact_id and first.conversation_id
    form = Form(key="contact-form", channel_id=webform, name="Contact us", definition={})
    async with sessions() as session, session.begin():
        session.add(form)
        await merge_contacts(session, first.contact_id, chat.contact_id, None, NOW)
        ann = await session.get(Contact, first.contact_id)
        assert ann is not None
        ann.name, ann.lifecycle_stage, ann.language = NAME, "customer", "en"
        await session.flush()
        session.add_all(
            [
                ContactNote(contact_id=ann.id, text=f"{NAME} prefers mornings"),
                Task(title=f"call {NAME} at {PHONE}", due_at=NOW, contact_id=ann.id),
                ContactTag(contact_id=ann.id, tag="vip"),
                ContactAttribute(contact_id=ann.id, key="home", text_value=f"{NAME}'s house"),
                FormSubmission(
                    form_id=form.id,
                    contact_id=ann.id,
                    ip="203.0.113.9",
                    attribution={"page": f"https://x.example/?email={EMAIL}"},
                ),
            ]
        )
        await queue_outbound(
            session,
            conversation_id=first.conversation_id,
            text=f"Dear {NAME}, thanks",
            html=f"<p>Dear {NAME}</p>",
        )
    return World(first.contact_id, bob.contact_id, first.conversation_id, email, mail)


async def scan_rows(engine: AsyncEngine, needles: list[str]) -> list[str]:
    """Every (table, column) of every row whose value contains one of the needles."""
    found = []
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in await conn.execute(table.select()):
                for column, value in row._mapping.items():
                    if value is None:
                        continue
                    if isinstance(value, bytes):
                        shown = value.decode("utf-8", "replace")
                    elif isinstance(value, dict | list):
                        shown = json.dumps(value, ensure_ascii=False)
                    else:
                        shown = str(value)
                    found += [f"{table.name}.{column}: {n}" for n in needles if n in shown]
    return found


async def test_after_an_erase_no_table_holds_the_persons_email_phone_or_name(
    engine: AsyncEngine, sessions: SessionFactory, ingestor: Ingestor, data_dir: Path
) -> None:
    world = await _world(sessions, ingestor)
    needles = [EMAIL, PHONE, NAME]
    assert await scan_rows(engine, needles)  # the scan does see them before
    async with sessions() as session:
        counts_before = (
            await session.scalar(
                select(func.count()).select_from(Message).where(Message.contact_id == world.ann)
            ),
            await session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.contact_id == world.ann)
            ),
        )
    actor = uuid.uuid4()
    async with sessions() as session, session.begin():
        erasure = await erase_contact(session, world.ann, actor, NOW)
    async with sessions() as session:
        removed = await remove_unreferenced_blobs(session, data_dir, erasure.blobs)

    assert await scan_rows(engine, needles) == []
    assert erasure.first and erasure.counts["identities"] == 3
    assert removed == 1
    assert not blob_path(data_dir, _sha(OWN_FILE)).exists()
    assert blob_path(data_dir, _sha(SHARED_FILE)).exists()  # Bob's attachment still needs it
    async with sessions() as session:
        ann = await session.get(Contact, world.ann)
        assert ann is not None
        assert (ann.erased_at, ann.name, ann.language, ann.lifecycle_stage) == (
            NOW,
            None,
            None,
            "customer",
        )
        counts_after = (
            await session.scalar(
                select(func.count()).select_from(Message).where(Message.contact_id == world.ann)
            ),
            await session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.contact_id == world.ann)
            ),
        )
        texts = set(
            await session.scalars(select(Message.text).where(Message.contact_id == world.ann))
        )
        [audit] = await session.scalars(select(TimelineEvent).where(TimelineEvent.kind == ERASED))
        bob_texts = set(
            await session.scalars(select(Message.text).where(Message.contact_id == world.bob))
        )
    assert counts_after == counts_before  # the tombstone keeps report counts
    assert texts == {ERASED_TEXT}
    assert audit.contact_id == world.ann and audit.data == {"by": str(actor)}
    assert bob_texts == {"Bob's file"}
    assert [e.type for e in erasure.events] == [ERASED, "contact.updated"]


async def test_erasing_twice_is_harmless_and_redelivery_does_not_bring_the_person_back(
    engine: AsyncEngine, sessions: SessionFactory, ingestor: Ingestor
) -> None:
    world = await _world(sessions, ingestor)
    async with sessions() as session, session.begin():
        await erase_contact(session, world.ann, None, NOW)
    async with sessions() as session, session.begin():
        again = await erase_contact(session, world.ann, None, NOW + timedelta(days=1))
    assert not again.first
    assert again.counts["identities"] == 0 and again.counts["raw_payloads"] == 0
    async with sessions() as session:
        erased_at = await session.scalar(select(Contact.erased_at).where(Contact.id == world.ann))
        audits = await session.scalar(
            select(func.count()).select_from(TimelineEvent).where(TimelineEvent.kind == ERASED)
        )
        contacts = await session.scalar(select(func.count()).select_from(Contact))
    assert (erased_at, audits) == (NOW, 1)
    # The mail server hands the same message over again: still a duplicate.
    result = await ingestor.ingest(world.first_mail)
    assert result.status == "duplicate"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == contacts
        left = set(await session.scalars(select(Identity.value)))
    assert left == {"bob@example.com", "888"}  # the others' own
    assert await scan_rows(engine, [EMAIL, NAME]) == []


async def test_unknown_and_merged_contacts_are_not_erased(
    sessions: SessionFactory, ingestor: Ingestor
) -> None:
    world = await _world(sessions, ingestor)
    async with sessions() as session, session.begin():
        with pytest.raises(ContactNotFound):
            await erase_contact(session, uuid.uuid4(), None, NOW)
    async with sessions() as session:
        merged = await session.scalar(select(Contact.id).where(Contact.merged_into_id == world.ann))
    assert merged is not None
    async with sessions() as session, session.begin():
        with pytest.raises(ContactMerged) as caught:
            await erase_contact(session, merged, None, NOW)
    assert caught.value.survivor_id == world.ann


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_the_export_holds_everything_with_safe_entry_names(
    sessions: SessionFactory, ingestor: Ingestor, data_dir: Path, tmp_path: Path
) -> None:
    world = await _world(sessions, ingestor)
    target = tmp_path / "export.zip"
    async with sessions() as session:
        summary = await export_contact(session, world.ann, data_dir, target)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        document = json.loads(archive.read("contact.json"))
        files = {name: archive.read(name) for name in names if name.startswith("attachments/")}
        raw = [name for name in names if name.startswith("raw/")]
    for name in names:
        assert not name.startswith("/") and ".." not in name.split("/"), name
    assert document["contact"]["name"] == NAME
    assert len(document["merged_contacts"]) == 1
    assert {i["value"] for i in document["identities"]} == {EMAIL, PHONE, "777"}
    texts = [m["text"] for m in document["messages"]]
    assert any(NAME in t and PHONE in t for t in texts)
    assert f"Dear {NAME}, thanks" in texts
    assert any(m["html"] == f"<p>{NAME}</p>" for m in document["messages"])
    assert any(m["delivery_state"] == "queued" for m in document["messages"])
    assert any(e["kind"] == "message.edited" for e in document["timeline_events"])
    assert [n["text"] for n in document["notes"]] == [f"{NAME} prefers mornings"]
    assert [t["title"] for t in document["tasks"]] == [f"call {NAME} at {PHONE}"]
    assert document["tags"][0]["tag"] == "vip"
    assert document["attributes"][0]["text_value"] == f"{NAME}'s house"
    assert document["form_submissions"][0]["ip"] == "203.0.113.9"
    assert len(document["conversations"]) == 2
    assert summary.files == 2 and summary.missing_files == 0
    assert sorted(files.values()) == sorted([OWN_FILE, SHARED_FILE])
    assert {name.rsplit("/", 1)[-1] for name in files} == {"passwd", "shared.txt"}
    # The email, the Telegram message and its edit: raw payloads as received.
    assert summary.raw_payloads == len(raw) == 3
    async with sessions() as session:
        bodies = list(await session.scalars(select(RawInbound.body)))
    with zipfile.ZipFile(target) as archive:
        assert {archive.read(name) for name in raw} <= set(bodies)


async def test_an_export_of_an_unknown_contact_is_refused(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    async with sessions() as session:
        with pytest.raises(ContactNotFound):
            await export_contact(session, uuid.uuid4(), tmp_path, tmp_path / "x.zip")


async def test_an_export_streams_large_histories_without_holding_them(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    channel = Channel(kind="email", name="m", config_encrypted="x")
    contact = Contact(name="Many")
    async with sessions() as session, session.begin():
        session.add_all([channel, contact])
        await session.flush()
        conversation = Conversation(contact_id=contact.id, channel_id=channel.id)
        session.add(conversation)
        await session.flush()
        session.add_all(
            Message(
                conversation_id=conversation.id,
                channel_id=channel.id,
                contact_id=contact.id,
                direction="in",
                text=f'message {n} \u2603 "quoted"',
                sent_at=NOW,
                seq=n,
            )
            for n in range(1, 1201)
        )
    target = tmp_path / "many.zip"
    async with sessions() as session:
        summary = await export_contact(session, contact.id, tmp_path, target)
        # Streamed as core rows: no message became an object in the session.
        assert not any(isinstance(o, Message) for o in session.identity_map.values())
    assert summary.messages == 1200
    with zipfile.ZipFile(target) as archive:
        document = json.load(io.BytesIO(archive.read("contact.json")))
    assert [m["seq"] for m in document["messages"]] == list(range(1, 1201))
    assert document["messages"][0]["text"] == 'message 1 \u2603 "quoted"'


# Names made of path pieces, controls, bidi overrides and any other character.
HOSTILE = st.lists(
    st.characters(codec="utf-8", exclude_characters="\x00")
    | st.sampled_from(["/", "\\", "..", ".", "\n", "\x7f", "\u202e", ":", "C:"]),
    max_size=200,
).map("".join)


@given(HOSTILE)
def test_zip_entry_names_are_never_paths(name: str) -> None:
    safe = safe_entry_name(name, "fallback")
    assert safe
    assert "/" not in safe and "\\" not in safe
    assert not safe.startswith(".")
    assert len(safe) <= 120
    assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) < 0xA0 for c in safe)
    assert "\u202e" not in safe  # no bidi override hiding an extension


def test_hostile_names_become_their_last_plain_part() -> None:
    assert safe_entry_name("../../etc/passwd", "f") == "passwd"
    assert safe_entry_name("C:\\Windows\\win.ini", "f") == "win.ini"
    assert safe_entry_name("..", "f") == "f"
    assert safe_entry_name(None, "attachment-1") == "attachment-1"
    assert safe_entry_name("a" * 300 + ".pdf", "f").endswith(".pdf")


def test_event_data_keeps_ids_and_codes_only() -> None:
    channel = str(uuid.uuid4())
    data = {
        "channel_id": channel,
        "previous_text": "my secret",
        "kind": "phone",
        "value": PHONE,
        "from": "lead",
        "to": "lost",
        "reason": "Ann moved",
        "status": "Annabelle",
        "moved": {"messages": 2},
        "by": None,
        "due_at": NOW.isoformat(),
        "page": "https://x",
    }
    assert scrub_event_data(data) == {
        "channel_id": channel,
        "kind": "phone",
        "from": "lead",
        "to": "lost",
        "moved": {"messages": 2},
        "by": None,
        "due_at": NOW.isoformat(),
    }
