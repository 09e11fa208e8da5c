"""Why a gift could not be delivered, as a key: the purchaser's notice says it in their words.

A failed gift's notice stores one of these keys in ``Delivery.reason``; the renderer of
each channel turns the key into a sentence from its catalogs, in the reader's language,
with the failed gift's address and attempt count. Nothing stores English prose, so a
German purchaser never reads an English reason. Rows written before keys existed hold a
sentence; :func:`parse` returns None for them and the renderer falls back to a generic
sentence.
"""

from __future__ import annotations

from enum import StrEnum


class FailureReason(StrEnum):
    UNREACHABLE = "unreachable"
    """Retries ran out: the recipient's server (or the provider) could not be reached."""
    REFUSED = "refused"
    """The recipient's server refused the address for good (e.g. SMTP 550)."""
    SUPPRESSED = "suppressed"
    """Not attempted: the address refused permanently before and is suppressed."""
    UNDELIVERABLE = "undeliverable"
    """The address cannot be sent to at all (e.g. a mailbox name the relay cannot carry)."""
    UNRENDERABLE = "unrenderable"
    """The message could not be prepared (bad data); ops have been told."""
    INTERRUPTED = "interrupted"
    """Sending was interrupted too many times (the worker kept stopping)."""
    OPTED_OUT = "opted_out"
    """The recipient asked not to receive messages (e.g. replied STOP to a text)."""


class CancelReason(StrEnum):
    """Why a held order was cancelled before anything was issued: its notice says it."""

    PAYMENT_DECLINED = "payment_declined"
    """The storefront reported that the payment did not go through."""
    PAYMENT_OVERDUE = "payment_overdue"
    """The payment was not confirmed by the deadline (``GIFTQ_PAYMENT_DEADLINE_SECONDS``)."""
    REVIEW_REJECTED = "review_rejected"
    """Ops rejected the order in its fraud review."""
    CANCELLED = "cancelled"
    """Ops cancelled it while it was held."""


def parse(value: str | None) -> FailureReason | None:
    """The key stored in a notice row, or None for an old free-text reason."""
    try:
        return FailureReason(value) if value else None
    except ValueError:
        return None
