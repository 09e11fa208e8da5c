"""Which gifts the purchaser hears about once they went out (``GIFTQ_NOTICES``).

A failure is always told. A "sent" or "delivered" notice is news only when the receipt
could not already say it:

- ``all``: every gift of an order of up to ``GIFTQ_DELIVERED_NOTICE_MAX_LINES`` lines;
- ``later`` (the default): only what happened after the receipt went out: a gift sent at
  a later time (a scheduled send, or a send that needed retries) and what a channel
  reports afterwards (a text delivered, a physical card shipped, with its tracking). An
  email gift sent at once leaves with its receipt, which already tells the purchaser it
  is on its way: a third email a second later would say nothing new;
- ``failures``: no such notices at all.

A gift that went to the purchaser (a card to print, a gift to themself) never gets one:
that email is the news. The receipt promises only the notices that will come
(:func:`receipt_promises_notices`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from giftq.settings import Settings, get_settings

# Channels whose gifts hear back after the send (a delivery report, a shipment).
REPORTING_CHANNELS = frozenset({"sms", "physical"})


def wants_sent_notice(
    *,
    line_count: int,
    to_purchaser: bool,
    reported: bool,
    attempts: int,
    due_at: dt.datetime,
    created_at: dt.datetime,
    settings: Settings | None = None,
) -> bool:
    """Whether the purchaser is told that a gift went out (``reported``: a channel's later
    report that it arrived or shipped; otherwise the send itself was accepted)."""
    settings = settings or get_settings()
    if settings.notices == "failures" or to_purchaser or line_count > settings.delivered_notice_max_lines:
        return False
    if settings.notices == "all":
        return True
    # Due later than the row was made: a scheduled send; more than one attempt: retried.
    return reported or attempts > 1 or due_at > created_at


def receipt_promises_notices(lines: Iterable[tuple[str, bool]], settings: Settings | None = None) -> bool:
    """Whether the receipt says "we will email you when a gift has been sent", for an
    order of ``lines`` given as (channel, scheduled for later)."""
    settings = settings or get_settings()
    lines = list(lines)
    if settings.notices == "failures" or len(lines) > settings.delivered_notice_max_lines:
        return False
    if settings.notices == "all":
        return True
    return any(scheduled or channel in REPORTING_CHANNELS for channel, scheduled in lines)
