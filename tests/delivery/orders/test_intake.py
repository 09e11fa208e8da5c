from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from delivery import PlacedOrder, place_order
from delivery.errors import IdempotencyConflict, InvalidOrder
from delivery.models import Order, OrderLine, OrderStatus
from delivery.outbox import pending
from giftq.settings import reset_settings


def counts(Session: sessionmaker[Session]) -> tuple[int, int]:
    with Session() as s:
        return (
            s.scalar(select(func.count()).select_from(Order)) or 0,
            s.scalar(select(func.count()).select_from(OrderLine)) or 0,
        )


def test_places_an_order_and_enqueues_issuance_after_commit(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    payload = order_payload(lines=3, send_at={"local_time": "2031-12-24T18:00", "zone": "Europe/Paris"})
    placed = place_order(payload, idempotency_key="shop-1001")
    assert placed == PlacedOrder(placed.order_id, "received", created=True)
    assert broker_messages("orders") == [("giftq.process_order", {"order_id": placed.order_id})]
    with Session() as s:
        order = s.get_one(Order, placed.order_id)
        assert (order.status, order.line_count, order.reference) == ("received", 3, "SHOP-1001")
        lines = s.scalars(select(OrderLine).order_by(OrderLine.position)).all()
        assert [line.recipient_email for line in lines] == [
            "r0@example.com",
            "r1@example.com",
            "r2@example.com",
        ]
        assert lines[0].send_at_local == "2031-12-24T18:00:00"
        assert lines[0].due_at.isoformat() == "2031-12-24T17:00:00+00:00"
        assert lines[0].card_id is None


def test_same_key_same_order_returns_the_first_result(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    first = place_order(order_payload(), idempotency_key="k1")
    again = place_order(order_payload(), idempotency_key="k1")
    assert again == PlacedOrder(first.order_id, "received", created=False)
    assert counts(Session) == (1, 1)
    assert len(broker_messages("orders")) == 1


def test_same_key_other_order_is_a_conflict(Session: sessionmaker[Session], order_payload: Any) -> None:
    place_order(order_payload(), idempotency_key="k1")
    with pytest.raises(IdempotencyConflict, match="already used"):
        place_order(order_payload(amount=9999), idempotency_key="k1")
    assert counts(Session) == (1, 1)


def test_bad_input_writes_nothing(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    payload = order_payload(lines=2)
    payload["lines"][1]["amount"] = -1
    with pytest.raises(InvalidOrder, match=r"order\.lines\.1\.amount"):
        place_order(payload, idempotency_key="k1")
    assert counts(Session) == (0, 0)
    assert broker_messages("orders") == []


def test_in_the_callers_transaction_nothing_is_sent_before_commit_nor_after_rollback(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    with Session() as s:
        with s.begin():
            placed = place_order(order_payload(), idempotency_key="k1", session=s)
            assert [m.task for m in pending(s)] == ["giftq.process_order"]
            assert broker_messages("orders") == []
        assert broker_messages("orders") == [("giftq.process_order", {"order_id": placed.order_id})]

    with Session() as s, pytest.raises(RuntimeError), s.begin():
        place_order(order_payload(), idempotency_key="k2", session=s)
        raise RuntimeError("the storefront's own transaction failed")
    assert broker_messages("orders") == []
    assert counts(Session) == (1, 1)


def test_broker_down_loses_no_order(
    Session: sessionmaker[Session],
    order_payload: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from delivery.worker.celery_app import reset_app

    monkeypatch.setenv("GIFTQ_BROKER_URL", "redis://127.0.0.1:1/0")
    reset_settings()
    reset_app()
    with caplog.at_level(logging.WARNING, logger="delivery.outbox"):
        placed = place_order(order_payload(), idempotency_key="k1")
    assert "the sweeper will retry" in caplog.text
    with Session() as s:
        assert s.get_one(Order, placed.order_id).status == OrderStatus.RECEIVED


def test_racing_requests_with_one_key_make_one_order(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    results: list[PlacedOrder | BaseException] = []
    barrier = threading.Barrier(4)

    def place() -> None:
        barrier.wait()
        try:
            results.append(place_order(order_payload(), idempotency_key="same"))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=place) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, PlacedOrder) for r in results), results
    placed = [r for r in results if isinstance(r, PlacedOrder)]
    assert len({r.order_id for r in placed}) == 1
    assert sum(r.created for r in placed) == 1
    assert counts(Session) == (1, 1)


@pytest.mark.parametrize("one_statement_max_lines", [1000, 2], ids=["one statement", "two statements"])
def test_both_ways_of_writing_an_order_keep_it_whole_and_idempotent(
    Session: sessionmaker[Session],
    order_payload: Any,
    broker_messages: Any,
    monkeypatch: pytest.MonkeyPatch,
    one_statement_max_lines: int,
) -> None:
    # PostgreSQL writes an order of up to this many lines in one statement, a bigger
    # one (and every order on SQLite) as the order row, then its lines.
    from delivery.orders import intake

    monkeypatch.setattr(intake, "ONE_STATEMENT_MAX_LINES", one_statement_max_lines)
    payload = order_payload(lines=3)
    payload["lines"][1]["recipient"] = {"name": "Kim", "email": "kim@example.com", "locale": "de-DE"}
    first = place_order(payload, idempotency_key="both")
    assert place_order(payload, idempotency_key="both") == PlacedOrder(first.order_id, "received", False)
    with pytest.raises(IdempotencyConflict):
        place_order(order_payload(lines=1), idempotency_key="both")
    assert counts(Session) == (1, 3)
    assert broker_messages("orders") == [("giftq.process_order", {"order_id": first.order_id})]
    with Session() as s:
        lines = s.scalars(select(OrderLine).order_by(OrderLine.position)).all()
        assert [(line.order_id, line.position, line.recipient_email) for line in lines] == [
            (first.order_id, 0, "r0@example.com"),
            (first.order_id, 1, "kim@example.com"),
            (first.order_id, 2, "r2@example.com"),
        ]
        assert lines[1].recipient_locale == "de_DE"
        assert lines[0].message == "Happy birthday!\nLove, Pat"
        assert lines[0].due_at.tzinfo is not None
