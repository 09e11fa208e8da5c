"""Marketplaces: each fixes the currency of every card and account in it.

One table of data. ``minor_units`` is the ISO 4217 exponent: amounts are integer
counts of minor units (cents for USD, yen for JPY).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import UnknownMarketplace


@dataclass(frozen=True, slots=True)
class Marketplace:
    code: str
    currency: str
    minor_units: int
    locale: str
    name: str

    @property
    def country(self) -> str:
        """Its country (ISO 3166-1 alpha-2), the territory of its locale: UK is GB."""
        return self.locale.partition("_")[2]


MARKETPLACES: dict[str, Marketplace] = {
    m.code: m
    for m in (
        Marketplace("US", "USD", 2, "en_US", "United States"),
        Marketplace("CA", "CAD", 2, "en_CA", "Canada"),
        Marketplace("UK", "GBP", 2, "en_GB", "United Kingdom"),
        Marketplace("DE", "EUR", 2, "de_DE", "Deutschland"),
        Marketplace("FR", "EUR", 2, "fr_FR", "France"),
        Marketplace("JP", "JPY", 0, "ja_JP", "日本"),
    )
}


def get_marketplace(code: str) -> Marketplace:
    try:
        return MARKETPLACES[code.upper()]
    except (KeyError, AttributeError):
        known = ", ".join(MARKETPLACES)
        raise UnknownMarketplace(f"unknown marketplace {code!r} (known: {known})") from None


def plain_amount(amount: int, marketplace: str) -> str:
    """``amount`` minor units written plainly with the currency code: ``2,500.00 USD``,
    ``5,000 JPY`` (ops' tables and error messages; readers' emails use their locale)."""
    market = get_marketplace(marketplace)
    if market.minor_units == 0:
        return f"{amount:,} {market.currency}"
    whole, part = divmod(abs(amount), 10**market.minor_units)
    sign = "-" if amount < 0 else ""
    return f"{sign}{whole:,}.{part:0{market.minor_units}d} {market.currency}"
