"""Physical cards end to end, on PostgreSQL and on SQLite: an order is placed, the cut-off
batch is dropped for the vendor, the vendor decrypts the codes with its private key, a
code does not redeem before the card ships, the vendor's "shipped" report activates it
and the purchaser is emailed the tracking; a card reported lost is voided and a new one
goes in the next batch. No claim code appears in any log record or in any file but the
sealed manifest."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from delivery import dispatch
from delivery.channels.physical.cutoff import next_cutoff
from delivery.channels.physical.models import BatchStatus, FulfilmentBatch, FulfilmentItem
from delivery.channels.physical.reports import process_inbox
from delivery.models import Channel, Delivery, DeliveryKind
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from ledger import balance, get_card, redeem_code
from ledger.errors import CardNotActive, CardVoided
from ledger.models import CardStatus


def gifts(Session: sessionmaker[Any], order_id: int) -> list[Delivery]:
    with Session() as s:
        query = (
            select(Delivery)
            .where(Delivery.order_id == order_id, Delivery.kind == DeliveryKind.GIFT)
            .order_by(Delivery.id)
        )
        return list(s.scalars(query))


def send_emails(Session: sessionmaker[Any]) -> None:
    with Session() as s:
        ids = list(
            s.scalars(
                select(Delivery.id).where(Delivery.channel == Channel.EMAIL, Delivery.status == S.QUEUED)
            )
        )
    dispatch.run_batch(Session, Channel.EMAIL, ids)


def redeem(Session: sessionmaker[Any], code: str, key: str) -> Any:
    return redeem_code(
        Session, code, account="robin", marketplace="US", idempotency_key=key, client="198.51.100.7"
    )


def every_file(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


def test_an_order_is_shipped_activated_redeemed_and_a_lost_card_replaced(
    *,
    Session: sessionmaker[Any],
    vendor: Any,
    physical_order: Any,
    run_cutoff: Any,
    smtp: Any,
    conftest: Any,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    order_id = physical_order(lines=2)

    # Issued inactive, due at the next cut-off, not sent before it.
    waiting = gifts(Session, order_id)
    assert [(g.status, g.due_at) for g in waiting] == [(S.SCHEDULED, next_cutoff(utcnow()))] * 2
    with Session() as s:
        assert {get_card(s, g.card_id or 0).status for g in waiting} == {CardStatus.INACTIVE}

    # The cut-off: one batch, dropped whole, both cards in it, handed over = sent.
    report = run_cutoff(Session)
    assert (report.claimed, report.sent) == (2, 2)
    (folder,) = vendor.batches()
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.csv", "packing-slips.pdf"]
    assert not [p for p in vendor.drop.iterdir() if p.name.startswith(".")]
    rows = vendor.rows(folder)
    first, second = gifts(Session, order_id)
    assert [r["item_ref"] for r in rows] == [f"gq-{first.id}", f"gq-{second.id}"]
    assert {r["batch_id"] for r in rows} == {folder.name}
    assert rows[0]["recipient_name"] == "Robin Receiver"
    assert (rows[0]["postal_code"], rows[0]["region"], rows[0]["country"]) == ("20500", "DC", "US")
    assert (rows[0]["amount_minor"], rows[0]["currency"], rows[0]["amount_text"]) == ("2500", "USD", "$25.00")
    assert rows[0]["message"] == "Happy birthday, Robin!\nLove, Pat"
    assert (first.status, second.status) == (S.SENT, S.SENT)
    with Session() as s:
        batch = s.scalars(select(FulfilmentBatch)).one()
        assert (batch.ref, batch.status, batch.cards) == (folder.name, BatchStatus.ACCEPTED, 2)
        assert first.provider_ref == batch.ref

    # The vendor opens the codes with its private key; they do not redeem before shipping.
    codes = [vendor.open(r) for r in rows]
    assert len(set(codes)) == 2
    with Session() as s:
        assert [get_card(s, g.card_id or 0).last4 for g in (first, second)] == [c[-4:] for c in codes]
    with pytest.raises(CardNotActive):
        redeem(Session, codes[0], "too-early")

    # The packing slips: a page per card, the ship-to address, and no code.
    slips = PdfReader(folder / "packing-slips.pdf")
    assert len(slips.pages) == 2
    text = slips.pages[0].extract_text()
    assert f"gq-{first.id}" in text and "Washington, DC 20500" in text and "Pat Buyer" in text

    # Shipped: the card activates, the delivery is delivered, the purchaser gets the tracking.
    vendor.report(
        "shipped-1.csv",
        [
            {
                "item_ref": f"gq-{first.id}",
                "event": "shipped",
                "carrier": "USPS",
                "tracking_number": "9400 1000 0000 0000 0000 00",
                "tracking_url": "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400100000000000000000",
            }
        ],
    )
    (result,) = process_inbox(Session)
    assert result.applied is not None and result.applied.changed == (f"gq-{first.id}",)
    assert (vendor.inbox / "done" / "shipped-1.csv").exists()
    assert gifts(Session, order_id)[0].status == S.DELIVERED
    send_emails(Session)
    (notice,) = smtp.wait("pat@example.com", count=2)[1:]
    assert notice["Subject"] == "Your gift card for Robin Receiver is on its way"
    body = " ".join(conftest.text_of(notice).split())
    assert "has been posted with USPS" in body and "Tracking number: 9400 1000 0000 0000 0000 00" in body
    assert "https://tools.usps.com/" in body
    redeemed = redeem(Session, codes[0], "after-shipping")
    with Session() as s:
        assert balance(s, account="robin", marketplace="US").amount == 2500 == redeemed.amount

    # Lost: the card is voided, the delivery bounced, a new card goes in the next batch.
    vendor.report(
        "lost-1.csv", [{"item_ref": f"gq-{second.id}", "event": "lost", "detail": "dropped in the press"}]
    )
    (result,) = process_inbox(Session)
    assert result.applied is not None
    replacement_id = result.applied.replacements[f"gq-{second.id}"]
    with pytest.raises(CardVoided):
        redeem(Session, codes[1], "lost-card")
    after = gifts(Session, order_id)
    assert [(g.id, g.status) for g in after] == [
        (first.id, S.DELIVERED),
        (second.id, S.BOUNCED),
        (replacement_id, S.SCHEDULED),
    ]
    assert after[2].parent_id == second.id and after[2].card_id != second.card_id
    send_emails(Session)
    assert len(smtp.to("pat@example.com")) == 2  # no failure notice: a replacement is on its way

    run_cutoff(Session)
    assert len(vendor.batches()) == 2
    again = vendor.rows(vendor.batches()[1])
    assert [r["item_ref"] for r in again] == [f"gq-{replacement_id}"]
    new_code = vendor.open(again[0])
    assert new_code not in codes
    with pytest.raises(CardNotActive):
        redeem(Session, new_code, "replacement-too-early")
    vendor.report(
        "shipped-2.csv",
        [
            {
                "item_ref": f"gq-{replacement_id}",
                "event": "shipped",
                "carrier": "UPS",
                "tracking_number": "1Z999",
            }
        ],
    )
    process_inbox(Session)
    redeem_code(Session, new_code, account="sam", marketplace="US", idempotency_key="replacement")
    with Session() as s:
        items = s.scalars(select(FulfilmentItem.delivery_id).order_by(FulfilmentItem.id)).all()
        assert items == [first.id, second.id, replacement_id]

    # The code left the system only sealed: in no log record and in no other file.
    all_codes = [*codes, new_code]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # the run did log (so this check can fail)
    for code in all_codes:
        assert code not in logged and code.replace("-", "") not in logged
    files = every_file(tmp_path)
    assert sum(p.name == "manifest.csv" for p in files) == 2
    for path in files:
        data = path.read_bytes()
        for code in all_codes:
            assert code.encode() not in data and code.replace("-", "").encode() not in data, path
    for folder in vendor.batches():
        pdf_text = "".join(page.extract_text() for page in PdfReader(folder / "packing-slips.pdf").pages)
        for code in all_codes:
            assert code not in pdf_text and code.replace("-", "") not in pdf_text


def test_the_cut_off_is_the_due_time_and_nothing_leaves_before_it(
    Session: sessionmaker[Any], vendor: Any, physical_order: Any
) -> None:
    from delivery.channels.physical import batches

    order_id = physical_order()
    report = batches.run(Session, release_due=utcnow())
    assert report.claimed == 0 and vendor.batches() == []
    (gift,) = gifts(Session, order_id)
    assert gift.status == S.SCHEDULED
    report = batches.run(Session, release_due=gift.due_at + dt.timedelta(seconds=1))
    assert report.sent == 1 and len(vendor.batches()) == 1
