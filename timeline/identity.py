"""Normalization of sender identities, so one person is one contact whatever the spelling."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import timezone

from connectors.types import IdentityKind

_TELEGRAM_ID = re.compile(r"^-?[0-9]{1,20}$")
MAX_IDENTITY_LENGTH = 320


class IdentityError(ValueError):
    """The value cannot identify anyone (empty, malformed, impossible number)."""


def normalize_identity(kind: IdentityKind | str, value: str, *, region: str | None = None) -> str:
    """The canonical form of an identity value.

    Emails are lower-cased with an IDNA (punycode) domain; phones become E.164, parsed
    with `region` when they lack a country code; Telegram ids are decimal user ids.
    """
    try:
        kind = IdentityKind(kind)
    except ValueError as err:
        raise IdentityError(f"unknown identity kind {kind!r}") from err
    value = value.strip()
    if not value:
        raise IdentityError(f"empty {kind.value} identity")
    if kind is IdentityKind.EMAIL:
        result = normalize_email(value)
    elif kind is IdentityKind.PHONE:
        result = normalize_phone(value, region)
    elif kind is IdentityKind.TELEGRAM:
        if not _TELEGRAM_ID.match(value):
            raise IdentityError(f"Telegram user id must be numeric, got {value!r}")
        result = str(int(value))
    else:
        result = value
    if len(result) > MAX_IDENTITY_LENGTH:
        raise IdentityError(f"{kind.value} identity longer than {MAX_IDENTITY_LENGTH} characters")
    return result


def normalize_email(value: str) -> str:
    """`Foo@Example.COM` → `foo@example.com`; `ann@bücher.de` → `ann@xn--bcher-kva.de`."""
    address = value.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address):
        raise IdentityError(f"not an email address: {value!r}")
    domain = domain.rstrip(".").lower()
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as err:
        raise IdentityError(f"invalid email domain in {value!r}") from err
    if not ascii_domain or ascii_domain.startswith(".") or ".." in ascii_domain:
        raise IdentityError(f"invalid email domain in {value!r}")
    # Local parts are case-sensitive in RFC 5321, but no real provider treats them so;
    # folding them is what makes "Ann@x" and "ann@x" one customer.
    return f"{local.lower()}@{ascii_domain}"


def normalize_phone(value: str, region: str | None) -> str:
    """`+1 (415) 555-0100`, or `4155550100` with region US → `+14155550100`."""
    text = value.strip()
    # Numbers written with an international prefix but without "+" ("14155550100")
    # are common in provider payloads; phonenumbers needs a region to read them.
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as err:
        raise IdentityError(f"not a phone number: {value!r} ({err})") from err
    if not phonenumbers.is_possible_number(number):
        # "14155550100" with region US parses as a national number with a stray 1;
        # retry as if a "+" had been dropped.
        if not text.startswith("+"):
            try:
                retry = phonenumbers.parse("+" + text, None)
            except phonenumbers.NumberParseException:
                retry = None
            if retry is not None and phonenumbers.is_possible_number(retry):
                number = retry
            else:
                raise IdentityError(f"not a possible phone number: {value!r}")
        else:
            raise IdentityError(f"not a possible phone number: {value!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_timezone(value: str) -> str | None:
    """The timezone a normalized (E.164) number is in, when its country or area has just
    one (+1 415 → America/Los_Angeles; Russia's +7 9xx spans eleven: None)."""
    try:
        zones = timezone.time_zones_for_number(phonenumbers.parse(value))
    except phonenumbers.NumberParseException:
        return None
    if len(zones) != 1 or zones[0] == timezone.UNKNOWN_TIMEZONE:
        return None
    return str(zones[0])
