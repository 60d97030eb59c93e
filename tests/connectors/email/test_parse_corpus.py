"""Every fixture of the real-mail corpus through the parser, checked against its manifest."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from connectors.email.parse import ParsedEmail, parse_email, to_inbound
from connectors.types import ChannelId, Inbound
from tests.connectors.email.corpus import CORPUS, expected, manifest, names, read

CHANNEL = ChannelId("00000000-0000-0000-0000-000000000001")

# Where the manifest's expectation is wrong, and why (checked against the raw bytes).
MANIFEST_ERRATA = {
    # RFC 2047 section 6.2: white space between two adjacent encoded words is dropped;
    # the institute is SibNIA named after S. A. Chaplygin: "Чаплыгина" is one word.
    ("phpmimemailparser__m0124", "from_name"): 'ФГУП "СибНИА им.С.А.Чаплыгина""',  # noqa: RUF001
    # The header says "<d3b8cf8e49f0448085@0c28713a1@f473e@37signals.com>": the manifest
    # cut it at the second "@"; the field says "as present".
    (
        "rubymail__plain_emails__raw_email_double_at_in_header.eml",
        "message_id",
    ): "<d3b8cf8e49f0448085@0c28713a1@f473e@37signals.com>",
}


def test_corpus_is_present() -> None:
    assert CORPUS.is_dir(), f"the email corpus is missing: expected it at {CORPUS}"
    kinds = [e["kind"] for e in manifest().values()]
    assert kinds.count("rfc822") == 92
    assert kinds.count("body_only_not_rfc822") == 12


@pytest.mark.parametrize("name", names())
def test_every_file_parses_and_makes_an_inbound(name: str) -> None:
    raw = read(name)
    started = time.process_time()
    parsed = parse_email(raw)
    inbound = to_inbound(CHANNEL, raw)
    assert isinstance(parsed, ParsedEmail)
    assert isinstance(inbound, Inbound)
    assert inbound.external_id == parsed.message_id
    assert parsed.message_id.startswith("<") and parsed.message_id.endswith(">")
    assert inbound.raw is not None and inbound.raw.data == raw
    assert isinstance(inbound.sent_at, datetime) and inbound.sent_at.tzinfo is not None
    if manifest()[name]["kind"] == "rfc822":
        assert parsed.error is None, parsed.error
    else:  # a reply body without any header is not a message
        assert parsed.error is not None and "not an RFC 822 message" in parsed.error
        assert inbound.sender is None and parsed.message_id_derived
    # CPU seconds, generous: a guard against runaway parsing, not a speed target.
    assert time.process_time() - started < 10


@pytest.mark.parametrize("name", names("rfc822"))
def test_manifest_expectations(name: str) -> None:
    want = expected(name)
    parsed = parse_email(read(name))
    checked = 0

    def check(field: str, got: object) -> None:
        nonlocal checked
        value = MANIFEST_ERRATA.get((name, field), want.get(field))
        if value is None:
            return
        if isinstance(value, str) and isinstance(got, str):
            value, got = value.strip(), got.strip()
        assert got == value, f"{field}: {got!r} != {value!r}"
        checked += 1

    check("from_address", parsed.from_.address if parsed.from_ else None)
    check("from_name", parsed.from_.name if parsed.from_ else None)
    check("subject", parsed.subject)
    check("message_id", None if parsed.message_id_derived else parsed.message_id)
    check("has_message_id", not parsed.message_id_derived)
    check("is_bounce", parsed.bounce is not None)
    flags = [want.get(k) for k in ("is_auto_reply", "is_auto_generated", "is_bulk_or_list")]
    if any(flag is not None for flag in flags):
        assert parsed.auto_submitted == any(bool(flag) for flag in flags)
        checked += 1
    for field in ("from_name", "subject"):  # the manifest's best guesses where it is unsure
        guess = want.get(f"{field}_best_guess")
        if guess is not None and want.get(field) is None:
            got = parsed.from_.name if field == "from_name" and parsed.from_ else parsed.subject
            assert got == guess
            checked += 1
    assert checked > 0
