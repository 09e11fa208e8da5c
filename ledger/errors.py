"""Everything the ledger raises derives from :class:`LedgerError`.

    LedgerError
    ├── InvalidRequest            a malformed argument (amount, key, marketplace, ...)
    │   └── UnknownMarketplace
    ├── IdempotencyConflict       a key reused for a different request
    ├── NotFound                  no such card / account / hold
    ├── InsufficientFunds         a debit would take a bounded balance below zero
    ├── InvalidState              the operation does not apply in the object's state
    │   ├── NoExchangeRate        no rate between two currencies applies on that date
    │   └── RateConflict          a pair's rate for a date was loaded before, different
    └── RedemptionRefused         what a customer typing a code can be told
        ├── CodeMistyped          not a well-formed code (typo, length, characters): no lookup
        ├── CodeNotValid          well-formed, but no card has this code (counts toward lockout)
        ├── AlreadyRedeemed       .to_this_account tells the two cases apart
        ├── WrongMarketplace
        ├── CardNotActive         physical card not shipped yet
        ├── CardVoided
        ├── CardExpired           .expired_on: the day it stopped being valid
        └── TooManyAttempts       lockout after repeated failures (per account / per client)

Messages never contain a claim code, only ids and the last four characters.
"""

from __future__ import annotations

import datetime as dt


class LedgerError(Exception):
    """Base class of every ledger error."""


class InvalidRequest(LedgerError, ValueError):
    """An argument is malformed: the message names it."""


class UnknownMarketplace(InvalidRequest):
    """The marketplace code is not one the ledger knows."""


class IdempotencyConflict(LedgerError):
    """The idempotency key was used before for a different request."""


class NotFound(LedgerError, LookupError):
    """The card, account or hold does not exist."""


class InsufficientFunds(LedgerError):
    """The debit would take a card, wallet or hold balance below zero."""


class InvalidState(LedgerError):
    """The operation does not apply to the object in its current state."""


class NoExchangeRate(InvalidState):
    """No exchange rate between the two currencies applies on the date asked for."""


class RateConflict(InvalidState):
    """A rate for this pair and date was loaded before, with another value (rates that
    swaps may have used never change: load a new one from a later date)."""


class RedemptionRefused(LedgerError):
    """A redemption was refused; ``reason`` is a stable machine-readable word."""

    reason = "refused"
    counts_as_failure = False
    """Whether it counts toward the lockout: only a lookup that found no card does."""


class CodeMistyped(RedemptionRefused):
    """The text is not a well-formed code (most likely a typo). No lookup was made.

    It tells nothing about any real code (anyone can check a check character), so it
    does not count toward the lockout.
    """

    reason = "mistyped"


class CodeNotValid(RedemptionRefused):
    """The code is well-formed but belongs to no card."""

    reason = "not_valid"
    counts_as_failure = True


class AlreadyRedeemed(RedemptionRefused):
    """The card was redeemed before, to this account or to another."""

    reason = "already_redeemed"

    def __init__(self, message: str, *, to_this_account: bool) -> None:
        super().__init__(message)
        self.to_this_account = to_this_account


class WrongMarketplace(RedemptionRefused):
    """The card belongs to another marketplace than the one redeeming it.

    ``card_marketplace`` names the card's own (told to whoever holds its code, so that
    they know which store takes it).
    """

    reason = "wrong_marketplace"

    def __init__(self, message: str, *, card_marketplace: str) -> None:
        super().__init__(message)
        self.card_marketplace = card_marketplace


class CardNotActive(RedemptionRefused):
    """The card is not active yet (a physical card that has not shipped)."""

    reason = "not_active"


class CardVoided(RedemptionRefused):
    """The card was voided."""

    reason = "voided"


class CardExpired(RedemptionRefused):
    """The card expired (its value went to breakage; ops can reinstate it)."""

    reason = "expired"

    def __init__(self, message: str, *, expired_on: dt.date) -> None:
        super().__init__(message)
        self.expired_on = expired_on


class TooManyAttempts(RedemptionRefused):
    """Too many failed attempts recently; try again after ``retry_after`` seconds."""

    reason = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
