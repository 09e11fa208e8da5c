"""Everything ``delivery`` raises derives from :class:`DeliveryError`.

    DeliveryError
    ├── InvalidOrder          the order failed validation; ``.errors`` names each bad field
    │   └── OrderOverLimit    past a marketplace's limit; ``.breaches`` names each limit
    ├── IdempotencyConflict   an idempotency key reused for a different order
    ├── NotFound              no such order, line or delivery
    ├── InvalidTransition     a delivery state change the state machine does not allow
    ├── OpsRefused            an ops action that does not apply to the row as it is
    └── HoldRefused           a payment or review answer for an order that is not held so

Messages carry ids, field names and the last four characters of a code at most;
never a claim code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DeliveryError(Exception):
    """Base class of every delivery error."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field: ``path`` is dotted (``lines.0.recipient.email``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidOrder(DeliveryError, ValueError):
    """The order (or the message carrying it) is malformed; nothing was written."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("invalid order: " + "; ".join(str(e) for e in self.errors))


@dataclass(frozen=True, slots=True)
class LimitBreach:
    """One limit an order goes past (:mod:`ledger.limits`): amounts in minor units."""

    limit: str
    """``min_card``, ``max_card``, ``max_order_total`` or ``max_cards_per_day``."""
    marketplace: str
    currency: str
    value: int
    """The limit."""
    amount: int
    """What the order asks for: a card's amount, the order's total, or the day's cards."""
    path: str
    message: str


class OrderOverLimit(InvalidOrder):
    """The order goes past a marketplace's limit; nothing was written. Each breach is also
    a field error, so a caller that knows only :class:`InvalidOrder` reads it too."""

    def __init__(self, breaches: Sequence[LimitBreach]) -> None:
        self.breaches = tuple(breaches)
        super().__init__([FieldError(b.path, b.message) for b in self.breaches])


class IdempotencyConflict(DeliveryError):
    """The idempotency key was used before for a different order."""


class NotFound(DeliveryError, LookupError):
    """The order, line or delivery does not exist."""


class InvalidTransition(DeliveryError):
    """The delivery state machine does not allow this change."""


class OpsRefused(DeliveryError):
    """An ops action does not apply to the row in its current state; the message says why."""


class HoldRefused(DeliveryError):
    """A payment confirmation, decline or review decision for an order that is not held
    that way (never was, or was cancelled); the message says what the order is."""
