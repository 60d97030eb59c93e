"""Money: decimal strings in ISO 4217 currencies to minor units and back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbox.money import (
    EXPONENTS,
    MAX_MINOR,
    Money,
    MoneyError,
    check_currency,
    exponent,
    from_minor,
    to_minor,
)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1234.50", "EUR", 123450),
        ("1234.5", "EUR", 123450),
        ("0.01", "USD", 1),
        ("12", "EUR", 1200),
        ("12.500", "EUR", 1250),  # trailing zeros add no precision
        ("-3.25", "GBP", -325),
        ("1500", "JPY", 1500),
        ("1500.00", "JPY", 1500),
        ("0.005", "KWD", 5),
        ("1.234", "BHD", 1234),
        ("990", "KRW", 990),
        ("1.2345", "CLF", 12345),
    ],
)
def test_to_minor(amount: str, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize(
    ("minor", "currency", "amount"),
    [(123450, "EUR", "1234.50"), (1, "USD", "0.01"), (-5, "KWD", "-0.005"), (7, "JPY", "7")],
)
def test_from_minor(minor: int, currency: str, amount: str) -> None:
    assert from_minor(minor, currency) == amount


@pytest.mark.parametrize(
    ("amount", "currency", "says"),
    [
        ("12.345", "EUR", "2 decimal places"),
        ("1.5", "JPY", "0 decimal places"),
        ("0.0001", "KWD", "3 decimal places"),
        ("NaN", "EUR", "decimal string"),
        ("Infinity", "EUR", "decimal string"),
        ("-inf", "EUR", "decimal string"),
        ("1e5", "EUR", "decimal string"),
        ("1,50", "EUR", "decimal string"),
        (" 1.50", "EUR", "decimal string"),
        ("+1.50", "EUR", "decimal string"),
        (".5", "EUR", "decimal string"),
        ("5.", "EUR", "decimal string"),
        ("", "EUR", "decimal string"),
        (
            "\u0661\u0662",
            "EUR",
            "decimal string",
        ),  # Arabic-Indic digits are digits to Python, not to us
        ("1.50\x00", "EUR", "decimal string"),
        ("9" * 41, "EUR", "decimal string"),
        ("92233720368547758.08", "EUR", "too large"),  # one past the BIGINT range
        ("-92233720368547758.08", "EUR", "too large"),
    ],
)
def test_refused_amounts(amount: str, currency: str, says: str) -> None:
    with pytest.raises(MoneyError, match=says):
        to_minor(amount, currency)


def test_largest_amount_fits_bigint() -> None:
    assert to_minor("92233720368547758.07", "EUR") == MAX_MINOR


@pytest.mark.parametrize("amount", [12.5, 12, None, True, ["1"]])
def test_numbers_are_refused(amount: object) -> None:
    # A JSON number is a binary float: 0.1 would already be wrong.
    with pytest.raises(MoneyError, match=r"not a number|decimal string"):
        to_minor(amount, "EUR")


@pytest.mark.parametrize("code", ["eur", " EUR ", "Eur"])
def test_currency_codes_are_normalized(code: str) -> None:
    assert check_currency(code) == "EUR"


@pytest.mark.parametrize("code", ["EURO", "XXX", "XAU", "ABC", "", "€", 978, None])
def test_unknown_currencies_are_refused(code: object) -> None:
    with pytest.raises(MoneyError):
        check_currency(code)


def test_exponent_table() -> None:
    assert exponent("EUR") == 2
    assert {code for code, places in EXPONENTS.items() if places == 0} >= {
        "JPY",
        "KRW",
        "VND",
        "CLP",
        "ISK",
    }
    assert {code for code, places in EXPONENTS.items() if places == 3} == {
        "BHD",
        "KWD",
        "OMR",
        "JOD",
        "TND",
        "LYD",
        "IQD",
    }
    assert all(len(code) == 3 and code.isupper() for code in EXPONENTS)


@given(
    minor=st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR),
    currency=st.sampled_from(sorted(EXPONENTS)),
)
def test_round_trip(minor: int, currency: str) -> None:
    amount = from_minor(minor, currency)
    assert to_minor(amount, currency) == minor
    assert Money.parse(amount, currency.lower()) == Money(minor, currency)


@given(
    value=st.decimals(
        allow_nan=False, allow_infinity=False, places=2, max_value=10**12, min_value=-(10**12)
    ),
)
def test_two_place_decimals_are_exact(value: Decimal) -> None:
    assert to_minor(f"{value:f}", "EUR") == int(value * 100)


@given(text=st.text(max_size=50))
def test_any_text_is_money_or_a_clear_refusal(text: str) -> None:
    try:
        minor = to_minor(text, "EUR")
    except MoneyError as err:
        assert str(err)
    else:
        assert abs(minor) <= MAX_MINOR
        assert to_minor(from_minor(minor, "EUR"), "EUR") == minor


def test_money_as_json() -> None:
    assert Money.parse("12.5", "eur").as_json() == {"amount": "12.50", "currency": "EUR"}
