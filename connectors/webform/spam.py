"""Spam defences that need no database: the honeypot field and the signed render token.

The token is issued when a form is rendered (hosted page, embed description) and posted
back as `_token`. It proves the form was rendered by us for this form key, and when: a
submission sooner than a person could type is refused, and so is one from a page left open
too long. Plain API posts carry no token and are accepted unless the form requires one.

Token format: "v1.<form key, base64url>.<issued, unix seconds>.<nonce>.<signature>", the
signature an HMAC-SHA256 over everything before it, keyed by a key derived from the
installation's secret (so the secret's other uses never yield a valid form token).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.webform.body import ParsedBody
from connectors.webform.definition import FormDefinition
from connectors.webform.submission import TOKEN_FIELD

VERSION = "v1"
MIN_AGE = timedelta(seconds=3)
MAX_AGE = timedelta(hours=24)
# Web processes' clocks differ a little: a token "from the future" within this is fine.
CLOCK_SKEW = timedelta(seconds=60)
MAX_TOKEN_CHARS = 512
_KEY_LABEL = b"switchboard/webform/render-token/v1"


class Verdict(enum.StrEnum):
    """What the spam checks make of a submission."""

    ACCEPTED = "accepted"  # no sign of a bot (or no token, and none required)
    HONEYPOT = "honeypot"  # the hidden field was filled: answer like success, store nothing
    MISSING_TOKEN = "missing_token"  # the form requires a token and none came
    BAD_TOKEN = "bad_token"  # malformed, or the signature does not match (tampered)
    WRONG_FORM = "wrong_form"  # a valid token, issued for another form
    TOO_FAST = "too_fast"  # sent sooner after rendering than a person could
    EXPIRED = "expired"  # the page was rendered too long ago: reload it

    @property
    def silent(self) -> bool:
        """Refused, but answered like a success so a bot learns nothing."""
        return self is Verdict.HONEYPOT

    @property
    def message(self) -> str:
        """What a person who hit this refusal is told (hosted page, embed script)."""
        return _MESSAGES[self]


_MESSAGES: dict[Verdict, str] = {
    Verdict.ACCEPTED: "",
    Verdict.HONEYPOT: "",
    Verdict.MISSING_TOKEN: "Please send the form from its page.",
    Verdict.BAD_TOKEN: "The form could not be verified. Please reload the page and try again.",
    Verdict.WRONG_FORM: "The form could not be verified. Please reload the page and try again.",
    Verdict.TOO_FAST: "That was very quick. Please wait a few seconds and send again.",
    Verdict.EXPIRED: "This page was open for too long. Please reload it and send again.",
}


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The outcome of checking a token; `nonce` identifies the rendering it came from."""

    verdict: Verdict
    nonce: str | None = None
    issued_at: datetime | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, signed: str) -> str:
    key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
    return _b64(hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest())


def issue_token(secret: bytes, form_key: str, now: datetime) -> str:
    """A fresh render token for `form_key`, issued at `now` (timezone-aware)."""
    key = _b64(form_key.encode("utf-8"))
    nonce = _b64(secrets.token_bytes(12))
    signed = f"{VERSION}.{key}.{int(now.timestamp())}.{nonce}"
    return f"{signed}.{_signature(secret, signed)}"


def check_token(
    secret: bytes,
    form_key: str,
    token: str,
    now: datetime,
    *,
    min_age: timedelta = MIN_AGE,
    max_age: timedelta = MAX_AGE,
) -> TokenCheck:
    """Whether `token` is ours, for this form, and was issued between `max_age` and
    `min_age` before `now`. The signature is checked first, so nothing in a forged token
    is believed."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return TokenCheck(Verdict.BAD_TOKEN)
    pieces = token.split(".")
    if len(pieces) != 5 or pieces[0] != VERSION:
        return TokenCheck(Verdict.BAD_TOKEN)
    signed, signature = token.rsplit(".", 1)
    if not hmac.compare_digest(_signature(secret, signed), signature):
        return TokenCheck(Verdict.BAD_TOKEN)
    _, key_part, issued_part, nonce, _ = pieces
    try:
        issued_key = _unb64(key_part).decode("utf-8")
        issued_at = datetime.fromtimestamp(int(issued_part), tz=now.tzinfo)
    except (ValueError, binascii.Error, OverflowError, OSError):
        return TokenCheck(Verdict.BAD_TOKEN)  # signed by us, so only an old format could
    if issued_key != form_key:
        return TokenCheck(Verdict.WRONG_FORM, nonce, issued_at)
    age = now - issued_at
    if age < -CLOCK_SKEW:
        return TokenCheck(Verdict.BAD_TOKEN, nonce, issued_at)
    if age < min_age:
        return TokenCheck(Verdict.TOO_FAST, nonce, issued_at)
    if age > max_age:
        return TokenCheck(Verdict.EXPIRED, nonce, issued_at)
    return TokenCheck(Verdict.ACCEPTED, nonce, issued_at)


def honeypot_filled(definition: FormDefinition, body: ParsedBody) -> bool:
    """Whether anything was typed into the field no person sees."""
    return any(
        not isinstance(value, str) or value.strip()
        for value in body.get_all(definition.honeypot_field)
    ) or bool(body.files_for(definition.honeypot_field))


def check_spam(
    definition: FormDefinition,
    body: ParsedBody,
    *,
    secret: bytes,
    form_key: str,
    now: datetime,
    min_age: timedelta = MIN_AGE,
    max_age: timedelta = MAX_AGE,
) -> TokenCheck:
    """The honeypot, then the token (when one came, or the form requires one)."""
    if honeypot_filled(definition, body):
        return TokenCheck(Verdict.HONEYPOT)
    token = body.text(TOKEN_FIELD)
    if not token:
        return TokenCheck(Verdict.MISSING_TOKEN if definition.require_token else Verdict.ACCEPTED)
    return check_token(secret, form_key, token.strip(), now, min_age=min_age, max_age=max_age)
