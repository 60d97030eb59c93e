"""Signatures of outgoing webhooks (pure: no I/O).

Every POST carries `Switchboard-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256 keyed with the subscription's secret over `"<t>.<raw body>"`. Binding the
time into the signed text lets a receiver refuse replays older than a few minutes.
During a secret rotation with a grace period the header carries one `v1=` per valid
secret (the new one first); a receiver accepts the request if any of them matches.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

SIGNATURE_HEADER = "Switchboard-Signature"
SCHEME = "v1"
SECRET_PREFIX = "whsec_"
# How old a signed timestamp a receiver should accept (the documented recipe uses it).
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A fresh signing secret: 256 random bits, URL-safe, recognizable by its prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets_: Iterable[str], timestamp: int, body: bytes) -> str:
    """The `Switchboard-Signature` value: `t=<timestamp>,v1=<hex>[,v1=<hex>...]`."""
    parts = [f"t={timestamp}"]
    parts += [f"{SCHEME}={signature(secret, timestamp, body)}" for secret in secrets_]
    return ",".join(parts)


def verify(
    header: str,
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when `header` signs `body` with `secret` at a time within `tolerance` of `now`.

    What a receiver does (the documented recipe is this function's logic); also used by
    tests. A malformed header is simply not a valid signature.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
