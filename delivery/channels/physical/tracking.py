"""Where shipped cards are: the carrier and tracking number the vendor reported.

The email channel asks this when it writes the purchaser's notice about a shipped card.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery.channels.physical.models import FulfilmentReport, ReportEvent


@dataclass(frozen=True, slots=True)
class Shipment:
    carrier: str
    tracking_number: str
    tracking_url: str | None
    shipped_at: dt.datetime


def shipments(session: Session, delivery_ids: Collection[int]) -> dict[int, Shipment]:
    """The shipments of these gift deliveries, by delivery id (absent: not shipped)."""
    if not delivery_ids:
        return {}
    reports = session.scalars(
        select(FulfilmentReport).where(
            FulfilmentReport.delivery_id.in_(list(delivery_ids)),
            FulfilmentReport.event == ReportEvent.SHIPPED,
        )
    )
    return {
        r.delivery_id: Shipment(r.carrier or "", r.tracking_number or "", r.tracking_url, r.created_at)
        for r in reports
    }
