"""What a status callback does to a delivery: checked, then forward only.

:func:`apply_status_callback` is the whole job of the HTTP endpoint that receives the
provider's reports: it verifies the signature (nothing is read before that), finds the
delivery by the ``ref`` in the callback URL and the message SID, and moves it on through
:mod:`delivery.lifecycle`: ``delivered`` tells the purchaser it arrived; ``undelivered``
or ``failed`` is classified (retry, give up, suppress the number) and, when final, tells
the purchaser why. ``queued``/``sending``/``sent`` change nothing. A late or repeated
report never moves a delivery back: reports act only on a delivery that is ``sent``.

A report may overtake the worker that sent the message (the provider can call back
within milliseconds, before the worker has written the acceptance down). The report
itself proves the provider took the message, so it records the acceptance first; the
worker's own answer then finds the delivery already past ``sending`` and only logs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery import lifecycle
from delivery.channels.sms.callbacks import StatusReport, parse_status_callback
from delivery.channels.sms.errors import SmsError
from delivery.channels.sms.signature import Params
from delivery.models import Channel, Delivery, Order
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from giftq.settings import get_settings


class UnknownMessage(SmsError, LookupError):
    """A verified report names no delivery of ours (or another message than the one we sent)."""


@dataclass(frozen=True, slots=True)
class Applied:
    delivery_id: int
    status: str
    """The delivery's status after the report."""
    changed: bool
    """False for a report that came late, came again, or says nothing new."""


def apply_status_callback(session: Session, url: str, params: Params, signature: str | None) -> Applied:
    """Verify one status callback and apply it in the caller's transaction.

    Raises ``InvalidSignature`` or ``MalformedCallback`` (from the parser) and
    :class:`UnknownMessage`, each before anything is changed.
    """
    settings = get_settings()
    token = settings.sms_auth_token.get_secret_value() if settings.sms_auth_token else ""
    report = parse_status_callback(
        url, params, signature, token, account_sid=settings.sms_account_sid or None
    )
    found = _find(session, report)
    if found is None:
        raise UnknownMessage(f"no text message {report.message_sid} of ours")
    delivery, order = found
    now = utcnow()
    if report.progress == 0:
        return Applied(delivery.id, delivery.status, False)
    if delivery.status == S.SENDING:
        lifecycle.accepted(
            session,
            delivery,
            order,
            code=None,
            response=f"accepted as {report.message_sid} (told by its status report)",
            provider_ref=report.message_sid,
            started=now,
            now=now,
            reports_delivery=True,
        )
    if not report.final:
        session.flush()
        return Applied(delivery.id, delivery.status, False)
    failure = report.failure
    changed = lifecycle.reported(
        session,
        delivery,
        order,
        delivered=report.delivered,
        kind=failure.kind if failure else None,
        code=failure.code if failure else None,
        response=f"{report.status}: {failure.detail}" if failure else str(report.status),
        reason=failure.reason if failure else None,
        suppress=failure.suppress if failure else False,
        now=now,
    )
    session.flush()
    return Applied(delivery.id, delivery.status, changed)


def _find(session: Session, report: StatusReport) -> tuple[Delivery, Order] | None:
    query = (
        select(Delivery, Order)
        .join(Order, Delivery.order_id == Order.id)
        .where(Delivery.channel == Channel.SMS)
        .with_for_update(of=Delivery)
        .execution_options(populate_existing=True)
    )
    if report.delivery_ref is not None:
        row = session.execute(query.where(Delivery.id == report.delivery_ref)).one_or_none()
    else:
        row = session.execute(query.where(Delivery.provider_ref == report.message_sid)).one_or_none()
    if row is None:
        return None
    delivery, order = row
    # The ref must name the message we sent: a report for another SID is not ours to apply.
    if delivery.provider_ref is not None and delivery.provider_ref != report.message_sid:
        return None
    if delivery.provider_ref is None and delivery.status != S.SENDING:
        return None
    return delivery, order
