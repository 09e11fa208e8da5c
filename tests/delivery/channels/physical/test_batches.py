"""Batches are idempotent and atomic: a run that dies after the hand-over sends the same
batch again under the same name (the file back end sees it is there and writes nothing),
a batch folder is never visible half-written, and a failed hand-over leaves nothing
behind and puts the cards on the retry schedule."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from delivery import dispatch, due, sweeper
from delivery.channels import registry
from delivery.channels.physical import batches
from delivery.channels.physical.backends import FileDrop
from delivery.channels.physical.manifest import Batch, ManifestRow
from delivery.channels.physical.models import BatchStatus, FulfilmentBatch, FulfilmentItem
from delivery.models import Delivery, DeliveryKind
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from giftq.settings import reset_settings

LATER = dt.timedelta(days=3)


def gifts(Session: sessionmaker[Any]) -> list[Delivery]:
    with Session() as s:
        return list(
            s.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.GIFT).order_by(Delivery.id))
        )


def claim(Session: sessionmaker[Any], claimer: str) -> list[Any]:
    with Session.begin() as s:
        due.release_due(s, now=utcnow() + LATER)
        return dispatch.claim(s, registry.get("physical"), [], claimer=claimer, fill_to=100)


def test_a_run_that_died_after_the_hand_over_is_not_shipped_twice(
    Session: sessionmaker[Any], vendor: Any, physical_order: Any
) -> None:
    physical_order(lines=3)
    composed = claim(Session, "task-1")
    dispatch.send(registry.get("physical"), composed, lambda _: None)  # dropped; then the worker died
    (folder,) = vendor.batches()
    written = (folder / "manifest.csv").read_bytes()

    # The sweeper takes the cards back after the time limit; the next run claims them.
    with Session.begin() as s:
        sweeper.sweep(s, now=utcnow() + LATER)
    assert {g.status for g in gifts(Session)} == {S.QUEUED}
    report = batches.run(Session, claimer="task-2")
    assert report.sent == 3
    assert vendor.batches() == [folder] and (folder / "manifest.csv").read_bytes() == written
    with Session() as s:
        (batch,) = s.scalars(select(FulfilmentBatch)).all()
        assert (batch.ref, batch.status) == (folder.name, BatchStatus.ACCEPTED)
        assert "already in the drop folder" in (batch.response or "")
        assert len(s.scalars(select(FulfilmentItem)).all()) == 3
    assert [g.possible_duplicates for g in gifts(Session)] == [1, 0, 0]


def test_a_run_that_died_before_the_hand_over_sends_the_batch_under_its_name(
    Session: sessionmaker[Any], vendor: Any, physical_order: Any
) -> None:
    physical_order(lines=2)
    claim(Session, "task-1")  # the batch is recorded, then the worker died
    assert vendor.batches() == []
    report = batches.run(Session, claimer="task-1")  # the same task, redelivered
    assert report.sent == 2
    with Session() as s:
        (batch,) = s.scalars(select(FulfilmentBatch)).all()
    assert [p.name for p in vendor.batches()] == [batch.ref]
    assert len(vendor.rows(vendor.batches()[0])) == 2


def test_a_failed_hand_over_leaves_nothing_and_the_cards_retry_in_a_new_batch(
    Session: sessionmaker[Any], vendor: Any, physical_order: Any, run_cutoff: Any, monkeypatch: Any
) -> None:
    physical_order(lines=2)
    vendor.drop.parent.mkdir(parents=True, exist_ok=True)
    vendor.drop.write_text("not a folder")  # the share is broken
    report = run_cutoff(Session)
    assert (report.sent, report.retrying) == (0, 2)
    first = gifts(Session)
    assert {g.status for g in first} == {S.FAILED_RETRYABLE}
    assert "NotADirectoryError" in (first[0].last_error or "") or "FileExistsError" in (
        first[0].last_error or ""
    )

    vendor.drop.unlink()  # repaired
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "[1]")
    reset_settings()
    report = batches.run(Session, release_due=max(g.due_at for g in first))
    assert report.sent == 2
    with Session() as s:
        statuses = [b.status for b in s.scalars(select(FulfilmentBatch).order_by(FulfilmentBatch.id))]
    assert statuses == [BatchStatus.FAILED, BatchStatus.ACCEPTED]
    (folder,) = vendor.batches()
    assert len(vendor.rows(folder)) == 2


def row(number: int, **overrides: Any) -> ManifestRow:
    fields: dict[str, Any] = {
        "item_ref": f"gq-{number}",
        "order_ref": "SHOP-1",
        "order_line": number,
        "marketplace": "US",
        "design": "classic",
        "amount_minor": 2500,
        "currency": "USD",
        "amount_text": "$25.00",
        "recipient_name": 'Robin, "Rob" Receiver',
        "address_line1": "1 Main St",
        "address_line2": "",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
        "sender_name": "Pat",
        "message": "Line one,\nline two",
        "key_id": "00000000",
        "code_sealed": "c2VhbGVk",
    }
    fields.update(overrides)
    return ManifestRow(**fields)


def test_a_batch_folder_is_never_visible_half_written(tmp_path: Path) -> None:
    drop = FileDrop(tmp_path / "drop")
    rows = tuple(row(n) for n in range(1, 5_001))
    slips = b"%PDF-1.4\n" + b"0" * 5_000_000 + b"\n%%EOF\n"
    seen: list[object] = []
    done = threading.Event()

    def watch() -> None:
        # What a vendor polling the folder sees: only complete batches, or nothing.
        while not done.is_set():
            for folder in (tmp_path / "drop").glob("[!.]*"):
                try:
                    text = (folder / "manifest.csv").read_bytes().decode()
                    cards = len(list(csv.DictReader(io.StringIO(text, newline=""))))
                    seen.append((cards, (folder / "packing-slips.pdf").stat().st_size))
                except Exception as exc:  # a missing or cut file: exactly what must not be
                    seen.append(repr(exc))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        answer = drop.hand_over(Batch("GQ-20260101-000001", utcnow(), rows), slips)
        while not seen and watcher.is_alive():  # let it look at least once at the result
            time.sleep(0.01)
    finally:
        done.set()
        watcher.join()
    assert answer == "dropped GQ-20260101-000001/ (5000 cards)"
    assert seen and set(seen) == {(5_000, len(slips))}
    assert [p.name for p in (tmp_path / "drop").iterdir()] == ["GQ-20260101-000001"]
    # Again (a rerun): nothing is written twice.
    assert "already in the drop folder" in drop.hand_over(
        Batch("GQ-20260101-000001", utcnow(), rows[:1]), b""
    )


def test_a_hand_over_that_fails_half_way_leaves_nothing(tmp_path: Path) -> None:
    drop = FileDrop(tmp_path / "drop")
    broken = (row(1), row(2, recipient_name="\ud800"))  # cannot be written as UTF-8
    try:
        drop.hand_over(Batch("GQ-20260101-000002", utcnow(), broken), b"%PDF-1.4\n%%EOF\n")
    except UnicodeEncodeError:
        pass
    else:
        raise AssertionError("the hand-over should have failed")
    assert list((tmp_path / "drop").iterdir()) == []
