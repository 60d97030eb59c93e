"""Webhook signatures (checked with the recipe documented for receivers), URL rules and
the SSRF guard's address checks: pure, no database."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import given
from hypothesis import strategies as st

from inbox.routing_actions import ESCALATED
from inbox.routing_engine import RULE_FIRED
from inbox.webhook_address import AddressRefused, PublicResolver, is_public, url_problem
from inbox.webhook_kinds import ALL, EVENT_KINDS, wants
from inbox.webhook_signing import new_secret, signature_header, verify


def receiver_verifies(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's recipe exactly as documented (README, "Outgoing webhooks")."""
    parts = [p.split("=", 1) for p in header.split(",")]
    timestamp = next(v for k, v in parts if k == "t")
    signatures = [v for k, v in parts if k == "v1"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


BODY = b'{"id":"0190","event":"message.received","data":{"text":"h\xc3\xa9llo"}}'


def test_the_documented_recipe_accepts_a_signature_and_refuses_forgeries() -> None:
    secret, other = new_secret(), new_secret()
    assert secret.startswith("whsec_") and secret != other and len(secret) > 40
    now = int(time.time())
    header = signature_header([secret], now, BODY)
    assert header.startswith(f"t={now},v1=")
    assert receiver_verifies(secret, header, BODY)
    assert verify(header, BODY, secret, now=now)
    # A wrong secret, a tampered body, a replayed old timestamp all fail.
    assert not receiver_verifies(other, header, BODY)
    assert not receiver_verifies(secret, header, BODY.replace(b"llo", b"LLO"))
    old = signature_header([secret], now - 301, BODY)
    assert not receiver_verifies(secret, old, BODY)
    assert not verify(old, BODY, secret, now=now)
    # Moving the timestamp of a valid signature breaks it: the time is signed too.
    moved = header.replace(f"t={now}", f"t={now + 1}")
    assert not receiver_verifies(secret, moved, BODY)
    assert not verify(moved, BODY, secret, now=now)


def test_during_a_rotation_either_secret_verifies() -> None:
    new, old, stranger = new_secret(), new_secret(), new_secret()
    now = int(time.time())
    header = signature_header([new, old], now, BODY)
    assert header.count("v1=") == 2
    assert receiver_verifies(new, header, BODY) and receiver_verifies(old, header, BODY)
    assert not receiver_verifies(stranger, header, BODY)


@pytest.mark.parametrize(
    "header", ["", "garbage", "t=abc,v1=00", "v1=00", "t=1", "t=,v1=", "t=-5,v1=aa"]
)
def test_malformed_headers_never_verify(header: str) -> None:
    assert not verify(header, BODY, new_secret(), now=time.time())


@given(body=st.binary(max_size=2000), secret=st.text(min_size=1, max_size=80), flip=st.integers())
def test_any_body_verifies_and_any_changed_byte_fails(body: bytes, secret: str, flip: int) -> None:
    now = 1_700_000_000
    header = signature_header([secret], now, body)
    assert verify(header, body, secret, now=now)
    if body:
        index = flip % len(body)
        changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
        assert not verify(header, changed, secret, now=now)


def test_kinds_and_wildcard() -> None:
    assert {"message.received", "conversation.opened", "contact.created"} <= set(EVENT_KINDS)
    assert {"form.submitted", "task.due", "sla.breached", "conversation.assigned"} <= set(
        EVENT_KINDS
    )
    assert {RULE_FIRED, ESCALATED} <= set(EVENT_KINDS)
    assert wants([ALL], "anything.new")
    assert wants(["message.sent"], "message.sent") and not wants(["message.sent"], "note.added")


@pytest.mark.parametrize(
    ("url", "production", "problem"),
    [
        ("https://hooks.example.com/in?x=1", True, None),
        ("http://hooks.example.com/in", False, None),
        ("http://127.0.0.1:8080/hook", False, None),
        ("http://hooks.example.com/in", True, "must use https"),
        ("https://127.0.0.1/hook", True, "private"),
        ("https://10.1.2.3/hook", True, "private"),
        ("https://[::1]/hook", True, "private"),
        ("https://[::ffff:169.254.169.254]/hook", True, "private"),
        ("https://localhost/hook", True, "private"),
        ("ftp://example.com/x", False, "http(s)"),
        ("javascript:alert(1)", False, "http(s)"),
        ("https:///nohost", False, "host"),
        ("https://user:pw@example.com/", False, "user name"),
        ("https://example.com:99999/", False, "not a valid URL"),
        ("https://example.com/a b", False, "spaces"),
        ("https://example.com/\x00", False, "control"),
        ("https://example.com/" + "a" * 2000, False, "at most"),
    ],
)
def test_url_rules(url: str, production: bool, problem: str | None) -> None:
    found = url_problem(url, production=production)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("not an address", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public


class FixedResolver(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_the_resolver_keeps_only_public_addresses() -> None:
    mixed = PublicResolver(FixedResolver("10.0.0.5", "93.184.216.34"))
    assert [r["host"] for r in await mixed.resolve("hooks.example.com", 443)] == ["93.184.216.34"]
    rebinding = PublicResolver(FixedResolver("127.0.0.1", "169.254.169.254"))
    with pytest.raises(AddressRefused, match="no public address"):
        await rebinding.resolve("evil.example.com", 443)
