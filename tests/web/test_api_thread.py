"""Message files and retries (web/api/thread.py): a file is served as an untrusted
download through its message's visibility; a failed reply is queued again once; the
email frame (web/ui/message_frames.py) loads nothing remote until asked."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import select

from tests.web.conftest import ApiUser, Client, Rows
from timeline.db import SessionFactory
from timeline.files import store_blob
from timeline.models import Attachment, Message, OutboundJob, utcnow
from web.api.thread import clean_filename, content_disposition
from web.keys import SETTINGS_KEY
from web.sessions import COOKIE_NAME, SESSION_STORE_KEY

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
HOSTILE_NAME = "inv\u202eoice<script>.png"


async def _file(
    client: Client, sessions: SessionFactory, message: Message, **kw: object
) -> Attachment:
    data = kw.pop("data", PNG)
    assert isinstance(data, bytes)
    digest, size = store_blob(client.app[SETTINGS_KEY].data_dir, data)
    attachment = Attachment(message_id=message.id, sha256=digest, size=size, **kw)
    async with sessions() as session, session.begin():
        session.add(attachment)
    return attachment


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_attachment_download_and_visibility(
    client: Client, rows: Rows, sessions: SessionFactory, agent: ApiUser, admin: ApiUser
) -> None:
    home = await rows.home()
    contact = await rows.seen_contact("Ann")
    conversation = await rows.conversation(contact, home)
    message = await rows.message(conversation, text="see attached")
    image = await _file(client, sessions, message, content_type="image/png", filename=HOSTILE_NAME)
    page = await _file(
        client,
        sessions,
        message,
        data=b"<script>alert(1)</script>",
        content_type="text/html",
        filename="page.html",
    )

    response = await client.get(f"/api/v1/attachments/{image.id}", headers=agent.headers)
    assert response.status == 200
    assert await response.read() == PNG
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "\u202e" not in disposition and "<" not in disposition.split("filename*")[0]
    assert "filename*=UTF-8''" + quote("invoice<script>.png", safe="") in disposition

    # Inline only for a safe image; HTML stays a download whatever is asked.
    inline = await client.get(f"/api/v1/attachments/{image.id}?inline=1", headers=agent.headers)
    assert inline.headers["Content-Disposition"].startswith("inline;")
    assert inline.headers["Content-Type"] == "image/png"
    html = await client.get(f"/api/v1/attachments/{page.id}?inline=1", headers=agent.headers)
    assert html.status == 200
    assert html.headers["Content-Disposition"].startswith("attachment;")

    # Another channel's file does not exist for the agent; the admin sees it.
    other = await rows.channel()
    theirs = await rows.message(await rows.conversation(contact, other))
    hidden = await _file(client, sessions, theirs, content_type="image/png", filename="a.png")
    refused = await client.get(f"/api/v1/attachments/{hidden.id}", headers=agent.headers)
    assert refused.status == 404
    allowed = await client.get(f"/api/v1/attachments/{hidden.id}", headers=admin.headers)
    assert allowed.status == 200


async def test_retry_requeues_a_failed_reply_once(
    client: Client, rows: Rows, sessions: SessionFactory, agent: ApiUser
) -> None:
    conversation = await rows.conversation(await rows.seen_contact("Ann"), await rows.home())
    failed = await rows.message(
        conversation,
        direction="out",
        delivery_state="failed_permanent",
        delivery_error="21610 Attempt to send to unsubscribed recipient",
    )
    sent = await rows.message(conversation, direction="out", delivery_state="delivered")

    response = await client.post(f"/api/v1/messages/{failed.id}/retry", headers=agent.headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["delivery"] == {"state": "queued", "error": None}
    async with sessions() as session:
        job = await session.scalar(select(OutboundJob).where(OutboundJob.message_id == failed.id))
    assert job is not None and job.state == "pending"

    again = await client.post(f"/api/v1/messages/{failed.id}/retry", headers=agent.headers)
    assert again.status == 409
    delivered = await client.post(f"/api/v1/messages/{sent.id}/retry", headers=agent.headers)
    assert delivered.status == 409

    elsewhere = await rows.conversation(await rows.contact("Bob"), await rows.channel())
    theirs = await rows.message(elsewhere, direction="out", delivery_state="failed_permanent")
    hidden = await client.post(f"/api/v1/messages/{theirs.id}/retry", headers=agent.headers)
    assert hidden.status == 404


async def test_email_frame_policy_and_visibility(
    client: Client, rows: Rows, sessions: SessionFactory, agent: ApiUser
) -> None:
    conversation = await rows.conversation(await rows.seen_contact("Ann"), await rows.home())
    message = await rows.message(conversation, text="hi")
    async with sessions() as session, session.begin():
        stored = await session.get(Message, message.id)
        assert stored is not None
        stored.html = '<p>Hi</p><img data-remote-src="https://tracker.example/p.gif" alt="x">'
    cookie = await client.app[SESSION_STORE_KEY].create(agent.user.id, utcnow())
    signed_in = {"Cookie": f"{COOKIE_NAME}={cookie}"}

    frame = await client.get(f"/messages/{message.id}/frame", headers=signed_in)
    assert frame.status == 200
    policy = frame.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "img-src data:;" in policy
    assert "sandbox" in policy and "allow-scripts" not in policy
    text = await frame.text()
    assert ' src="https://tracker.example' not in text and "<p>Hi</p>" in text

    shown = await client.get(f"/messages/{message.id}/frame?images=1", headers=signed_in)
    assert "img-src data: https:;" in shown.headers["Content-Security-Policy"]
    assert 'src="https://tracker.example/p.gif"' in await shown.text()

    elsewhere = await rows.message(
        await rows.conversation(await rows.contact("B"), await rows.channel())
    )
    assert (await client.get(f"/messages/{elsewhere.id}/frame", headers=signed_in)).status == 404


def test_filenames_cannot_spoof() -> None:
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("a\u202etxt.exe") == "atxt.exe"
    assert clean_filename("\u2067x\u2069.pdf\r\n") == "x.pdf"
    assert clean_filename("...") == "attachment"
    header = content_disposition('quote"d;name.pdf')
    assert header.startswith('attachment; filename="quote_d_name.pdf"')
    persian = content_disposition("گزارش.pdf")
    assert 'filename="_____.pdf"' in persian
    assert "filename*=UTF-8''" + quote("گزارش.pdf", safe="") in persian
