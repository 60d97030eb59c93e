"""Where outgoing webhooks may be sent: URL rules and the guard against SSRF.

A webhook URL is chosen by an admin but resolved and called by the worker, inside the
installation's network. In production a request to a private, loopback, link-local or
otherwise non-global address could reach internal services (cloud metadata at
169.254.169.254, a database's HTTP port), so it is refused. The check runs on the
addresses the connection actually uses: `PublicResolver` filters what DNS answers, so a
name that resolves to a public address at creation and a private one later (DNS
rebinding) is still refused. Development and tests may post to 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

MAX_URL_LENGTH = 2000
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})


class AddressRefused(OSError):
    """The webhook's host is (or resolves only to) an address it must not be sent to."""


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable unicast (not private, loopback, ...)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone index
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return ip.is_global and not ip.is_multicast


def url_problem(url: str, *, production: bool) -> str | None:
    """Why `url` cannot be a webhook URL, or None. Production needs https and refuses
    hosts that are plainly local (a literal private address, localhost); names are
    checked again at each delivery, on what they resolve to."""
    if len(url) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http(s) URL"
    host = parts.hostname
    if not host:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs; receivers verify the signature instead.
        return "must not contain a user name or password"
    if port == 0:
        return "port 0 is not a port"
    if production:
        if parts.scheme != "https":
            return "must use https (http is allowed only with SWITCHBOARD_ENV=development)"
        if host.lower().rstrip(".") in _LOCAL_NAMES or _literal_private(host):
            return "must not point at a private, loopback or link-local address"
    return None


def _literal_private(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return not is_public(host)


def check_literal_host(host: str) -> None:
    """AddressRefused for a literal non-public IP (aiohttp connects to those without
    asking the resolver)."""
    if _literal_private(host):
        raise AddressRefused(f"{host} is not a public address")


class PublicResolver(AbstractResolver):
    """A resolver that answers only public addresses; AddressRefused when none is."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        public = [answer for answer in answers if is_public(answer["host"])]
        if not public:
            raise AddressRefused(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()
