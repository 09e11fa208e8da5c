"""Everything the physical channel raises derives from :class:`FulfilmentError`.

    DeliveryError
    └── FulfilmentError
        ├── FulfilmentConfigError   settings that cannot work (no vendor key, no URL)
        ├── HandOverFailed          the vendor did not take a batch (``status``: its HTTP answer)
        ├── ReportRefused           a vendor report refused whole; ``.problems`` says why, per row
        └── BadSignature            a report callback whose signature does not verify

Messages name batches, item refs, rows and the last four characters of a code at most;
never a claim code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from delivery.errors import DeliveryError


class FulfilmentError(DeliveryError):
    """Base class of every physical-channel error."""


class FulfilmentConfigError(FulfilmentError):
    """The fulfilment settings cannot work; the message names the setting."""


class HandOverFailed(FulfilmentError):
    """The vendor did not take a batch; ``status`` is its HTTP status when it answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one row of a report was refused. ``row`` counts from 1 (the header is row 0)."""

    row: int
    item_ref: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row} ({self.item_ref or 'no item_ref'}): {self.reason}"


class ReportRefused(FulfilmentError):
    """A vendor report was refused as a whole (all or nothing): nothing was changed."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("report refused, nothing changed: " + "; ".join(str(p) for p in self.problems))


class BadSignature(FulfilmentError):
    """A report callback is not signed with the shared secret."""
