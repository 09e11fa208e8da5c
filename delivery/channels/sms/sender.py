"""The text-message channel behind the seam: compose gift texts, send them paced, read reports.

:class:`SmsSender` implements :class:`delivery.channels.base.Sender`. Only gifts and
their expiry reminders travel by text (the purchaser's receipt and notices go by email).
``sent`` means the provider accepted the message; ``delivered`` waits for its status callback
(:mod:`delivery.channels.sms.reports`), so ``reports_delivery`` is true and the
purchaser hears "delivered" only when the handset has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery.channels.base import Composed, Outcome, Report
from delivery.channels.sms.failures import classify_unreachable
from delivery.channels.sms.render import ExpiryReminderText, GiftText, render_text
from delivery.channels.sms.transport import (
    RATE_LIMITED_RETRY_AFTER,
    SmsTransport,
    TextEnvelope,
    TextOutcome,
    close_transport,
    get_transport,
)
from delivery.expiry import disclosure
from delivery.models import Channel, Delivery, DeliveryKind, Order, OrderLine
from delivery.reasons import FailureReason
from delivery.retry import FailureKind
from ledger import get_cards, reveal_codes
from ledger.codes.redact import redact
from ledger.errors import LedgerError

TEXTS = frozenset({DeliveryKind.GIFT, DeliveryKind.EXPIRY_REMINDER})
"""What travels by text: gifts and their expiry reminders (the purchaser's mail goes by email)."""


class SmsSender:
    channel: ClassVar[Channel] = Channel.SMS
    reports_delivery: ClassVar[bool] = True

    def __init__(self, transport: SmsTransport | None = None) -> None:
        self.transport = transport
        """None: the process's transport from settings, looked up at each send."""

    def compose(self, session: Session, rows: Sequence[tuple[Delivery, Order]]) -> list[Composed | Outcome]:
        line_ids = {d.line_id for d, _ in rows if d.line_id is not None}
        lines = {
            line.id: line for line in session.scalars(select(OrderLine).where(OrderLine.id.in_(line_ids)))
        }
        card_ids = [d.card_id for d, _ in rows if d.card_id is not None]
        gift_ids = [d.card_id for d, _ in rows if d.card_id is not None and d.kind == DeliveryKind.GIFT]
        # Only a gift shows its code: a reminder's stays sealed.
        codes, cards = reveal_codes(session, gift_ids), get_cards(session, card_ids)
        items: list[Composed | Outcome] = []
        for delivery, order in rows:
            try:
                if delivery.kind not in TEXTS or delivery.card_id is None or not delivery.to_address:
                    raise ValueError(f"delivery {delivery.id} is not a text with a card and a number")
                line = lines[delivery.line_id or 0]
                card = cards.get(delivery.card_id)
                if card is None:
                    raise LookupError(f"no card {delivery.card_id}")
                told = disclosure.of_card(card)
                if delivery.kind == DeliveryKind.EXPIRY_REMINDER:
                    if told.valid_until is None:
                        raise ValueError(f"card {card.card_id} does not expire: no reminder to send")
                    text = render_text(
                        ExpiryReminderText(
                            sender_name=order.purchaser_name,
                            amount=card.amount,
                            marketplace=card.marketplace,
                            last4=card.last4,
                            valid_until=told.valid_until,
                            terms_url=told.terms_url,
                            locale=line.recipient_locale,
                        )
                    )
                else:
                    code = codes.get(delivery.card_id)
                    if code is None:
                        raise LookupError(f"no card {delivery.card_id}")
                    text = render_text(
                        GiftText(
                            sender_name=order.purchaser_name,
                            amount=line.amount,
                            marketplace=line.marketplace,
                            code=code.reveal(),
                            locale=line.recipient_locale,
                            valid_until=told.valid_until,
                            terms_url=told.terms_url,
                        )
                    )
            except (LedgerError, LookupError, TypeError, ValueError) as exc:
                why = redact(f"{type(exc).__name__}: {exc}")[:1000]
                items.append(
                    Outcome.failed(delivery.id, FailureKind.PERMANENT, why, reason=FailureReason.UNRENDERABLE)
                )
                continue
            items.append(Composed(delivery.id, delivery.to_address, delivery.to_name, text.body))
        return items

    def send(self, batch: Sequence[Composed], report: Report) -> None:
        envelopes = [TextEnvelope(item.delivery_id, item.address, item.message) for item in batch]
        transport = self.transport or get_transport()
        transport.send_batch(envelopes, lambda answer: report(_outcome(answer)))

    def classify(self, error: BaseException) -> FailureKind:
        return classify_unreachable(error).kind

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        else:
            close_transport()


def _outcome(answer: TextOutcome) -> Outcome:
    if answer.accepted:
        return Outcome(
            answer.ref,
            True,
            code=answer.http_status,
            response=f"accepted as {answer.message_sid}",
            provider_ref=answer.message_sid,
        )
    if answer.deferred or answer.failure is None:
        wait = answer.retry_after or 0.0
        return Outcome.deferred(answer.ref, wait, f"deferred {wait:.1f} s (send rate)")
    if answer.http_status == 429:
        # "Too many requests": the provider took nothing and asks us to slow down. That is
        # pacing, not a failed attempt: back in the queue after its Retry-After.
        wait = answer.retry_after or RATE_LIMITED_RETRY_AFTER
        return Outcome.deferred(answer.ref, wait, f"deferred {wait:.1f} s (provider said 429)")
    failure = answer.failure
    return Outcome(
        answer.ref,
        False,
        failure.kind,
        failure.code,
        failure.detail,
        reason=failure.reason,
        suppress=failure.suppress,
    )


def from_settings() -> SmsSender:
    return SmsSender()
