"""Everything ``delivery`` raises derives from :class:`DeliveryError`.

    DeliveryError
    ├── InvalidOrder          the order failed validation; ``.errors`` names each bad field
    ├── IdempotencyConflict   an idempotency key reused for a different order
    ├── NotFound              no such order, line or delivery
    ├── InvalidTransition     a delivery state change the state machine does not allow
    └── OpsRefused            an ops action that does not apply to the row as it is

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


class IdempotencyConflict(DeliveryError):
    """The idempotency key was used before for a different order."""


class NotFound(DeliveryError, LookupError):
    """The order, line or delivery does not exist."""


class InvalidTransition(DeliveryError):
    """The delivery state machine does not allow this change."""


class OpsRefused(DeliveryError):
    """An ops action does not apply to the row in its current state; the message says why."""
