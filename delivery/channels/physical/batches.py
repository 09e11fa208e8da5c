"""Batches: which cards go to the vendor together, under which name, and what came of it.

A batch is made by the dispatcher's three steps (:mod:`delivery.dispatch`), so states,
attempts, retries, the sweeper and ops treat physical cards like any other send:

1. **claim**: :func:`delivery.dispatch.claim` takes the due physical deliveries (up to
   ``GIFTQ_FULFILMENT_BATCH_MAX_CARDS``) to ``sending``; the sender's ``compose`` calls
   :func:`compose` here, which records the batch and its cards *before* anything leaves,
   and seals each code;
2. **send**: the back end hands the batch over (:mod:`.backends`);
3. **record**: :func:`delivery.dispatch.record` moves each card to ``sent`` (or on the
   retry schedule), and :func:`settle` marks the batch accepted or failed, in one
   transaction.

A run that dies between 2 and 3 leaves the batch ``open`` and its cards ``sending``; when
they are claimed again (the same task redelivered, or the sweeper's requeue), they go out
in the same batch under the same name, so the vendor, which processes a name once and an
``item_ref`` once, ships nothing twice. A batch whose hand-over failed is ``failed``; its
cards come again in a new batch when their retry is due.

:func:`run` is the entry point of both tasks: ``giftq.fulfilment_batch`` at each cut-off
(``release_due`` first) and ``giftq.dispatch_physical`` for retries and replays.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import dispatch, due
from delivery.channels import registry
from delivery.channels.base import Composed, Outcome, Sender
from delivery.channels.physical.manifest import ManifestRow, amount_text, item_ref
from delivery.channels.physical.models import BatchStatus, FulfilmentBatch, FulfilmentItem
from delivery.channels.physical.sealing import Sealer
from delivery.expiry import disclosure
from delivery.models import Channel, Delivery, Order, OrderLine
from delivery.reasons import FailureReason
from delivery.retry import FailureKind
from giftq.db import utcnow
from giftq.settings import get_settings
from ledger import ClaimCode, get_cards, reveal_codes
from ledger.expiry_policy import terms_url
from ledger.marketplaces import get_marketplace

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Card:
    """A composed card: the batch it goes in and its manifest row (code sealed)."""

    batch_ref: str
    batch_created_at: dt.datetime
    row: ManifestRow = field(repr=False)


def order_ref(order: Order) -> str:
    return order.reference or f"GQ-{order.id}"


def manifest_row(
    line: OrderLine,
    order: Order,
    delivery_id: int,
    code: ClaimCode,
    sealer: Sealer,
    *,
    told: disclosure.Disclosure | None = None,
) -> ManifestRow:
    address = line.recipient_address or {}
    return ManifestRow(
        item_ref=item_ref(delivery_id),
        order_ref=order_ref(order),
        order_line=line.position + 1,
        marketplace=line.marketplace,
        design=line.design,
        amount_minor=line.amount,
        currency=get_marketplace(line.marketplace).currency,
        amount_text=amount_text(line.amount, line.marketplace),
        recipient_name=line.recipient_name,
        address_line1=address.get("line1") or "",
        address_line2=address.get("line2") or "",
        city=address.get("city") or "",
        region=address.get("region") or "",
        postal_code=address.get("postal_code") or "",
        country=address.get("country") or "",
        sender_name=order.purchaser_name,
        message=line.message or "",
        key_id=sealer.key_id,
        code_sealed=sealer.seal(code),
        valid_until=told.valid_until.isoformat() if told and told.valid_until else "",
        terms_url=told.terms_url if told else terms_url(line.marketplace),
    )


def compose(
    session: Session, rows: Sequence[tuple[Delivery, Order]], *, sealer: Sealer, backend: str
) -> list[Composed | Outcome]:
    """The sender's ``compose``: a manifest row per card, and the batch each belongs to."""
    lines = {
        line.id: line
        for line in session.scalars(
            select(OrderLine).where(OrderLine.id.in_([d.line_id for d, _ in rows if d.line_id is not None]))
        )
    }
    card_ids = [d.card_id for d, _ in rows if d.card_id is not None]
    codes, cards = reveal_codes(session, card_ids), get_cards(session, card_ids)
    made: list[tuple[Delivery, ManifestRow]] = []
    items: list[Composed | Outcome] = []
    for delivery, order in rows:
        line = lines.get(delivery.line_id or 0)
        code = codes.get(delivery.card_id or 0)
        if line is None or code is None or not line.recipient_address:
            items.append(
                Outcome.failed(
                    delivery.id,
                    FailureKind.PERMANENT,
                    f"delivery {delivery.id}: no line, card or address to ship",
                    reason=FailureReason.UNRENDERABLE,
                )
            )
            continue
        card = cards.get(delivery.card_id or 0)
        told = disclosure.of_card(card) if card is not None else None
        made.append((delivery, manifest_row(line, order, delivery.id, code, sealer, told=told)))
    batches = _batches_for(session, [(d.id, d.card_id or 0) for d, _ in made], backend)
    for delivery, row in made:
        batch = batches[delivery.id]
        items.append(Composed(delivery.id, "", delivery.to_name, Card(batch.ref, batch.created_at, row)))
    return items


def _batches_for(session: Session, cards: list[tuple[int, int]], backend: str) -> dict[int, FulfilmentBatch]:
    """Each card's batch: the open one it was in when a run died, else one new batch."""
    if not cards:
        return {}
    found = {
        delivery_id: batch
        for delivery_id, batch in session.execute(
            select(FulfilmentItem.delivery_id, FulfilmentBatch)
            .join(FulfilmentBatch, FulfilmentItem.batch_id == FulfilmentBatch.id)
            .where(
                FulfilmentItem.delivery_id.in_([d for d, _ in cards]),
                FulfilmentBatch.status == BatchStatus.OPEN,
            )
        )
    }
    fresh = [(d, c) for d, c in cards if d not in found]
    if fresh:
        now = utcnow()
        batch = FulfilmentBatch(
            ref=uuid.uuid4().hex,  # renamed below, once the id is known
            backend=backend,
            status=BatchStatus.OPEN,
            cards=len(fresh),
            resends=0,
            created_at=now,
            updated_at=now,
        )
        session.add(batch)
        session.flush()
        batch.ref = f"GQ-{now:%Y%m%d}-{batch.id:06d}"
        session.execute(
            insert(FulfilmentItem),
            [{"batch_id": batch.id, "delivery_id": d, "card_id": c} for d, c in fresh],
        )
        session.flush()
        found.update(dict.fromkeys((d for d, _ in fresh), batch))
    return found


def settle(session: Session, composed: Sequence[Composed], outcomes: Sequence[Outcome]) -> None:
    """Mark each batch of a run accepted or failed, with the vendor's answer."""
    refs: dict[int, str] = {}
    for item in composed:
        card = item.message
        assert isinstance(card, Card)
        refs[item.delivery_id] = card.batch_ref
    answers: dict[str, Outcome] = {}
    for outcome in outcomes:
        ref = refs.get(outcome.delivery_id)
        if ref is not None and (ref not in answers or outcome.accepted):
            answers[ref] = outcome
    now = utcnow()
    for ref, outcome in answers.items():
        session.execute(
            update(FulfilmentBatch)
            .where(FulfilmentBatch.ref == ref, FulfilmentBatch.status == BatchStatus.OPEN)
            .values(
                status=BatchStatus.ACCEPTED if outcome.accepted else BatchStatus.FAILED,
                response=outcome.response[:1000],
                updated_at=now,
            )
        )


def run(
    sessions: sessionmaker[Session],
    delivery_ids: Sequence[int] = (),
    *,
    claimer: str | None = None,
    sender: Sender | None = None,
    release_due: dt.datetime | None = None,
) -> dispatch.BatchReport:
    """Make batches of the due physical cards until none is left; returns the totals.

    ``delivery_ids`` are claimed first (a retry, a replay), then every queued physical
    card tops the batch up. With ``release_due`` (a cut-off), sends due by then are
    released (every channel's, as the due dispatcher does) in the same transaction as the
    claim, so that one cut-off makes one batch.
    """
    sender = sender or registry.get(Channel.PHYSICAL)
    claimer = claimer or uuid.uuid4().hex
    size = get_settings().fulfilment_batch_max_cards
    total = dispatch.NOTHING
    ids = list(delivery_ids)
    while True:
        with sessions.begin() as session:
            if release_due is not None:
                due.release_due(session, limit=size, now=release_due)
            composed = dispatch.claim(session, sender, ids, claimer=claimer, fill_to=size)
        if not composed:
            return total
        started = utcnow()
        outcomes = dispatch.send(sender, composed, lambda _: None)
        with sessions.begin() as session:
            report = dispatch.record(
                session, outcomes, claimer=claimer, started=started, reports_delivery=sender.reports_delivery
            )
            settle(session, composed, outcomes)
        log.info("fulfilment: %s", report.as_dict())
        total += report
        if not report.sent:
            return total  # the vendor took nothing: the rest waits for its retry, not a loop
        ids, release_due = [], None
