"""Card swaps between marketplaces: exchange rates as data (:mod:`ledger.swaps.rates`) and
the swap itself (:mod:`ledger.swaps.services`), one ledger transaction each."""

from ledger.swaps.rates import Rate, convert, list_rates, rate_on, set_rate
from ledger.swaps.services import SwapResult, get_swap, swap_card, swap_code

__all__ = [
    "Rate",
    "SwapResult",
    "convert",
    "get_swap",
    "list_rates",
    "rate_on",
    "set_rate",
    "swap_card",
    "swap_code",
]
