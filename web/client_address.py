"""The address a request really came from, behind reverse proxies the installation trusts.

X-Forwarded-For is read only when the connection comes from a trusted proxy, and then
from the right: each trusted proxy appends the address it saw, so the rightmost entry
that is not a trusted proxy is the client. Entries further left were written by the
client itself and prove nothing (a visitor could otherwise claim any address and dodge a
per-address rate limit).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Longest X-Forwarded-For read: a client can send any amount.
MAX_FORWARDED_CHARS = 2048


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """Comma-separated addresses or CIDR networks; raises ValueError naming a bad one."""
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as err:
            raise ValueError(f"{item!r} is not an IP address or network (CIDR)") from err
    return tuple(networks)


def _address(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [IPv6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # IPv4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(
    remote: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]
) -> str:
    """The client's address: `remote` (the connection's peer) unless that is a trusted
    proxy, then the rightmost X-Forwarded-For hop that is not. A malformed hop ends the
    walk at the last good one: whatever wrote it is not a proxy we trust."""
    peer = _address(remote) if remote else None
    if peer is None:
        return remote or "unknown"
    if not trusted or not _trusted(peer, trusted):
        return str(peer)
    joined = ",".join(forwarded_for)[-MAX_FORWARDED_CHARS:]
    current = peer
    for hop in reversed(joined.split(",")):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not _trusted(address, trusted):
            break
    return str(current)
