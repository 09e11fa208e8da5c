"""The giftq ledger: claim codes and a double-entry ledger of gift-card money.

Imports no Celery and nothing from ``delivery``: a storefront process can use it
on its own. Every function takes the caller's SQLAlchemy session; every write
takes an idempotency key.
"""

from ledger.accounts import Balance, HistoryItem, HistoryPage, balance, history
from ledger.card_check import CardCheck, check_card
from ledger.cards import (
    CardSpec,
    CardView,
    IssuedCard,
    activate_card,
    find_card,
    get_card,
    get_cards,
    issue_cards,
    reveal_code,
    reveal_codes,
    void_card,
)
from ledger.checkout import CheckoutState, apply_balance, capture, refund, release
from ledger.codes import ClaimCode
from ledger.expiry import expire_card, expire_due, expiring, reinstate_card
from ledger.expiry_policy import POLICIES, ExpiryRule, last_valid_day, rule_for
from ledger.marketplaces import MARKETPLACES, Marketplace, get_marketplace
from ledger.reconcile import CurrencyTotals, ReconciliationReport, reconcile
from ledger.redemption import RedemptionResult, redeem, redeem_code
from ledger.swaps import SwapResult, swap_card, swap_code

__all__ = [
    "MARKETPLACES",
    "POLICIES",
    "Balance",
    "CardCheck",
    "CardSpec",
    "CardView",
    "CheckoutState",
    "ClaimCode",
    "CurrencyTotals",
    "ExpiryRule",
    "HistoryItem",
    "HistoryPage",
    "IssuedCard",
    "Marketplace",
    "ReconciliationReport",
    "RedemptionResult",
    "SwapResult",
    "activate_card",
    "apply_balance",
    "balance",
    "capture",
    "check_card",
    "expire_card",
    "expire_due",
    "expiring",
    "find_card",
    "get_card",
    "get_cards",
    "get_marketplace",
    "history",
    "issue_cards",
    "last_valid_day",
    "reconcile",
    "redeem",
    "redeem_code",
    "refund",
    "reinstate_card",
    "release",
    "reveal_code",
    "reveal_codes",
    "rule_for",
    "swap_card",
    "swap_code",
    "void_card",
]
