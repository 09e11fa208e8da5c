"""The vendor's reports: refused with the reason and changing nothing when they do not
apply, all or nothing per file, and idempotent; the signed callback the same way."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from delivery.channels.physical import reports
from delivery.channels.physical.errors import BadSignature, ReportRefused
from delivery.channels.physical.models import FulfilmentReport
from delivery.models import Delivery, DeliveryKind
from delivery.states import DeliveryStatus as S
from giftq.settings import reset_settings
from ledger import get_card
from ledger.models import CardStatus


@pytest.fixture
def sent(Session: sessionmaker[Any], vendor: Any, physical_order: Any, run_cutoff: Any) -> list[int]:
    """Three physical cards with the vendor (``sent``); their delivery ids."""
    order_id = physical_order(lines=3)
    assert run_cutoff(Session).sent == 3
    with Session() as s:
        return list(
            s.scalars(
                select(Delivery.id)
                .where(Delivery.order_id == order_id, Delivery.kind == DeliveryKind.GIFT)
                .order_by(Delivery.id)
            )
        )


def state(Session: sessionmaker[Any]) -> tuple[Any, ...]:
    """Everything a report may change: deliveries, cards, reports recorded."""
    with Session() as s:
        deliveries = tuple(s.execute(select(Delivery.id, Delivery.status).order_by(Delivery.id)).all())
        cards = tuple(get_card(s, d.card_id).status for d in s.scalars(select(Delivery)) if d.card_id)
        recorded = s.scalar(select(func.count()).select_from(FulfilmentReport))
    return deliveries, cards, recorded


def shipped(delivery_id: int, tracking: str = "1Z999AA10123456784") -> dict[str, str]:
    return {
        "item_ref": f"gq-{delivery_id}",
        "event": "shipped",
        "carrier": "UPS",
        "tracking_number": tracking,
    }


def test_a_file_with_one_bad_row_changes_nothing_and_names_every_bad_row(
    Session: sessionmaker[Any], vendor: Any, sent: list[int]
) -> None:
    before = state(Session)
    vendor.report(
        "mixed.csv",
        [
            shipped(sent[0]),  # fine on its own
            {"item_ref": "gq-999999", "event": "shipped", "carrier": "UPS", "tracking_number": "1"},
            {"item_ref": f"gq-{sent[1]}", "event": "delivered"},
            {"item_ref": f"gq-{sent[2]}", "event": "shipped", "carrier": "UPS"},
            {"item_ref": "", "event": "lost"},
            {
                "item_ref": f"gq-{sent[2]}",
                "event": "shipped",
                "carrier": "DHL",
                "tracking_number": "JD01<script>",
            },
        ],
    )
    (result,) = reports.process_inbox(Session)
    assert result.applied is None
    assert [(p.row, p.reason) for p in result.problems] == [
        (2, "unknown item_ref: no physical card of ours has it"),
        (3, "unknown event 'delivered' (known: shipped, lost, damaged)"),
        (4, "a shipped card needs carrier and tracking_number"),
        (5, "item_ref is missing"),
        (6, "tracking_number must be letters, digits, spaces and dashes"),
    ]
    assert state(Session) == before
    assert not (vendor.inbox / "mixed.csv").exists()
    errors = (vendor.inbox / "refused" / "mixed.csv.errors.txt").read_text()
    assert "row 2 (gq-999999): unknown item_ref" in errors and "row 5 (no item_ref)" in errors
    assert (vendor.inbox / "refused" / "mixed.csv").exists()


def test_reports_that_do_not_apply_are_refused_with_the_reason(
    Session: sessionmaker[Any], vendor: Any, sent: list[int], physical_order: Any
) -> None:
    with Session.begin() as s:
        reports.apply(s, *reports.parse_records([(1, shipped(sent[0]))]), source="test")
    with Session.begin() as s:
        reports.apply(
            s, *reports.parse_records([(1, {"item_ref": f"gq-{sent[1]}", "event": "damaged"})]), source="t"
        )
    not_yet = physical_order()  # its card waits for the next cut-off
    with Session() as s:
        waiting = s.scalars(
            select(Delivery.id).where(Delivery.order_id == not_yet, Delivery.kind == "gift")
        ).one()
    before = state(Session)
    cases = [
        ({"item_ref": f"gq-{sent[0]}", "event": "lost"}, "already shipped with UPS 1Z999AA10123456784 on "),
        (shipped(sent[0], "OTHER-1"), "already shipped with UPS 1Z999AA10123456784"),
        (shipped(sent[1]), "reported damaged before: its card was voided and replaced"),
        ({"item_ref": f"gq-{sent[1]}", "event": "lost"}, "reported damaged before"),
        (shipped(waiting), "not with the vendor: the delivery is scheduled"),
        ({"item_ref": "GQ-12", "event": "shipped"}, "a shipped card needs carrier"),
        ({"item_ref": "12", "event": "lost"}, "unknown item_ref"),
        (
            {**shipped(sent[2]), "tracking_url": "http://evil.example/"},
            "tracking_url must be an https:// URL",
        ),
        ({**shipped(sent[2]), "carrier": "UPS\r\nBcc: x"}, "carrier holds control characters"),
    ]
    for record, reason in cases:
        with pytest.raises(ReportRefused) as caught, Session.begin() as s:
            reports.apply(s, *reports.parse_records([(1, record)]), source="test")
        (problem,) = caught.value.problems
        assert problem.reason.startswith(reason), (record, problem)
        assert "nothing changed" in str(caught.value)
    assert state(Session) == before


def test_the_same_report_twice_changes_nothing_the_second_time(
    Session: sessionmaker[Any], vendor: Any, sent: list[int], smtp: Any
) -> None:
    rows = [shipped(sent[0]), {"item_ref": f"gq-{sent[1]}", "event": "lost", "detail": "torn"}]
    vendor.report("day-1.csv", rows)
    (first,) = reports.process_inbox(Session)
    assert first.applied is not None and set(first.applied.changed) == {f"gq-{sent[0]}", f"gq-{sent[1]}"}
    after_first = state(Session)
    # The vendor sends the same file again (or we crashed before moving it to done/).
    vendor.report("day-1.csv", rows)
    (second,) = reports.process_inbox(Session)
    assert second.applied is not None
    assert second.applied.changed == () and set(second.applied.unchanged) == {
        f"gq-{sent[0]}",
        f"gq-{sent[1]}",
    }
    assert state(Session) == after_first
    done = sorted(p.name for p in (vendor.inbox / "done").iterdir())
    assert len(done) == 2 and "day-1.csv" in done  # the second kept beside the first
    with Session() as s:
        replacements = s.scalars(
            select(Delivery).where(Delivery.parent_id == sent[1], Delivery.kind == "gift")
        ).all()
        assert len(replacements) == 1
        assert get_card(s, replacements[0].card_id or 0).status == CardStatus.INACTIVE


def test_a_malformed_file_is_refused_whole(Session: sessionmaker[Any], vendor: Any, sent: list[int]) -> None:
    vendor.inbox.mkdir(parents=True)
    (vendor.inbox / "latin1.csv").write_bytes(
        "item_ref,event,detail\ngq-1,lost,d\xe9chir\xe9\n".encode("latin-1")
    )
    (vendor.inbox / "columns.csv").write_text("item_ref,event,tracking_no\ngq-1,shipped,1\n")
    (vendor.inbox / "empty.csv").write_text("item_ref,event\n")
    (vendor.inbox / "cells.csv").write_text(f"item_ref,event\ngq-{sent[0]},lost,extra\n")
    (vendor.inbox / ".still-writing.csv").write_text("half")
    results = {r.name: [str(p) for p in r.problems] for r in reports.process_inbox(Session)}
    assert results == {
        "cells.csv": [f"row 1 (gq-{sent[0]}): more cells than columns"],
        "columns.csv": [
            "row 0 (no item_ref): the header has unknown columns tracking_no "
            "(columns: item_ref, event, carrier, tracking_number, tracking_url, detail)"
        ],
        "empty.csv": ["row 0 (no item_ref): the report has no rows"],
        "latin1.csv": ["row 0 (no item_ref): the file is not UTF-8"],
    }
    assert (vendor.inbox / ".still-writing.csv").exists()
    assert state(Session)[2] == 0


def sign(body: bytes, secret: str = "vendor-secret") -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_the_callback_checks_the_signature_and_applies_all_or_nothing(
    Session: sessionmaker[Any], vendor: Any, sent: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIFTQ_FULFILMENT_CALLBACK_SECRET", "vendor-secret")
    reset_settings()
    good = json.dumps({"reports": [shipped(sent[0])]}).encode()
    before = state(Session)
    for signature in (None, "", sign(good, "wrong"), sign(good + b" ")):
        with pytest.raises(BadSignature), Session.begin() as s:
            reports.handle_callback(s, good, signature)
    mixed = json.dumps(
        {"reports": [shipped(sent[0]), {"item_ref": f"gq-{sent[1]}", "event": "gone"}]}
    ).encode()
    with pytest.raises(ReportRefused) as caught, Session.begin() as s:
        reports.handle_callback(s, mixed, sign(mixed))
    assert [p.row for p in caught.value.problems] == [2]
    assert state(Session) == before
    with Session.begin() as s:
        applied = reports.handle_callback(s, good, sign(good))
    assert applied.changed == (f"gq-{sent[0]}",)
    with Session.begin() as s:
        again = reports.handle_callback(s, good, sign(good))
    assert (again.changed, again.unchanged) == ((), (f"gq-{sent[0]}",))
    with Session() as s:
        assert s.get_one(Delivery, sent[0]).status == S.DELIVERED
        report = s.scalars(select(FulfilmentReport)).one()
        assert (report.source, report.carrier) == ("callback", "UPS")
