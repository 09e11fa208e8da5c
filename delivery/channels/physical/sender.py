"""The physical channel behind the seam (:class:`delivery.channels.base.Sender`).

``compose`` records the batch and seals each code (:mod:`.batches`); ``send`` renders the
packing slips and hands each batch to the back end, answering every card of a batch
with the batch's outcome; ``classify`` says which hand-over failures are worth retrying.
``reports_delivery`` is True: ``sent`` means the vendor took the batch, and the vendor's
"shipped" report later makes the card ``delivered``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.utils import parseaddr
from typing import ClassVar

import httpx
from sqlalchemy.orm import Session

from delivery.channels.base import Composed, Outcome, Report
from delivery.channels.physical import backends, batches, sealing, slips
from delivery.channels.physical.backends import Backend
from delivery.channels.physical.errors import FulfilmentConfigError, HandOverFailed
from delivery.channels.physical.manifest import Batch
from delivery.dispatch import describe
from delivery.models import Channel, Delivery, Order
from delivery.retry import FailureKind, classify
from giftq.settings import get_settings

log = logging.getLogger(__name__)


class PhysicalSender:
    channel: ClassVar[Channel] = Channel.PHYSICAL
    reports_delivery: ClassVar[bool] = True

    def __init__(self, backend: Backend, sealer: sealing.Sealer, *, brand: str = "giftq") -> None:
        self.backend = backend
        self.sealer = sealer
        self.brand = brand

    def compose(self, session: Session, rows: Sequence[tuple[Delivery, Order]]) -> list[Composed | Outcome]:
        return batches.compose(session, rows, sealer=self.sealer, backend=self.backend.name)

    def send(self, batch: Sequence[Composed], report: Report) -> None:
        grouped: dict[str, list[Composed]] = {}
        for item in batch:
            grouped.setdefault(item.message.batch_ref, []).append(item)
        for ref, items in grouped.items():
            handed = Batch(ref, items[0].message.batch_created_at, tuple(i.message.row for i in items))
            try:
                answer = self.backend.hand_over(handed, slips.render(handed, self.brand))
            except Exception as exc:  # this batch failed; the next one may still go
                log.warning(
                    "fulfilment batch %s (%d cards) not handed over: %s", ref, len(items), describe(exc)
                )
                status = exc.status if isinstance(exc, HandOverFailed) else None
                for item in items:
                    report(Outcome(item.delivery_id, False, self.classify(exc), status, describe(exc)))
                continue
            for item in items:
                report(Outcome(item.delivery_id, True, None, None, answer, provider_ref=ref))

    def classify(self, error: BaseException) -> FailureKind:
        if isinstance(error, HandOverFailed) and error.status is not None:
            return classify(http_status=error.status)
        if isinstance(error, FulfilmentConfigError):
            return FailureKind.PERMANENT
        if isinstance(error, httpx.HTTPError | OSError | HandOverFailed):
            return FailureKind.RETRYABLE
        return classify(error=error)

    def close(self) -> None:
        self.backend.close()


def brand() -> str:
    """The name on the slips: the display name of ``GIFTQ_EMAIL_FROM``."""
    return parseaddr(get_settings().email_from)[0].strip() or "giftq"


def from_settings() -> PhysicalSender:
    return PhysicalSender(backends.from_settings(), sealing.from_settings(), brand=brand())
