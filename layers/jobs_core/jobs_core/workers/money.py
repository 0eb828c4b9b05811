"""Amounts in minor units shown as people read them: ``10000 USD`` is ``$100.00``.

The number of decimals is the currency's ISO 4217 minor unit: 2 for most
currencies, 0 for the zero-decimal ones (``500 JPY`` is ``¥500``, not ``¥5.00``),
3 for the Gulf dinars (``1500 KWD`` is ``KWD 1.500``). A currency that is not
listed has 2 decimals, which is right for every other active ISO code.

Formatting is English-style (comma thousands, dot decimals); localised formats
would need CLDR data (Babel), which the layer does not carry.

Example::

    >>> format_money(10000, "usd")
    '$100.00'
    >>> format_money(500, "JPY")
    '¥500'
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["format_money", "minor_unit_exponent", "to_major"]

# ISO 4217 currencies without minor units (Stripe's zero-decimal list plus ISK and UYI).
ZERO_DECIMAL = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "MGA", "PYG",
        "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
    }
)  # fmt: skip
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
FOUR_DECIMAL = frozenset({"CLF", "UYW"})

# Symbols only where one is unambiguous to a reader of an English email; "$" means USD.
SYMBOLS: dict[str, str] = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "KRW": "₩",
    "INR": "₹",
    "ILS": "₪",
    "NGN": "₦",
    "PHP": "₱",
    "VND": "₫",
    "THB": "฿",
    "UAH": "₴",
    "CAD": "CA$",
    "AUD": "A$",
    "NZD": "NZ$",
    "HKD": "HK$",
    "SGD": "S$",
    "MXN": "MX$",
    "BRL": "R$",
    "CNY": "CN¥",
    "CHF": "CHF ",
}


def minor_unit_exponent(currency: str) -> int:
    """Decimals of ``currency`` (ISO 4217 code, any case): 0, 2, 3 or 4."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    if code in FOUR_DECIMAL:
        return 4
    return 2


def to_major(amount_minor: int, currency: str) -> Decimal:
    """``10000, "USD"`` -> ``Decimal("100.00")``; exact, never a float."""
    exponent = minor_unit_exponent(currency)
    return Decimal(amount_minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def format_money(amount_minor: int, currency: str) -> str:
    """The amount for a human: ``$1,234.56``, ``¥500``, ``KWD 1.500``, ``-€0.05``."""
    code = currency.upper()
    exponent = minor_unit_exponent(code)
    major = to_major(abs(amount_minor), code)
    number = f"{major:,.{exponent}f}"
    sign = "-" if amount_minor < 0 else ""
    symbol = SYMBOLS.get(code)
    if symbol is None:
        return f"{sign}{code} {number}"
    return f"{sign}{symbol}{number}"
