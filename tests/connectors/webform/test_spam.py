"""The honeypot and the signed render token."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from connectors.webform.body import URLENCODED, parse_body
from connectors.webform.definition import FormDefinition
from connectors.webform.spam import (
    Verdict,
    check_spam,
    check_token,
    honeypot_filled,
    issue_token,
)
from tests.connectors.webform.conftest import MULTIPART, PNG, contact_form, multipart

SECRET = b"s" * 32
KEY = "frm_abc123"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _check(token: str, at: timedelta, **kwargs: timedelta) -> Verdict:
    return check_token(SECRET, KEY, token, T0 + at, **kwargs).verdict


def test_a_fresh_token_is_accepted_after_a_human_delay() -> None:
    token = issue_token(SECRET, KEY, T0)
    check = check_token(SECRET, KEY, token, T0 + timedelta(seconds=20))
    assert check.verdict is Verdict.ACCEPTED
    assert check.issued_at == T0
    assert check.nonce is not None and check.nonce in token


def test_tokens_are_unique_per_rendering() -> None:
    assert issue_token(SECRET, KEY, T0) != issue_token(SECRET, KEY, T0)


def test_too_fast_and_expired_with_default_and_configured_bounds() -> None:
    token = issue_token(SECRET, KEY, T0)
    assert _check(token, timedelta(seconds=2)) is Verdict.TOO_FAST
    assert _check(token, timedelta(seconds=3)) is Verdict.ACCEPTED
    assert _check(token, timedelta(hours=24)) is Verdict.ACCEPTED
    assert _check(token, timedelta(hours=24, seconds=1)) is Verdict.EXPIRED
    assert _check(token, timedelta(seconds=4), min_age=timedelta(seconds=5)) is Verdict.TOO_FAST
    assert _check(token, timedelta(hours=2), max_age=timedelta(hours=1)) is Verdict.EXPIRED


def test_a_token_from_the_future_beyond_clock_skew_is_refused() -> None:
    token = issue_token(SECRET, KEY, T0 + timedelta(minutes=5))
    assert _check(token, timedelta(0)) is Verdict.BAD_TOKEN
    # Within the skew another process's clock may be ahead: a retriable "too fast".
    slightly = issue_token(SECRET, KEY, T0 + timedelta(seconds=30))
    assert _check(slightly, timedelta(0)) is Verdict.TOO_FAST
    assert _check(slightly, timedelta(seconds=40)) is Verdict.ACCEPTED


def test_another_forms_token() -> None:
    token = issue_token(SECRET, "frm_other", T0)
    assert _check(token, timedelta(minutes=1)) is Verdict.WRONG_FORM


def test_another_secret_or_tampering_breaks_the_signature() -> None:
    token = issue_token(SECRET, KEY, T0)
    assert check_token(b"other", KEY, token, T0 + timedelta(minutes=1)).verdict is Verdict.BAD_TOKEN
    version, key, issued, nonce, signature = token.split(".")
    earlier = str(int(issued) - 3600)  # pretend the page was rendered an hour earlier
    for forged in (
        ".".join((version, key, earlier, nonce, signature)),
        ".".join(
            (version, base64.urlsafe_b64encode(b"frm_other").decode(), issued, nonce, signature)
        ),
        ".".join((version, key, issued, nonce + "A", signature)),
        ".".join((version, key, issued, nonce, signature[:-2] + "AA")),
        ".".join(("v2", key, issued, nonce, signature)),
    ):
        assert _check(forged, timedelta(minutes=1)) is Verdict.BAD_TOKEN, forged


@pytest.mark.parametrize("token", ["", "x", "a.b.c.d.e", "v1....", "é" * 10, "v1." * 300])
def test_garbage_tokens(token: str) -> None:
    assert _check(token, timedelta(minutes=1)) is Verdict.BAD_TOKEN


def test_honeypot(form: FormDefinition) -> None:
    assert not honeypot_filled(form, parse_body(URLENCODED, b"name=Ann&website="))
    assert not honeypot_filled(form, parse_body(URLENCODED, b"name=Ann&website=+"))
    assert honeypot_filled(form, parse_body(URLENCODED, b"name=Ann&website=http://spam"))
    assert honeypot_filled(form, parse_body(URLENCODED, b"website=%ff"))
    upload = multipart([], [("website", "x.png", "image/png", PNG)])
    assert honeypot_filled(form, parse_body(MULTIPART, upload))
    renamed = contact_form(honeypot_field="fax")
    assert not honeypot_filled(renamed, parse_body(URLENCODED, b"website=x"))
    assert honeypot_filled(renamed, parse_body(URLENCODED, b"fax=x"))


def _spam(form: FormDefinition, body: bytes, at: timedelta = timedelta(minutes=1)) -> Verdict:
    return check_spam(
        form, parse_body(URLENCODED, body), secret=SECRET, form_key=KEY, now=T0 + at
    ).verdict


def test_check_spam_combines_honeypot_and_token(form: FormDefinition) -> None:
    token = issue_token(SECRET, KEY, T0).encode()
    assert _spam(form, b"name=Ann") is Verdict.ACCEPTED  # a plain API post
    assert _spam(form, b"name=Ann&_token=" + token) is Verdict.ACCEPTED
    assert _spam(form, b"name=Ann&_token=" + token, timedelta(seconds=1)) is Verdict.TOO_FAST
    assert _spam(form, b"_token=forged") is Verdict.BAD_TOKEN
    # The honeypot wins over a good token: a bot can fetch the page too.
    assert _spam(form, b"website=x&_token=" + token) is Verdict.HONEYPOT
    strict = contact_form(require_token=True)
    assert _spam(strict, b"name=Ann") is Verdict.MISSING_TOKEN
    assert _spam(strict, b"name=Ann&_token=") is Verdict.MISSING_TOKEN
    assert _spam(strict, b"name=Ann&_token=" + token) is Verdict.ACCEPTED


def test_verdicts_say_how_to_answer() -> None:
    assert Verdict.HONEYPOT.silent
    assert not any(v.silent for v in Verdict if v is not Verdict.HONEYPOT)
    for verdict in (Verdict.TOO_FAST, Verdict.EXPIRED, Verdict.BAD_TOKEN, Verdict.MISSING_TOKEN):
        assert verdict.message
