"""compose(): the MIME message of a reply, checked as it goes on the wire."""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from aiosmtplib.email import flatten_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email.compose import (
    MAX_NAME_CHARS,
    MAX_REFERENCES,
    MAX_REFERENCES_CHARS,
    NO_SUBJECT,
    clean_body,
    clean_header_text,
    compose,
    reply_subject,
    thread_references,
)
from connectors.email.config import EmailConfig
from connectors.types import ChannelId, Outbound, OutboundAttachment, ThreadHints

CONFIG = EmailConfig(
    imap_host="imap.example.com",
    imap_username="support",
    imap_password="secret",
    smtp_host="smtp.example.com",
    from_address="support@example.com",
    from_name="Example Support",
)


def outbound(**changes: object) -> Outbound:
    values: dict[str, object] = {
        "channel_id": ChannelId("c1"),
        "message_id": "m-1",
        "recipient": "ann@example.org",
        "text": "Hello",
    }
    values.update(changes)
    return Outbound(**values)  # type: ignore[arg-type]


def on_the_wire(message: EmailMessage) -> bytes:
    """The bytes aiosmtplib sends (to a server without 8BITMIME: the stricter case)."""
    return flatten_message(message, cte_type="7bit")


def reparse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=default_policy)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Where is my parcel?", "Re: Where is my parcel?"),
        ("Re: Where is my parcel?", "Re: Where is my parcel?"),
        ("RE: x", "RE: x"),
        ("re : x", "re : x"),
        ("Aw: Bestellung", "Aw: Bestellung"),
        ("SV: ordre", "SV: ordre"),
        ("Antw: bestelling", "Antw: bestelling"),
        ("Re[2]: x", "Re[2]: x"),
        ("回复\uff1a订单", "回复\uff1a订单"),  # a full-width colon
        ("Fwd: invoice", "Re: Fwd: invoice"),
        ("Reply needed", "Re: Reply needed"),
        ("  spaced\r\n\tout  ", "Re: spaced out"),
    ],
)
def test_the_reply_subject_never_stacks_prefixes(subject: str, expected: str) -> None:
    assert reply_subject(outbound(thread=ThreadHints(subject=subject))) == expected


def test_an_explicit_subject_is_used_when_the_thread_has_none() -> None:
    assert reply_subject(outbound(subject="Your order 1234")) == "Your order 1234"
    assert reply_subject(outbound(subject="x", thread=ThreadHints(subject="y"))) == "Re: y"


def test_no_subject_at_all_gets_the_fallback() -> None:
    assert reply_subject(outbound()) == NO_SUBJECT
    assert reply_subject(outbound(subject=" \r\n", thread=ThreadHints(subject=""))) == NO_SUBJECT


def test_references_keep_valid_ids_once_and_end_with_the_parent() -> None:
    refs = ("<a@x>", "not an id", "<b@x>", "<a@x>", "<with space@x>", "c@x", "<>", "<d@[10.0.0.1]>")
    assert thread_references(refs, "<p@x>") == [
        "<a@x>",
        "<b@x>",
        "<c@x>",
        "<d@[10.0.0.1]>",
        "<p@x>",
    ]
    assert thread_references(("<a@x>", "<p@x>"), "<p@x>") == ["<a@x>", "<p@x>"]
    assert thread_references((), None) == []
    assert thread_references(("<a@x>\r\nBcc: e@x",), "<p@x>\n") == ["<p@x>"]


def test_references_are_capped_to_the_root_and_the_latest() -> None:
    refs = tuple(f"<{n}.{'r' * 100}@example.org>" for n in range(200))
    kept = thread_references(refs, None)
    assert kept[0] == refs[0]
    assert kept[1:] == list(refs[-(len(kept) - 1) :])
    assert len(kept) <= MAX_REFERENCES
    assert len(" ".join(kept)) <= MAX_REFERENCES_CHARS


def test_the_message_id_is_stable_and_on_the_from_domain() -> None:
    config = CONFIG.model_copy(update={"from_address": "hilfe@bücher.example"})
    _, first = compose(config, outbound(message_id="7f0c"))
    message, again = compose(config, outbound(message_id="7f0c", text="other text"))
    assert first == again == "<sb.7f0c@xn--bcher-kva.example>"
    assert message["Message-ID"] == first
    assert reparse(on_the_wire(message))["From"].addresses[0].domain == "xn--bcher-kva.example"
    _, odd = compose(CONFIG, outbound(message_id="weird id <with> @ signs"))
    assert re.fullmatch(r"<sb\.[0-9a-f]{32}@example\.com>", odd)


def test_a_file_name_loses_its_path_and_an_rfc822_file_goes_as_bytes() -> None:
    message, _ = compose(
        CONFIG,
        outbound(
            attachments=(
                OutboundAttachment("../../etc/passwd", "text/plain", b"x"),
                OutboundAttachment("C:\\Users\\ann\\Straße.eml", "message/rfc822", b"From: a\r\n"),
                OutboundAttachment("", "not a type", b"y"),
            )
        ),
    )
    parts = list(reparse(on_the_wire(message)).iter_attachments())
    assert [part.get_filename() for part in parts] == ["passwd", "Straße.eml", "attachment"]
    assert [part.get_content_type() for part in parts] == [
        "text/plain",
        "application/octet-stream",
        "application/octet-stream",
    ]
    assert parts[1].get_content() == b"From: a\r\n"


def test_a_recipient_that_is_not_one_address_is_refused() -> None:
    for recipient in ("", "ann", "ann@", "@example.org", "Ann <ann@example.org>", "a@b\r\nc@d"):
        with pytest.raises(ValueError, match="not a plain email address"):
            compose(CONFIG, outbound(recipient=recipient))


def test_a_non_ascii_name_and_subject_round_trip() -> None:
    message, _ = compose(
        CONFIG,
        outbound(sender_name='Åsa Öberg, "Support"', thread=ThreadHints(subject="Заказ №5 🙂")),
    )
    parsed = reparse(on_the_wire(message))
    assert parsed["From"].addresses[0].display_name == 'Åsa Öberg, "Support"'
    assert parsed["Subject"] == "Re: Заказ №5 🙂"


# Any code point (controls, NUL, lone surrogates), mixed with what attacks or trips up
# header code: line breaks, encoded words that decode to line breaks, quotes, specials.
NASTY = [
    "\r\nBcc: victim@example.net",
    "\n",
    "\u2028",
    "\x85",
    "\0",
    "\ud800",
    "=?utf-8?b?eA0KQmNjOiBldmlsQHg=?=",
    "=?utf-8?q?a=0D=0AX-Injected:_1?=",
    '"',
    "\\",
    "<>@,;:()[].",
    "x" * 120,
    " ",
]
anything = st.lists(
    st.text(st.characters(exclude_categories=[]), max_size=40) | st.sampled_from(NASTY),
    max_size=8,
).map("".join)
msg_ids = st.one_of(
    anything,
    st.from_regex(r"<[a-z0-9.]{1,80}@[a-z0-9.]{1,40}>", fullmatch=True),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    text=anything,
    html=st.none() | anything,
    subject=st.none() | anything,
    thread_subject=st.none() | anything,
    sender_name=st.none() | anything,
    from_name=st.none() | st.text(st.characters(exclude_categories=[]), max_size=200),
    filenames=st.lists(anything, max_size=3),
    references=st.lists(msg_ids, max_size=30),
    in_reply_to=st.none() | msg_ids,
    message_id=anything,
    auto_reply=st.booleans(),
)
def test_compose_never_raises_for_content_and_always_reparses(
    text: str,
    html: str | None,
    subject: str | None,
    thread_subject: str | None,
    sender_name: str | None,
    from_name: str | None,
    filenames: list[str],
    references: list[str],
    in_reply_to: str | None,
    message_id: str,
    auto_reply: bool,
) -> None:
    config = CONFIG.model_copy(update={"from_name": from_name})
    message, rfc_id = compose(
        config,
        outbound(
            message_id=message_id,
            text=text,
            html=html,
            subject=subject,
            sender_name=sender_name,
            auto_reply=auto_reply,
            thread=ThreadHints(
                subject=thread_subject, references=tuple(references), in_reply_to=in_reply_to
            ),
            attachments=tuple(
                OutboundAttachment(name, "application/pdf", b"%PDF") for name in filenames
            ),
        ),
    )
    data = on_the_wire(message)

    assert data.isascii()
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    parsed = reparse(data)
    for name in ("From", "To", "Subject", "Message-ID", "Date"):
        assert len(parsed.get_all(name) or []) == 1, name
    for name in ("In-Reply-To", "References", "Auto-Submitted"):
        assert len(parsed.get_all(name) or []) <= 1, name
    assert parsed["Message-ID"] == rfc_id
    assert parsed["From"].addresses[0].addr_spec == "support@example.com"
    assert parsed["To"].addresses[0].addr_spec == "ann@example.org"
    expected_subject = reply_subject(
        outbound(subject=subject, thread=ThreadHints(subject=thread_subject))
    )
    assert parsed["Subject"] == expected_subject
    expected_name = clean_header_text(sender_name or from_name or "", MAX_NAME_CHARS)
    # CPython's address parser puts a space between adjacent encoded words, which RFC 2047
    # section 6.2 says to drop; so the name is compared without whitespace.
    got_name = parsed["From"].addresses[0].display_name
    assert "".join(got_name.split()) == "".join(expected_name.split())
    assert "Bcc" not in parsed
    assert "X-Injected" not in parsed
    assert (parsed["Auto-Submitted"] == "auto-replied") is auto_reply
    body = parsed.get_body(("plain",))
    assert body is not None
    assert normalized(body.get_content()) == normalized(clean_body(text))
    assert len(list(parsed.iter_attachments())) == len(filenames)


def normalized(text: str) -> str:
    return re.sub(r"\r\n|\r", "\n", text).rstrip("\n")
