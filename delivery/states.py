"""The delivery state machine, as data.

::

    scheduled ──► queued ──► sending ──► sent ──► delivered
        │           ▲  │        │  │       ├────► bounced
        │           │  │        │  │       └────► failed_retryable / failed_permanent
        │           │  │        │  │              (the provider reports it undelivered)
        │           │  │        │  └──► failed_permanent ──► queued (ops replay)
        │           │  │        └─────► failed_retryable ──► queued (retry due)
        │           │  │                      └──► failed_permanent (retries exhausted)
        │           └──┴── sending ──► queued (sweeper: the worker died mid-send)
        └──────────────────► cancelled (from scheduled, queued, failed_retryable)

``sent`` means the provider accepted the message (for email: our SMTP relay said 250).
``delivered`` and ``bounced`` are later reports from the receiving side (delivery status
notifications, provider callbacks), and so is a move from ``sent`` to a failure (a text
the carrier could not deliver): channels that report (SMS, fulfilment) need no new states.

Every status change goes through :func:`check` (or the status filters of a conditional
UPDATE built from :func:`sources`), so that a task running twice cannot move a row
backwards or send it twice.
"""

from __future__ import annotations

from enum import StrEnum

from delivery.errors import InvalidTransition


class DeliveryStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED_RETRYABLE = "failed_retryable"
    FAILED_PERMANENT = "failed_permanent"
    CANCELLED = "cancelled"
    BOUNCED = "bounced"


S = DeliveryStatus

TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    S.SCHEDULED: frozenset({S.QUEUED, S.CANCELLED}),
    S.QUEUED: frozenset({S.SENDING, S.CANCELLED}),
    S.SENDING: frozenset({S.SENT, S.FAILED_RETRYABLE, S.FAILED_PERMANENT, S.QUEUED}),
    S.SENT: frozenset({S.DELIVERED, S.BOUNCED, S.FAILED_RETRYABLE, S.FAILED_PERMANENT}),
    S.DELIVERED: frozenset(),
    S.FAILED_RETRYABLE: frozenset({S.QUEUED, S.SENDING, S.FAILED_PERMANENT, S.CANCELLED}),
    S.FAILED_PERMANENT: frozenset({S.QUEUED}),
    S.CANCELLED: frozenset(),
    S.BOUNCED: frozenset({S.QUEUED}),
}
"""Allowed moves. ``failed_retryable -> sending`` is a due retry claimed directly by a send."""

PENDING = frozenset({S.SCHEDULED, S.QUEUED, S.FAILED_RETRYABLE})
"""Not sent yet and nobody is sending it: these can still be cancelled."""

FINAL_FAILURES = frozenset({S.FAILED_PERMANENT, S.BOUNCED})
"""What ops lists as failures and may replay."""


def can_move(source: DeliveryStatus, target: DeliveryStatus) -> bool:
    return target in TRANSITIONS[source]


def check(source: DeliveryStatus | str, target: DeliveryStatus | str) -> DeliveryStatus:
    """Return ``target`` if the move is allowed, else raise :class:`InvalidTransition`."""
    src, dst = DeliveryStatus(source), DeliveryStatus(target)
    if not can_move(src, dst):
        raise InvalidTransition(f"delivery cannot go from {src} to {dst}")
    return dst


def sources(target: DeliveryStatus) -> frozenset[DeliveryStatus]:
    """Every status from which ``target`` may be reached (the WHERE of a conditional UPDATE)."""
    return frozenset(src for src, targets in TRANSITIONS.items() if target in targets)
