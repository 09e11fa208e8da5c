"""The HTTP back end against a fake vendor (a local HTTP server) that speaks the documented
contract: JSON batches with sealed codes, ``Idempotency-Key`` and bearer token; 2xx and 409
accepted, 503 retried in a new batch with the same cards, 400 failed for good."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from delivery import dispatch, due
from delivery.channels import registry
from delivery.channels.physical import batches
from delivery.channels.physical.manifest import COLUMNS
from delivery.channels.physical.models import BatchStatus, FulfilmentBatch
from delivery.models import Delivery, DeliveryAttempt, DeliveryKind
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from giftq.settings import reset_settings

TOKEN = "vendor-token-1"


@dataclass
class FakeVendor:
    """Keeps every request; answers from ``script`` in turn, then as the contract says."""

    script: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append((headers, body))
            if headers.get("authorization") != f"Bearer {TOKEN}":
                return 401, {"error": "bad token"}
            problems = contract_problems(headers, body)
            if problems:
                return 400, {"error": problems}
            key = headers["idempotency-key"]
            seen = 409 if key in self.accepted else 201
            status = self.script.pop(0) if self.script else seen
            if 200 <= status < 300:
                self.accepted.add(key)
            return status, {"batch_id": body["batch_id"], "received": len(body["cards"])}


def contract_problems(headers: dict[str, str], body: dict[str, Any]) -> list[str]:
    problems = []
    if not headers.get("idempotency-key", "").startswith(str(body.get("batch_id"))):
        problems.append("Idempotency-Key must name the batch")
    if not str(headers.get("content-type", "")).startswith("application/json"):
        problems.append("JSON only")
    if set(body) != {"batch_id", "resend", "created_at", "cards", "packing_slips_pdf"}:
        problems.append(f"fields: {sorted(body)}")
    if not base64.b64decode(body.get("packing_slips_pdf", "")).startswith(b"%PDF-"):
        problems.append("packing_slips_pdf must be a PDF")
    for card in body.get("cards", []):
        if set(card) != set(COLUMNS) - {"batch_id"}:
            problems.append(f"card fields: {sorted(card)}")
    return problems


@pytest.fixture
def fake_vendor(vendor: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVendor]:
    fake = FakeVendor()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length))
            status, answer = fake.answer({k.lower(): v for k, v in self.headers.items()}, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GIFTQ_FULFILMENT_BACKEND", "http")
    monkeypatch.setenv("GIFTQ_FULFILMENT_HTTP_URL", f"http://127.0.0.1:{server.server_port}/batches")
    monkeypatch.setenv("GIFTQ_FULFILMENT_HTTP_TOKEN", TOKEN)
    monkeypatch.setenv("GIFTQ_FULFILMENT_HTTP_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "[1, 1]")
    monkeypatch.setenv("GIFTQ_RETRY_JITTER", "0")
    reset_settings()
    registry.close_all()
    yield fake
    registry.close_all()
    server.shutdown()
    server.server_close()


def gifts(Session: sessionmaker[Any]) -> list[Delivery]:
    with Session() as s:
        return list(
            s.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.GIFT).order_by(Delivery.id))
        )


def test_a_batch_refused_with_503_goes_again_with_the_same_cards_in_a_new_batch(
    Session: sessionmaker[Any], vendor: Any, fake_vendor: FakeVendor, physical_order: Any, run_cutoff: Any
) -> None:
    physical_order(
        lines=2,
        marketplace="DE",
        recipient={
            "name": "Kim Schäfer",
            "address": {"line1": "Hauptstr. 1", "city": "Köln", "postal_code": "50667", "country": "DE"},
        },
    )
    fake_vendor.script = [503]
    report = run_cutoff(Session)
    assert (report.claimed, report.sent, report.retrying) == (2, 0, 2)
    assert {g.status for g in gifts(Session)} == {S.FAILED_RETRYABLE}
    with Session() as s:
        (failed,) = s.scalars(select(FulfilmentBatch)).all()
        assert failed.status == BatchStatus.FAILED and failed.response.startswith("HandOverFailed: HTTP 503")
        answers = s.scalars(select(DeliveryAttempt.code)).all()
        assert answers == [503, 503]

    # The retry comes due: the same cards, in a batch of a new name, accepted.
    report = batches.run(Session, release_due=utcnow() + dt.timedelta(seconds=5))
    assert report.sent == 2
    (first_headers, first), (second_headers, second) = fake_vendor.requests
    assert first_headers["idempotency-key"] == first["batch_id"] == failed.ref
    assert second["batch_id"] != failed.ref and second_headers["idempotency-key"] == second["batch_id"]
    assert [c["item_ref"] for c in first["cards"]] == [c["item_ref"] for c in second["cards"]]
    codes = [vendor.open(c) for c in second["cards"]]
    assert codes == [vendor.open(c) for c in first["cards"]]  # sealed anew, the same codes
    assert first["cards"][0]["code_sealed"] != second["cards"][0]["code_sealed"]
    card = second["cards"][0]
    assert (card["recipient_name"], card["city"], card["amount_text"]) == (
        "Kim Schäfer",
        "Köln",
        "25,00\xa0€",
    )
    assert {g.status for g in gifts(Session)} == {S.SENT}
    with Session() as s:
        refs = {b.ref: b.status for b in s.scalars(select(FulfilmentBatch))}
    assert refs == {failed.ref: BatchStatus.FAILED, second["batch_id"]: BatchStatus.ACCEPTED}


def test_a_rerun_after_a_crash_posts_the_same_batch_and_409_counts_as_accepted(
    Session: sessionmaker[Any], vendor: Any, fake_vendor: FakeVendor, physical_order: Any
) -> None:
    physical_order(lines=2)
    sender = registry.get("physical")
    with Session.begin() as s:
        due.release_due(s, now=utcnow() + dt.timedelta(days=3))
        composed = dispatch.claim(s, sender, [], claimer="task-1", fill_to=10)
    dispatch.send(sender, composed, lambda _: None)  # the vendor took it; then the worker died
    assert {g.status for g in gifts(Session)} == {S.SENDING}

    report = batches.run(Session, claimer="task-1")  # the redelivered task
    assert report.sent == 2
    (h1, b1), (h2, b2) = fake_vendor.requests
    assert h1["idempotency-key"] == h2["idempotency-key"] == b1["batch_id"] == b2["batch_id"]
    with Session() as s:
        (batch,) = s.scalars(select(FulfilmentBatch)).all()
        assert batch.status == BatchStatus.ACCEPTED and "409" in (batch.response or "")
    first, second = gifts(Session)
    assert first.possible_duplicates == 1 and second.possible_duplicates == 0


def test_an_answer_that_will_never_change_fails_the_cards_for_good(
    Session: sessionmaker[Any], vendor: Any, fake_vendor: FakeVendor, physical_order: Any, run_cutoff: Any
) -> None:
    physical_order()
    fake_vendor.script = [422]
    report = run_cutoff(Session)
    assert (report.failed, report.retrying) == (1, 0)
    (gift,) = gifts(Session)
    assert gift.status == S.FAILED_PERMANENT
    with Session() as s:
        notices = s.scalars(select(Delivery.kind).where(Delivery.kind == DeliveryKind.FAILED_NOTICE)).all()
    assert notices == [DeliveryKind.FAILED_NOTICE]
