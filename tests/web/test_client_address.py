"""The client's address behind trusted proxies, and a form post counted per real visitor."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.web.conftest import MakeClient
from tests.web.test_public_forms_support import make_channel, make_form
from web.client_address import client_address, parse_networks
from web.settings import Settings

PROXIES = parse_networks("10.0.0.0/8, 2001:db8:ffff::/48, 192.0.2.7")


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # Not from a proxy: the header is the client's own claim and is ignored.
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
        # From a proxy: the hop it appended.
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        # A spoofed entry to the left of the real one changes nothing.
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        # Two proxies, two headers: walked from the right across both.
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1", "10.9.9.9"], "198.51.100.1"),
        ("192.0.2.7", ["[2001:db8::5]:443"], "2001:db8::5"),
        ("10.1.2.3", ["198.51.100.1:5555"], "198.51.100.1"),
        # Every hop a proxy: the leftmost one is as far as can be known.
        ("10.1.2.3", ["10.4.4.4, 10.5.5.5"], "10.4.4.4"),
        # Garbage ends the walk at the last address a trusted proxy vouched for.
        ("10.1.2.3", ["198.51.100.1, not-an-ip"], "10.1.2.3"),
        ("10.1.2.3", ["not-an-ip, 10.5.5.5"], "10.5.5.5"),
        ("10.1.2.3", [], "10.1.2.3"),
        ("::ffff:10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        (None, ["198.51.100.1"], "unknown"),
        ("some-unix-socket", ["198.51.100.1"], "some-unix-socket"),
    ],
)
def test_the_client_is_the_rightmost_untrusted_hop(
    remote: str | None, forwarded: list[str], expected: str
) -> None:
    assert client_address(remote, forwarded, PROXIES) == expected


def test_trusted_proxies_setting_is_checked() -> None:
    settings = Settings(trusted_proxies="10.0.0.0/8, ::1")
    assert [str(n) for n in settings.proxy_networks] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ValidationError, match=r"'10\.0\.0\.300' is not an IP address"):
        Settings(trusted_proxies="10.0.0.300")


_addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


@given(remote=_addresses, hops=st.lists(st.one_of(_addresses, st.text(max_size=20)), max_size=6))
def test_an_untrusted_peer_can_never_be_overruled_by_its_header(
    remote: str, hops: list[str]
) -> None:
    found = client_address(remote, [", ".join(hops)], PROXIES)
    peer = ipaddress.ip_address(remote)
    shown = str(getattr(peer, "ipv4_mapped", None) or peer)
    if not any(peer.version == n.version and peer in n for n in PROXIES):
        assert found == shown
    else:
        # The peer itself or an address some hop named: never anything invented.
        assert found == shown or any(found in hop for hop in hops)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_form_posts_through_a_trusted_proxy_count_per_visitor(
    make_client: MakeClient, settings: Settings
) -> None:
    client = await make_client(settings.model_copy(update={"trusted_proxies": "127.0.0.1"}))
    form = await make_form(client, await make_channel(client, submissions_per_hour_per_ip=1))

    async def post(visitor: str, n: int) -> int:
        response = await client.post(
            f"/forms/{form.key}",
            json={"email": f"v{n}@example.com"},
            headers={"X-Forwarded-For": f"6.6.6.6, {visitor}"},
        )
        return response.status

    # The spoofed leftmost entry is the same for all; the proxy-added one decides.
    assert [await post("198.51.100.1", 1), await post("198.51.100.2", 2)] == [200, 200]
    assert await post("198.51.100.1", 3) == 429
