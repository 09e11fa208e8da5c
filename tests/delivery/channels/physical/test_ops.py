"""What ops do with physical cards: list them where they are, send a batch again, mark a
card lost; and the ``giftq fulfilment`` command bodies over the same functions."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from delivery.channels.physical import cli, ops
from delivery.channels.physical.reports import apply, parse_records
from delivery.errors import OpsRefused
from delivery.models import Delivery, DeliveryKind
from delivery.states import DeliveryStatus as S
from ledger import get_card
from ledger.models import CardStatus


def gift_ids(Session: sessionmaker[Any], order_id: int) -> list[int]:
    with Session() as s:
        query = select(Delivery.id).where(Delivery.order_id == order_id, Delivery.kind == DeliveryKind.GIFT)
        return list(s.scalars(query.order_by(Delivery.id)))


def ship(Session: sessionmaker[Any], delivery_id: int, tracking: str = "1Z999") -> None:
    record = {
        "item_ref": f"gq-{delivery_id}",
        "event": "shipped",
        "carrier": "UPS",
        "tracking_number": tracking,
    }
    with Session.begin() as s:
        apply(s, *parse_records([(1, record)]), source="test")


def test_cards_are_listed_where_they_are(
    Session: sessionmaker[Any], vendor: Any, physical_order: Any, run_cutoff: Any
) -> None:
    first_order = physical_order(lines=2)
    run_cutoff(Session)
    later_order = physical_order()
    sent = gift_ids(Session, first_order)
    ship(Session, sent[0])
    with Session() as s:
        (waiting,) = ops.awaiting(s)
        assert (waiting.order_id, waiting.status, waiting.batch_ref) == (later_order, S.SCHEDULED, None)
        assert waiting.card is not None and waiting.card.startswith("#") and "••••" in waiting.card
        assert waiting.ship_to == "Washington 20500 US"
        (batch,) = ops.list_batches(s)
        view, cards = ops.in_batch(s, batch.ref)
        assert (view.status, view.cards) == ("accepted", 2)
        assert [(c.delivery_id, c.status, c.reported) for c in cards] == [
            (sent[0], S.DELIVERED, "shipped"),
            (sent[1], S.SENT, None),
        ]
        (done,) = ops.shipped(s)
        assert (done.delivery_id, done.carrier, done.tracking_number) == (sent[0], "UPS", "1Z999")


def test_a_batch_is_sent_again_with_the_cards_the_vendor_still_holds(
    Session: sessionmaker[Any], vendor: Any, physical_order: Any, run_cutoff: Any
) -> None:
    order_id = physical_order(lines=3)
    run_cutoff(Session)
    (folder,) = vendor.batches()
    codes = {r["item_ref"]: vendor.open(r) for r in vendor.rows(folder)}
    sent = gift_ids(Session, order_id)
    ship(Session, sent[0])
    with Session.begin() as s:
        report = ops.resend_batch(s, folder.name)
    assert report.name == f"{folder.name}.r1" and report.cards == 2
    assert report.left_out == (f"gq-{sent[0]}",)
    again = vendor.rows(vendor.drop / report.name)
    assert [r["item_ref"] for r in again] == [f"gq-{sent[1]}", f"gq-{sent[2]}"]
    assert {r["batch_id"] for r in again} == {folder.name}
    assert [vendor.open(r) for r in again] == [codes[f"gq-{sent[1]}"], codes[f"gq-{sent[2]}"]]
    with Session() as s:
        assert [
            d.status for d in s.scalars(select(Delivery).where(Delivery.id.in_(sent)).order_by(Delivery.id))
        ] == [
            S.DELIVERED,
            S.SENT,
            S.SENT,
        ]
        (batch,) = ops.list_batches(s)
        assert batch.resends == 1


def test_a_card_lost_in_the_post_is_voided_and_replaced_in_the_next_batch(
    Session: sessionmaker[Any], vendor: Any, physical_order: Any, run_cutoff: Any
) -> None:
    order_id = physical_order()
    run_cutoff(Session)
    (delivery_id,) = gift_ids(Session, order_id)
    ship(Session, delivery_id)
    with Session() as s:
        card_id = s.get_one(Delivery, delivery_id).card_id or 0
    with Session.begin() as s:
        new = ops.mark_lost(s, card_id, detail="customer says it never came")
    assert (new.status, new.parent_id) == ("scheduled", delivery_id)
    with Session() as s:
        assert get_card(s, card_id).status == CardStatus.VOIDED
        assert s.get_one(Delivery, delivery_id).status == S.DELIVERED  # it did ship
    with pytest.raises(OpsRefused, match="voided"), Session.begin() as s:
        ops.mark_lost(s, card_id)
    run_cutoff(Session)
    assert [r["item_ref"] for r in vendor.rows(vendor.batches()[-1])] == [f"gq-{new.id}"]


def test_the_command_line(
    Session: sessionmaker[Any],
    vendor: Any,
    physical_order: Any,
    run_cutoff: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli.console, "size", (200, 50))  # a wide terminal: a row on one line
    runner = CliRunner()
    order_id = physical_order()
    result = runner.invoke(cli.app, ["awaiting"])
    assert result.exit_code == 0 and "Robin Receiver" in result.output and "due" in result.output
    run_cutoff(Session)
    (delivery_id,) = gift_ids(Session, order_id)
    (folder,) = vendor.batches()
    result = runner.invoke(cli.app, ["batch", folder.name])
    assert result.exit_code == 0 and f"gq-{delivery_id}" in result.output and "accepted" in result.output
    report = vendor.report(
        "r.csv",
        [{"item_ref": f"gq-{delivery_id}", "event": "shipped", "carrier": "DHL", "tracking_number": "JD1"}],
    )
    result = runner.invoke(cli.app, ["reports"])
    assert result.exit_code == 0 and "r.csv: 1 changed" in result.output
    assert not report.exists()
    result = runner.invoke(cli.app, ["shipped"])
    assert result.exit_code == 0 and "JD1" in result.output
    result = runner.invoke(cli.app, ["resend", folder.name])
    assert result.exit_code == 1 and "every card is shipped or replaced" in result.output
    result = runner.invoke(cli.app, ["lost", "999999"])
    assert result.exit_code == 1 and "no physical card 999999" in result.output
