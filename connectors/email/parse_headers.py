"""Header fields of a parsed message as values: mailboxes, message ids, the date.

The values come as the stdlib's compat32 parser leaves them (raw, folded, 8-bit bytes
as surrogate escapes); each helper decodes only what it needs, tolerantly, and gives
None or an empty tuple for what is unusable rather than raising.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from connectors.email.mime_text import header_text, unmangle
from connectors.email.parse_limits import MAX_ID_LENGTH, MAX_REFERENCES

_MSG_ID = re.compile(r"<([^<>\s]+)>")
_ADDR_SPEC = re.compile(r"[^\s@<>(),;:\"\[\]]+@[^\s@<>(),;:\"\[\]]+")
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_SIMPLE_MAILBOX = re.compile(
    r'\s*(?:"([^"\\<>,@=]*)"|([^"\\<>,@()]*?))\s*<([^\s@<>(),;:"\[\]]+@[^\s@<>(),;:"\[\]]+)>\s*'
)
_SIMPLE_ADDR_SPEC = re.compile(r"\s*([^\s@<>(),;:\"\[\]]+@[^\s@<>(),;:\"\[\]]+)\s*")


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox of an address header."""

    # addr-spec as written ("" when unusable); the real address is the one in angle
    # brackets even when the display name is itself an address.
    address: str
    name: str | None  # decoded display name


def header_map(msg: Message) -> dict[str, list[str]]:
    """The message's own header fields: lower-cased name to raw values, in order."""
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), []).append(str(value))
    return headers


def first(headers: dict[str, list[str]], name: str) -> str | None:
    """The first non-empty value of a header (duplicated headers are common)."""
    for value in headers.get(name, ()):
        if value.strip():
            return value
    return None


def normalize_id(value: str | None) -> str | None:
    """A Message-ID-like value as "<id>", or None when there is no usable id."""
    if value is None:
        return None
    value = unmangle(value)
    found = _MSG_ID.search(value)
    if found:
        ident = found.group(1)
    else:
        ident = value.strip()
        if not ident or any(c.isspace() for c in ident) or "<" in ident or ">" in ident:
            return None
    if len(ident) > MAX_ID_LENGTH or not ident.isprintable():
        return None
    return f"<{ident}>"


def references(values: list[str]) -> tuple[str, ...]:
    """The ids of References headers: with <>, deduplicated, order kept, capped."""
    ids: dict[str, None] = {}
    for value in values:
        for found in _MSG_ID.finditer(unmangle(str(value))):
            if len(found.group(1)) <= MAX_ID_LENGTH and found.group(1).isprintable():
                ids[f"<{found.group(1)}>"] = None
    unique = list(ids)
    if len(unique) > MAX_REFERENCES:
        # The first id is the thread's root, the last ones its latest messages.
        unique = unique[:1] + unique[-(MAX_REFERENCES - 1) :]
    return tuple(unique)


def addresses(values: list[str]) -> tuple[Address, ...]:
    """The mailboxes of address header values (To, Cc, ...); unusable ones dropped."""
    if not values:
        return ()
    text = ",".join(unmangle(str(v)) for v in values)
    if not text.strip():
        return ()
    # Most headers hold one plain mailbox: no need for the full address parser.
    simple = _SIMPLE_MAILBOX.fullmatch(text)
    if simple:
        name = (simple.group(1) or simple.group(2) or "").strip()
        if "=?" in name:
            name = header_text(name) or ""
        return (Address(simple.group(3), _NAME_CONTROL.sub(" ", name).strip() or None),)
    simple = _SIMPLE_ADDR_SPEC.fullmatch(text)
    if simple:
        return (Address(simple.group(1), None),)
    out: list[Address] = []
    for name, address in getaddresses([text.replace("\r", " ").replace("\n", " ")]):
        decoded = header_text(name) if name else None
        decoded = _NAME_CONTROL.sub(" ", decoded).strip() or None if decoded else None
        address = address.strip()
        if not _ADDR_SPEC.fullmatch(address):
            # Two addr-specs with only a space between them: the first one is the sender.
            candidates = [w for w in address.split() if _ADDR_SPEC.fullmatch(w)]
            address = candidates[0] if candidates else ""
        if address or decoded:
            out.append(Address(address, decoded))
    return tuple(out)


def first_sender(values: list[str]) -> Address | None:
    """The first From mailbox with a usable address, else the first with a name."""
    candidates = addresses(values)
    for candidate in candidates:
        if candidate.address:
            return candidate
    for value in values:
        # Addr-specs the address parser could not split ("a@x.com b@x.com"); never when
        # there are angle brackets, whose content alone is the address.
        text = unmangle(value)
        if "<" not in text:
            found = _ADDR_SPEC.search(text)
            if found:
                return Address(found.group(), None)
    return candidates[0] if candidates else None


def date(value: str | None) -> datetime | None:
    """A Date header as an aware UTC datetime; None when missing or unparseable."""
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(unmangle(value).strip())
        if parsed.tzinfo is None:  # "-0000": the zone is unknown, the time is UTC
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
