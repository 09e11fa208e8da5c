"""Postal addresses per country: what must be there, what a postal code looks like, and
where each marketplace ships physical cards.

Intake (:mod:`delivery.orders.schemas`) calls :func:`check_postal_code`,
:func:`check_region` and :func:`ships_to`, so a card that could not be posted is refused when
the order is placed, with the field named, never at the vendor.

======== =============================== =========================================
country  postal code (canonical form)    also required
======== =============================== =========================================
US       ``12345`` or ``12345-6789``     region: a USPS state or territory code
CA       ``A1A 1A1``                     region: a province or territory code
GB       ``SW1A 1AA`` (every UK format)
DE       ``12345``
FR       ``75001``
JP       ``123-4567``
======== =============================== =========================================

Every address needs ``line1`` and ``city``. Postal codes are read without regard to case
and spacing (``sw1a1aa``, ``k1a0b1``, ``1500002``) and stored in the canonical form. A
country outside the table (shipped to only when settings allow it) keeps the generic
shape check of the schema.

Each marketplace ships to its own country (UK: GB); ``GIFTQ_FULFILMENT_SHIP_TO`` widens it
per marketplace, e.g. ``{"US": ["US", "CA"]}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from giftq.settings import get_settings

HOME_COUNTRY: dict[str, str] = {"US": "US", "CA": "CA", "UK": "GB", "DE": "DE", "FR": "FR", "JP": "JP"}
"""Each marketplace's own country (ISO 3166-1 alpha-2)."""

US_REGIONS = frozenset(
    """AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM
    NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI UM AA AE AP""".split()  # noqa: SIM905
)
"""The 50 states, DC, the territories and the armed forces' codes that USPS delivers to."""

CA_REGIONS = frozenset("AB BC MB NB NL NS NT NU ON PE QC SK YT".split())  # noqa: SIM905

# The UK's formats (A9 9AA, A99 9AA, AA9 9AA, AA99 9AA, A9A 9AA, AA9A 9AA) and GIR 0AA.
_GB = (
    r"(GIR 0AA"
    r"|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY])"
    r" [0-9][ABD-HJLNP-UW-Z]{2})"
)


@dataclass(frozen=True, slots=True)
class CountryRule:
    pattern: re.Pattern[str]
    example: str
    regions: frozenset[str] | None = None
    """When set, ``region`` is required and must be one of these codes."""
    region_name: str = "region"


RULES: dict[str, CountryRule] = {
    "US": CountryRule(re.compile(r"^[0-9]{5}(-[0-9]{4})?$"), "12345 or 12345-6789", US_REGIONS, "state"),
    "CA": CountryRule(
        re.compile(r"^[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z] [0-9][ABCEGHJ-NPRSTV-Z][0-9]$"),
        "A1A 1A1",
        CA_REGIONS,
        "province",
    ),
    "GB": CountryRule(re.compile(f"^{_GB}$"), "SW1A 1AA"),
    "DE": CountryRule(re.compile(r"^[0-9]{5}$"), "10115"),
    "FR": CountryRule(re.compile(r"^[0-9]{5}$"), "75001"),
    "JP": CountryRule(re.compile(r"^[0-9]{3}-[0-9]{4}$"), "123-4567"),
}


def check_postal_code(country: str, value: str) -> str:
    """The postal code in its canonical form; ValueError says what shape ``country`` wants.

    Read as people type it: any case, spaces or dashes anywhere (``sw1a1aa``, ``k1a0b1``,
    ``1500002``, ``123456789``).
    """
    rule = RULES.get(country)
    if rule is None:
        return value
    compact = re.sub(r"[\s-]+", "", value).upper()
    if country in ("CA", "GB") and len(compact) > 3:
        canonical = f"{compact[:-3]} {compact[-3:]}"
    elif country == "JP" and len(compact) == 7:
        canonical = f"{compact[:3]}-{compact[3:]}"
    elif country == "US" and len(compact) == 9:
        canonical = f"{compact[:5]}-{compact[5:]}"
    else:
        canonical = compact
    if not rule.pattern.match(canonical):
        raise ValueError(f"is not a postal code of {country} (like {rule.example})")
    return canonical


def check_region(country: str, value: str | None) -> str | None:
    """The region (upper-cased where it is a code); ValueError when ``country`` needs another."""
    rule = RULES.get(country)
    if rule is None or rule.regions is None:
        return value
    if not value:
        raise ValueError(f"required in {country}: the {rule.region_name} code")
    if value.upper() not in rule.regions:
        raise ValueError(f"is not a {rule.region_name} code of {country}")
    return value.upper()


def ships_to(marketplace: str) -> tuple[str, ...]:
    """The countries a marketplace ships physical cards to."""
    configured = get_settings().fulfilment_ship_to.get(marketplace)
    if configured:
        return tuple(configured)
    home = HOME_COUNTRY.get(marketplace)
    return (home,) if home else ()
