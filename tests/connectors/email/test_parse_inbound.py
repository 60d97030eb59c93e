"""inbound_from / to_inbound and the `inspect email` JSON."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from connectors.email.inspect import inspect_files, inspect_json
from connectors.email.parse import inbound_from, parse_email, to_inbound
from connectors.types import ChannelId, IdentityKind
from tests.connectors.email.corpus import CORPUS, read

CHANNEL = ChannelId("00000000-0000-0000-0000-000000000001")


def test_inbound_from_a_reply() -> None:
    raw = read("chatwoot__mail_with_quote.eml")
    inbound = to_inbound(CHANNEL, raw)
    assert inbound.channel_id == CHANNEL
    assert (
        inbound.external_id
        == "<CAFkiBVwJjO_k_e-LpiKi7MAQAKbHX5nkEPcf0y1R=bjcEHogMg@mail.gmail.com>"
    )
    assert inbound.sender is not None
    assert (inbound.sender.kind, inbound.sender.value, inbound.sender.display_name) == (
        IdentityKind.EMAIL,
        "sony@chatwoot.com",
        "Sony Mathew",
    )
    assert inbound.thread.message_id == inbound.external_id
    assert inbound.thread.in_reply_to is not None
    assert inbound.thread.references[-1] == inbound.thread.in_reply_to
    assert inbound.thread.subject == "Re: Checking mail forwarding to cw inbox"
    assert inbound.reply_text == "Yes, I am providing you step how to reproduce this issue"
    assert inbound.sent_at == datetime(2021, 8, 19, 8, 44, 31, tzinfo=UTC)
    assert inbound.raw is not None and inbound.raw.content_type == "message/rfc822"
    assert inbound.raw.data == raw
    assert not inbound.auto_submitted


def test_same_message_twice_is_the_same_external_id() -> None:
    raw = b"From: a@example.com\nSubject: no id\n\nhello\n"
    first, second = to_inbound(CHANNEL, raw), to_inbound(CHANNEL, raw)
    assert first.external_id == second.external_id
    assert first.external_id.startswith("<sha256.")
    assert to_inbound(CHANNEL, raw + b"!").external_id != first.external_id


def test_missing_date_uses_now() -> None:
    before = datetime.now(UTC)
    inbound = to_inbound(CHANNEL, b"From: a@example.com\nSubject: x\n\nhi\n")
    assert before <= inbound.sent_at <= datetime.now(UTC)


def test_oversized_message_keeps_headers_and_a_note() -> None:
    raw = read("flanker__mailgun-pic.eml")
    headers = raw[: raw.index(b"\r\n\r\n") + 4]
    size = 43_201_331
    inbound = inbound_from(
        CHANNEL, parse_email(headers), headers, oversized_bytes=size, limit_bytes=25 * 1024 * 1024
    )
    assert inbound.text == (
        "[This message is 41.2 MB, larger than the 25.0 MB limit; "
        "it was not imported and remains in the mailbox.]"
    )
    assert inbound.attachments == () and inbound.html is None and inbound.reply_text is None
    assert inbound.sender is not None and inbound.sender.value == "hello@example.com"
    assert inbound.thread.subject == "Mailgun rocks!"
    assert inbound.external_id == (
        "<CAEMTkLZ=3kgop43XWVgYGcerNrqPy7aJHDPK3Sx5yqnVSgEjaA@mail.gmail.com>"
    )
    again = to_inbound(CHANNEL, headers, oversized_bytes=size)
    assert again.text == to_inbound(CHANNEL, headers, oversized_bytes=size).text
    assert "41.2 MB" in again.text and again.external_id == inbound.external_id


def test_inspect_json_shape() -> None:
    data = inspect_json(parse_email(read("flanker__mailgun-pic.eml")))
    assert list(data) == [
        "from", "to", "cc", "subject", "message_id", "in_reply_to", "references",
        "sent_at", "text", "reply_text", "html", "attachments", "auto_submitted", "error",
    ]  # fmt: skip
    assert data["from"] == {"address": "hello@example.com", "name": "Bob Smith"}
    assert data["attachments"] == [
        {"filename": "mailgun.png", "content_type": "image/png", "size": 60168, "inline": False}
    ]
    assert data["sent_at"] is not None and str(data["sent_at"]).endswith("+00:00")
    json.dumps(data)


def test_inspect_files_writes_one_object_per_file(tmp_path: Path) -> None:
    msg = tmp_path / "note.msg"
    msg.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    paths = [CORPUS / "flanker__no-ctype.eml", msg, tmp_path / "missing.eml"]
    out = io.StringIO()
    assert inspect_files(paths, out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["file"] for line in lines] == [str(p) for p in paths]
    assert lines[0]["error"] is None and lines[0]["subject"] == "Testing message parsing"
    assert "Outlook .msg" in lines[1]["error"] and lines[1]["from"] is None
    assert set(lines[2]) == {"file", "error"} and "cannot read" in lines[2]["error"]
