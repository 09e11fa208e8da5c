"""The fulfilment tasks in a real Celery worker (``-Q fulfilment``) on PostgreSQL and Redis:
the due dispatcher's message makes the batch, beat's tasks are routed and run by name,
and the vendor's report file activates the card."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey, SealedBox
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from delivery import due
from delivery.channels.email.sink import SmtpServerThread
from delivery.models import Delivery, DeliveryKind
from delivery.states import DeliveryStatus as S
from giftq.db import make_engine
from ledger import get_card
from ledger.models import CardStatus


@pytest.fixture(scope="module")
def _module_worker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, conftest: Any
) -> Iterator[tuple[Any, PrivateKey]]:
    tmp = tmp_path_factory.mktemp("fulfilment")
    key = PrivateKey.generate()
    with (
        conftest.module_database("postgresql", request, tmp) as url,
        conftest.module_redis(14) as broker,
        SmtpServerThread(conftest.ScriptedSmtp(), "127.0.0.1", 0) as server,
    ):
        env = conftest.pipeline_env(
            url,
            broker,
            server.port,
            tmp / "var",
            GIFTQ_FULFILMENT_BACKEND="file",
            GIFTQ_FULFILMENT_DROP_DIR=str(tmp / "drop"),
            GIFTQ_FULFILMENT_INBOX_DIR=str(tmp / "inbox"),
            GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY=base64.b64encode(bytes(key.public_key)).decode(),
        )
        worker = conftest.WorkerProcess(env, tmp / "worker.log", "-Q", "fulfilment", "-c", "1")
        worker.start()
        engine = make_engine(url)
        try:
            yield (
                conftest.Pipeline(
                    url, broker, None, env, sessionmaker(engine, expire_on_commit=False), worker
                ),
                key,
            )
        finally:
            worker.stop()
            engine.dispose()


def test_the_fulfilment_tasks_run_in_a_worker(
    _module_worker: tuple[Any, PrivateKey], conftest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from delivery import place_order
    from delivery.orders import processing

    pipeline, key = _module_worker
    conftest.use_pipeline(pipeline, monkeypatch)
    Session = pipeline.Session
    address = {
        "line1": "1 Main St",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    }
    placed = place_order(
        {
            "purchaser": {"name": "Pat", "email": "pat@example.com"},
            "lines": [
                {
                    "channel": "physical",
                    "amount": 1000,
                    "marketplace": "US",
                    "recipient": {"name": "R", "address": address},
                }
            ],
        },
        idempotency_key="worker-1",
    )
    with Session.begin() as s:
        processing.issue_next_chunk(s, placed.order_id)
    with Session() as s:
        gift = s.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.GIFT)).one()

    # The cut-off comes: the due dispatcher queues the card and sends giftq.dispatch_physical.
    with Session.begin() as s:
        assert due.release_due(s, now=gift.due_at) == [gift.id]
    drop = Path(pipeline.env["GIFTQ_FULFILMENT_DROP_DIR"])
    folder = conftest.wait_until(
        lambda: [p for p in drop.iterdir() if not p.name.startswith(".")] if drop.exists() else [],
        what="the batch in the drop folder",
    )[0]
    (row,) = list(csv.DictReader(io.StringIO((folder / "manifest.csv").read_text(), newline="")))
    assert row["item_ref"] == f"gq-{gift.id}"
    code = SealedBox(key).decrypt(base64.b64decode(row["code_sealed"])).decode()
    conftest.wait_until(lambda: pipeline.deliveries(id=gift.id)[0].status == S.SENT, what="sent")

    # Beat's tasks, sent by name, are routed to the fulfilment queue and run.
    batch_task = pipeline.send("giftq.fulfilment_batch")
    inbox = Path(pipeline.env["GIFTQ_FULFILMENT_INBOX_DIR"])
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / ".r.tmp").write_text(
        f"item_ref,event,carrier,tracking_number\r\ngq-{gift.id},shipped,USPS,9400100\r\n"
    )
    (inbox / ".r.tmp").rename(inbox / "r.csv")
    pipeline.send("giftq.fulfilment_reports")
    conftest.wait_until(lambda: pipeline.deliveries(id=gift.id)[0].status == S.DELIVERED, what="shipped")
    with Session() as s:
        assert get_card(s, gift.card_id or 0).status == CardStatus.ACTIVE
    log = pipeline.worker.log()
    assert f"giftq.fulfilment_batch[{batch_task}] succeeded" in log
    assert "giftq.fulfilment_reports[" in log and "'applied': 1" in log
    assert code not in log and code.replace("-", "") not in log
