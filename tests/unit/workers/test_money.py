"""Minor units shown as people read them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from jobs_core.workers.money import format_money, minor_unit_exponent, to_major


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (10000, "USD", "$100.00"),
        (10000, "usd", "$100.00"),
        (1, "USD", "$0.01"),
        (123456789, "USD", "$1,234,567.89"),
        (500, "JPY", "¥500"),
        (1234567, "JPY", "¥1,234,567"),
        (50000, "KRW", "₩50,000"),
        (1500, "KWD", "KWD 1.500"),
        (1, "BHD", "BHD 0.001"),
        (999, "EUR", "€9.99"),
        (2050, "GBP", "£20.50"),
        (12345, "CHF", "CHF 123.45"),
        (700, "CLP", "CLP 700"),
        (100, "SEK", "SEK 1.00"),
        (-5, "EUR", "-€0.05"),
    ],
)
def test_format_money(amount: int, currency: str, shown: str) -> None:
    assert format_money(amount, currency) == shown


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [
        ("USD", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("VND", 0),
        ("KWD", 3),
        ("TND", 3),
        ("CLF", 4),
        ("XYZ", 2),
    ],
)
def test_minor_unit_exponent(currency: str, exponent: int) -> None:
    assert minor_unit_exponent(currency) == exponent


def test_to_major_is_exact() -> None:
    assert to_major(10000, "USD") == Decimal("100.00")
    assert to_major(500, "JPY") == Decimal(500)
    assert to_major(1500, "KWD") == Decimal("1.500")
    assert str(to_major(10**12 - 1, "USD")) == "9999999999.99"  # no float rounding
