"""`switchboard inspect email` and `switchboard import email`, run as real processes."""

from __future__ import annotations

import asyncio
import json
import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.web.test_cli import _env, switchboard
from timeline.crypto import SecretBox
from timeline.db import create_engine, session_factory
from timeline.models import Channel, Conversation, Message

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "email"
KEY = "email-cli-test-secret-key-0123456789abcdef"
EMAIL_CONFIG = {
    "imap_host": "127.0.0.1",
    "imap_username": "support",
    "imap_password": "secret",
    "smtp_host": "127.0.0.1",
    "from_address": "support@example.com",
}


def mail(number: int, *, sender: str = "ann@example.com", reply_to: int | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = f"Ann Example <{sender}>"
    message["To"] = "support@example.com"
    message["Subject"] = f"Question {number}"
    message["Message-ID"] = f"<q{number}@example.com>"
    message["Date"] = f"Mon, 0{1 + number % 9} Jan 2024 10:00:00 +0000"
    if reply_to is not None:
        message["In-Reply-To"] = f"<q{reply_to}@example.com>"
    message.set_content(f"Body of question {number}\nFrom the start of a line.\n")
    return message.as_bytes()


async def _make_channel(url: str, kind: str = "email") -> str:
    engine = create_engine(url)
    try:
        config = EMAIL_CONFIG if kind == "email" else {"allowed_origins": ["https://x.example"]}
        channel = Channel(
            kind=kind, name=f"{kind} import", config_encrypted=SecretBox(KEY).encrypt(config)
        )
        async with session_factory(engine)() as session, session.begin():
            session.add(channel)
        return str(channel.id)
    finally:
        await engine.dispose()


async def _counts(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            messages = await session.scalar(select(func.count()).select_from(Message))
            conversations = await session.scalar(select(func.count()).select_from(Conversation))
        return int(messages or 0), int(conversations or 0)
    finally:
        await engine.dispose()


def test_inspect_prints_one_object_per_file(tmp_path: Path) -> None:
    env = _env(data_dir=str(tmp_path / "data"))
    files = [
        CORPUS / "chatwoot__only_html.eml",
        CORPUS / "phpmimemailparser__m0124",
        tmp_path / "missing.eml",
    ]
    # An Outlook .msg is an OLE2 compound file, not RFC 822.
    outlook = tmp_path / "exported.msg"
    outlook.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    files.append(outlook)
    done = switchboard("inspect", "email", *map(str, files), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(objects) == len(files)
    html_only, traversal, missing = objects[:3]
    assert html_only["error"] is None
    assert html_only["text"].strip()
    assert html_only["from"]["address"]
    for attachment in traversal["attachments"]:
        assert "/" not in attachment["filename"] and "\\" not in attachment["filename"]
    assert missing["error"]
    assert objects[3]["error"]


@pytest.mark.parametrize("layout", ["mbox", "maildir", "eml-folder"])
def test_import_is_idempotent_and_summarized(
    database_url: str, tmp_path: Path, layout: str
) -> None:
    channel_id = asyncio.run(_make_channel(database_url))
    messages = [mail(1), mail(2), mail(3, reply_to=1), mail(4, sender="bob@example.com")]
    source = tmp_path / "export"
    if layout == "mbox":
        box = mailbox.mbox(source)
        for raw in messages:
            box.add(raw)
        box.flush()
        box.close()
    elif layout == "maildir":
        maildir = mailbox.Maildir(source, create=True)
        for raw in messages:
            maildir.add(raw)
        maildir.close()
    else:
        source.mkdir()
        for number, raw in enumerate(messages):
            (source / f"{number:03}.eml").write_bytes(raw)
        # Not a message at all: refused with the parser's reason, never stopping the rest.
        (source / "zz-notes.eml").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    env = _env(database_url=database_url, data_dir=str(tmp_path / "data"), secret_key=KEY)

    first = switchboard(
        "import", "email", "--channel", channel_id, str(source), env=env, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    refused = 1 if layout == "eml-folder" else 0
    assert (
        f"{4 + refused} message(s) read: 4 imported, 0 skipped as duplicate, {refused} refused"
        in first.stdout
    )
    # The reply (In-Reply-To <q1>) joined the first question's conversation.
    assert asyncio.run(_counts(database_url)) == (4, 3)

    again = switchboard(
        "import", "email", "--channel", channel_id, str(source), env=env, cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert "0 imported, 4 skipped as duplicate" in again.stdout
    assert asyncio.run(_counts(database_url)) == (4, 3)


def test_import_errors_are_clear(database_url: str, tmp_path: Path) -> None:
    env = _env(database_url=database_url, data_dir=str(tmp_path / "data"), secret_key=KEY)
    form = asyncio.run(_make_channel(database_url, kind="webform"))
    source = tmp_path / "one.eml"
    source.write_bytes(mail(1))
    wrong_kind = switchboard(
        "import", "email", "--channel", form, str(source), env=env, cwd=tmp_path
    )
    assert wrong_kind.returncode == 1
    assert "not email" in wrong_kind.stderr
    missing = switchboard(
        "import", "email", "--channel", form, str(tmp_path / "nowhere"), env=env, cwd=tmp_path
    )
    assert missing.returncode == 1
    assert "cannot import" in missing.stderr
    unknown = switchboard(
        "import",
        "email",
        "--channel",
        "00000000-0000-0000-0000-000000000000",
        str(source),
        env=env,
        cwd=tmp_path,
    )
    assert unknown.returncode == 1
    assert "no channel" in unknown.stderr
