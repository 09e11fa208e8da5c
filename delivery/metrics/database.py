"""Gauges read from the database at scrape time: where deliveries are, and what is owed.

Each scrape runs seven small aggregate queries in one read-only transaction (grouped
counts over indexed columns, and a sum over card accounts). When the database cannot
be reached the scrape still answers, with ``giftq_database_up 0`` and none of these
gauges, so that the alert says "database" rather than "metrics endpoint down".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from delivery.models import HELD, Channel, Delivery, Order, OrderLine
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from giftq.settings import get_settings
from ledger.models import Account, AccountKind, RedemptionFailure

log = logging.getLogger(__name__)

WAITING_FOR_DUE = (S.SCHEDULED, S.FAILED_RETRYABLE)
"""Rows the due dispatcher releases once their due time has come."""


class DatabaseCollector:
    """A prometheus-client collector; ``sessions`` opens a session on the giftq database."""

    def __init__(self, sessions: Callable[[], Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("giftq_database_up", "1 when the metrics scrape could read the database.")
        try:
            with self._sessions() as session, session.begin():
                families = list(read(session, utcnow()))
        except Exception as exc:  # the scrape must answer; the gauge above says why it is short
            log.warning("metrics: database not readable: %s: %s", type(exc).__name__, exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def read(session: Session, now: dt.datetime) -> Iterator[Metric]:
    """The database gauges as of ``now``."""
    deliveries = GaugeMetricFamily(
        "giftq_deliveries", "Deliveries now in each status, by channel.", labels=["channel", "status"]
    )
    counts = {
        (channel, status): n
        for channel, status, n in session.execute(
            select(Delivery.channel, Delivery.status, func.count()).group_by(
                Delivery.channel, Delivery.status
            )
        )
    }
    for channel in Channel:
        for status in S:
            deliveries.add_metric([channel.value, status.value], counts.get((channel, status), 0))
    yield deliveries

    lag = GaugeMetricFamily(
        "giftq_scheduler_lag_seconds",
        "Now minus the due time of the oldest due scheduled send or retry not yet released, by channel "
        "(0 when none is due).",
        labels=["channel"],
    )
    oldest_due = dict(
        session.execute(
            select(Delivery.channel, func.min(Delivery.due_at))
            .where(Delivery.status.in_(WAITING_FOR_DUE), Delivery.due_at <= now)
            .group_by(Delivery.channel)
        ).all()
    )
    for channel in Channel:
        lag.add_metric([channel.value], _age(now, oldest_due.get(channel)))
    yield lag

    queued = GaugeMetricFamily(
        "giftq_oldest_queued_seconds",
        "How long the oldest queued delivery has waited for a worker, by channel (0 when none).",
        labels=["channel"],
    )
    oldest_queued = dict(
        session.execute(
            select(Delivery.channel, func.min(Delivery.updated_at))
            .where(Delivery.status == S.QUEUED)
            .group_by(Delivery.channel)
        ).all()
    )
    for channel in Channel:
        queued.add_metric([channel.value], _age(now, oldest_queued.get(channel)))
    yield queued

    liability = GaugeMetricFamily(
        "giftq_card_liability_minor_units",
        "Outstanding card liability (issued, not yet redeemed or voided), in minor units, by currency.",
        labels=["currency"],
    )
    for currency, total in session.execute(
        select(Account.currency, func.coalesce(func.sum(Account.balance), 0))
        .where(Account.kind == AccountKind.CARD)
        .group_by(Account.currency)
    ):
        liability.add_metric([currency], int(total or 0))
    yield liability

    yield _lockouts(session, now)
    yield from _held(session, now)


def _held(session: Session, now: dt.datetime) -> Iterator[Metric]:
    """Held orders by what they wait for, and their scheduled gifts whose day has passed."""
    orders = GaugeMetricFamily(
        "giftq_held_orders", "Orders held now, by hold (awaiting_payment, in_review).", labels=["status"]
    )
    counts = dict(
        session.execute(
            select(Order.status, func.count()).where(Order.status.in_(sorted(HELD))).group_by(Order.status)
        ).all()
    )
    for status in sorted(HELD):
        orders.add_metric([status.value], counts.get(status, 0))
    yield orders
    overdue = GaugeMetricFamily(
        "giftq_held_gifts_overdue",
        "Scheduled gifts of held orders whose send time has passed: not sent until the hold ends.",
    )
    overdue.add_metric(
        [],
        session.scalar(
            select(func.count())
            .select_from(OrderLine)
            .join(Order, Order.id == OrderLine.order_id)
            .where(
                Order.status.in_(sorted(HELD)), OrderLine.send_at_zone.is_not(None), OrderLine.due_at <= now
            )
        )
        or 0,
    )
    yield overdue


def _lockouts(session: Session, now: dt.datetime) -> Metric:
    """Accounts and clients locked out of redemption now (as many failures as the limit, or
    more, within the window)."""
    settings = get_settings()
    since = now - dt.timedelta(seconds=settings.redeem_window_seconds)
    limits = {
        "account": settings.redeem_max_failures_per_account,
        "client": settings.redeem_max_failures_per_client,
    }
    locked = GaugeMetricFamily(
        "giftq_lockouts", "Accounts and clients locked out of redemption now.", labels=["scope"]
    )
    for scope, limit in limits.items():
        over = (
            select(RedemptionFailure.scope)
            .where(RedemptionFailure.scope.startswith(f"{scope}:"), RedemptionFailure.failed_at > since)
            .group_by(RedemptionFailure.scope)
            .having(func.count() >= limit)
            .subquery()
        )
        locked.add_metric([scope], session.scalar(select(func.count()).select_from(over)) or 0)
    return locked


def _age(now: dt.datetime, since: dt.datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0
