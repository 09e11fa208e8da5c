"""Task names and their queues: static data, shared by the outbox and the Celery app.

Task names are stable; storefronts in other languages send them by name. Each channel's
dispatch task comes from :data:`delivery.channels.registry.CHANNELS`.
"""

from __future__ import annotations

from delivery.channels.registry import CHANNELS

ROUTES: dict[str, str] = {
    "giftq.place_order": "orders",
    "giftq.process_order": "orders",
    "giftq.confirm_payment": "orders",
    "giftq.decline_payment": "orders",
    **{info.task: info.queue for info in CHANNELS.values()},
    "giftq.dispatch_due": "scheduler",
    "giftq.sweep": "scheduler",
    "giftq.place_programs": "scheduler",
    "giftq.expire_holds": "scheduler",
    "giftq.expire_cards": "scheduler",
    # Physical cards: the batch at each cut-off, and the vendor's report files.
    "giftq.fulfilment_batch": "fulfilment",
    "giftq.fulfilment_reports": "fulfilment",
}
"""Every task giftq sends or consumes, and the queue it goes to."""

CLIENT_DEFAULT_QUEUE = "celery"
"""Where any Celery client's unrouted messages go; read by the orders workers, never routed to."""

QUEUES: tuple[str, ...] = tuple(dict.fromkeys([*ROUTES.values(), CLIENT_DEFAULT_QUEUE]))
"""Every queue giftq declares, one worker group per set of them."""
