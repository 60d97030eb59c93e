"""Property tests: no bytes make the parser raise, and every field keeps its documented type."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email.parse import Address, ParsedEmail, parse_email, to_inbound
from connectors.types import ChannelId, Inbound, InboundAttachment
from tests.connectors.email.corpus import names, read

CHANNEL = ChannelId("00000000-0000-0000-0000-000000000001")
# Small real messages to mutate (the large ones make each example slow).
SEEDS = [read(n) for n in names("rfc822") if len(read(n)) < 12_000]


def _address_ok(address: object) -> bool:
    return (
        isinstance(address, Address)
        and isinstance(address.address, str)
        and (address.name is None or isinstance(address.name, str))
    )


def check_types(parsed: ParsedEmail) -> None:
    assert parsed.from_ is None or _address_ok(parsed.from_)
    for group in (parsed.to, parsed.cc, parsed.reply_to):
        assert isinstance(group, tuple) and all(_address_ok(a) for a in group)
    assert parsed.subject is None or isinstance(parsed.subject, str)
    assert parsed.message_id.startswith("<") and parsed.message_id.endswith(">")
    assert isinstance(parsed.message_id_derived, bool)
    assert parsed.in_reply_to is None or parsed.in_reply_to.startswith("<")
    assert isinstance(parsed.references, tuple) and len(parsed.references) <= 100
    assert len(set(parsed.references)) == len(parsed.references)
    assert parsed.sent_at is None or parsed.sent_at.tzinfo is UTC
    assert isinstance(parsed.text, str) and "\x00" not in parsed.text
    assert parsed.reply_text is None or isinstance(parsed.reply_text, str)
    assert parsed.html is None or isinstance(parsed.html, str)
    for attachment in parsed.attachments:
        assert isinstance(attachment, InboundAttachment)
        assert isinstance(attachment.data, bytes)
        name = attachment.filename
        assert name is None or (name and "/" not in name and "\\" not in name)
    assert isinstance(parsed.auto_submitted, bool)
    assert parsed.error is None or isinstance(parsed.error, str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    parsed = parse_email(raw)
    check_types(parsed)
    inbound = to_inbound(CHANNEL, raw)
    assert isinstance(inbound, Inbound) and isinstance(inbound.sent_at, datetime)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        pos = draw(st.integers(0, max(len(raw) - 1, 0)))
        if action == "flip" and raw:
            raw[pos] = draw(st.integers(0, 255))
        elif action == "cut":
            del raw[pos : pos + draw(st.integers(1, 200))]
        elif action == "insert":
            raw[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"\n",
                        b"\r\n\r\n",
                        b"--",
                        b"=?utf-8?B?",
                        b"?=",
                        b"\xff\xfe",
                        b"\x00",
                        b"Content-Type: multipart/mixed; boundary=x\n",
                        b"\n--x\n",
                        b"Content-Transfer-Encoding: base64\n",
                        b"charset=iso-2022-jp",
                        b"filename*0*=utf-8''%E2%80",
                        b"<",
                        b">",
                        b"@",
                    ]
                )
            )
        else:
            raw[pos:pos] = raw[pos : pos + draw(st.integers(1, 400))]
    return bytes(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_real_messages_never_raise(raw: bytes) -> None:
    check_types(parse_email(raw))
    assert isinstance(to_inbound(CHANNEL, raw), Inbound)


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=200),
    st.text(max_size=200),
    st.sampled_from(
        [
            "utf-8",
            "koi8-r",
            "windows-1251",
            "iso-2022-jp",
            "utf-7",
            "gb2312",
            "big5",
            "shift_jis",
            "ks_c_5601-1987",
            "x-unknown",
            "us-ascii",
        ]
    ),
)
def test_any_header_and_body_text_never_raise(subject: str, body: str, charset: str) -> None:
    raw = (
        f"From: {subject} <a@example.com>\nSubject: {subject}\n"
        f"Content-Type: text/plain; charset={charset}\n\n{body}\n"
    ).encode("utf-8", "surrogatepass")
    check_types(parse_email(raw))
