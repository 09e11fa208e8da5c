"""Sales limits per marketplace, as data: what one card, one order and one purchaser may reach.

Amounts are minor units of the marketplace's currency (cents; yen have none). A limit of
None is no limit. The shipped table follows how large sellers cap gift cards (a US card
between 1 and 2,000 USD); an order's total and a purchaser's cards per day are capped
high enough for a business's bulk order of :data:`~delivery.orders.schemas.MAX_LINES`
cards and are meant to be lowered for a consumer store. ``GIFTQ_MARKETPLACE_LIMITS``
replaces single values: ``{"US": {"max_card": 50000, "max_cards_per_day": 20}}``.

Intake applies them (:mod:`delivery.orders.limits`); the ledger itself does not, so that
ops can still issue a replacement card of any value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from giftq.settings import SettingsError, get_settings, variable
from ledger.marketplaces import MARKETPLACES


@dataclass(frozen=True, slots=True)
class Limits:
    marketplace: str
    min_card: int | None
    """The smallest card, in minor units."""
    max_card: int | None
    """The largest card, in minor units."""
    max_order_total: int | None
    """The most one order may hold in this marketplace's cards, in minor units."""
    max_cards_per_day: int | None
    """The most cards of this marketplace one purchaser (by email address) may order in
    24 hours, counting the order being placed and every earlier one not cancelled or failed."""


LIMIT_NAMES: tuple[str, ...] = ("min_card", "max_card", "max_order_total", "max_cards_per_day")

LIMITS: dict[str, Limits] = {
    limits.marketplace: limits
    for limits in (
        Limits("US", 1_00, 2_000_00, 250_000_00, 10_000),
        Limits("CA", 1_00, 2_000_00, 250_000_00, 10_000),
        Limits("UK", 1_00, 2_000_00, 200_000_00, 10_000),
        Limits("DE", 1_00, 500_00, 200_000_00, 10_000),
        Limits("FR", 1_00, 500_00, 200_000_00, 10_000),
        Limits("JP", 100, 300_000, 30_000_000, 10_000),
    )
}
"""The shipped limits, one row per marketplace of :data:`ledger.marketplaces.MARKETPLACES`."""


def limits_for(marketplace: str) -> Limits:
    """The limits of ``marketplace``: the shipped row with the configured values over it."""
    overrides = get_settings().marketplace_limits
    _check(overrides)
    changes: dict[str, Any] = dict(overrides.get(marketplace, {}))  # names checked above
    return dataclasses.replace(LIMITS[marketplace], **changes)


def _check(overrides: dict[str, dict[str, int | None]]) -> None:
    name = variable("marketplace_limits")
    for marketplace, values in overrides.items():
        if marketplace not in MARKETPLACES:
            raise SettingsError(
                f"{name}: unknown marketplace {marketplace!r} (known: {', '.join(MARKETPLACES)})"
            )
        for limit, value in values.items():
            if limit not in LIMIT_NAMES:
                raise SettingsError(
                    f"{name}: {marketplace}: unknown limit {limit!r} (known: {', '.join(LIMIT_NAMES)})"
                )
            if value is not None and value <= 0:
                raise SettingsError(f"{name}: {marketplace}.{limit} must be positive or null")
