"""Money: decimal amounts in an ISO 4217 currency, kept as integer minor units.

Amounts travel as decimal strings ("1234.50"), never as JSON numbers: a binary float
cannot hold 0.10 exactly. They are stored as integers in the currency's minor unit
(cents, fils, yen) in a BIGINT column, exact on both databases. No currency library is
installed here, so the exponents of the active ISO 4217 codes are listed below (the
standard's list one, amendments up to 2024; precious metals, SDR and test codes have no
minor unit and are not money a customer pays in).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# ISO 4217 codes whose minor unit is not the usual 2 digits.
_EXPONENT_NOT_2: dict[str, int] = {
    # 0: no minor unit in use
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    # 3: thousandths (dinars, rials)
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    # 4: accounting units
    "CLF": 4,
    "UYW": 4,
}

# Rows of codes are easier to check against the standard than one string per line.
_EXPONENT_2 = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP
BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR
FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW
KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN
NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD
SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU
UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL
""".split()  # noqa: SIM905

EXPONENTS: dict[str, int] = {**dict.fromkeys(_EXPONENT_2, 2), **_EXPONENT_NOT_2}
"""Every accepted currency code and its number of minor-unit digits."""

# The BIGINT column's range.
MAX_MINOR = 2**63 - 1
# Longer strings cannot fit the column anyway; refusing them early keeps Decimal's work
# on hostile input bounded.
MAX_AMOUNT_LENGTH = 40
_AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class MoneyError(ValueError):
    """An amount or a currency that cannot be money here; the message says why."""


def check_currency(code: object) -> str:
    """The ISO 4217 code, upper-cased, or MoneyError for anything not in the list."""
    if not isinstance(code, str):
        raise MoneyError("must be an ISO 4217 currency code such as EUR")
    normalized = code.strip().upper()
    if normalized not in EXPONENTS:
        raise MoneyError(f"{code[:10]!r} is not an ISO 4217 currency code (e.g. EUR, USD, JPY)")
    return normalized


def exponent(currency: str) -> int:
    """How many digits the currency's minor unit has (2 for EUR, 0 for JPY, 3 for KWD)."""
    return EXPONENTS[check_currency(currency)]


def to_minor(amount: object, currency: str) -> int:
    """A decimal string in `currency` as an integer count of its minor unit.

    Refuses numbers (send a string), exponents, NaN and infinities, more decimals than
    the currency has, and amounts outside the BIGINT range.
    """
    places = exponent(currency)
    if not isinstance(amount, str):
        raise MoneyError('must be a decimal string such as "12.50", not a number')
    if len(amount) > MAX_AMOUNT_LENGTH or not _AMOUNT.fullmatch(amount):
        raise MoneyError('must be a decimal string such as "12.50" (digits, one optional dot)')
    whole, _, decimals = amount.partition(".")
    if decimals[places:].strip("0"):
        # Trailing zeros say nothing more precise, so "12.500" is fine for EUR.
        raise MoneyError(f"{currency} has {places} decimal places; {amount!r} has more")
    # Plain integer arithmetic on the digits: exact however long (no Decimal context).
    minor = int(whole + decimals[:places].ljust(places, "0"))
    if not -MAX_MINOR <= minor <= MAX_MINOR:
        raise MoneyError("amount is too large")
    return minor


def from_minor(minor: int, currency: str) -> str:
    """The decimal string of `minor` units of `currency`, with all its decimal places."""
    places = exponent(currency)
    value = Decimal(minor).scaleb(-places)
    return f"{value:.{places}f}"


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount of a currency."""

    minor: int
    currency: str

    @classmethod
    def parse(cls, amount: object, currency: object) -> Money:
        """Money from a decimal string and a currency code (MoneyError if either is bad)."""
        code = check_currency(currency)
        return cls(to_minor(amount, code), code)

    @property
    def amount(self) -> str:
        """The amount as a decimal string, e.g. "12.50"."""
        return from_minor(self.minor, self.currency)

    def as_json(self) -> dict[str, str]:
        """{"amount": "12.50", "currency": "EUR"}, as the API shows money."""
        return {"amount": self.amount, "currency": self.currency}
