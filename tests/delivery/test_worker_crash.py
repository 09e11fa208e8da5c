"""A worker SIGKILLed in the middle of the work: no order is lost, no card issued twice.

Real Celery worker processes on Redis, on PostgreSQL and on SQLite. The SMTP server is
slow on purpose so that batches are in flight when the whole worker (main process, pool
children and embedded beat) is killed at once. A second worker then finishes the job:
the broker redelivers what was unacknowledged, and the sweeper puts deliveries left
``sending`` back in the queue. A message in flight at the kill may go out twice (at
least once); its code is the same both times.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from delivery.channels.email.sink import SmtpServerThread
from delivery.models import Delivery, Order, OrderLine
from giftq.db import make_engine
from ledger.models import Card

ORDERS, LINES = 3, 80
TIMINGS = {
    "GIFTQ_ISSUE_CHUNK_SIZE": "20",
    "GIFTQ_DISPATCH_BATCH_SIZE": "10",
    "GIFTQ_TASK_SOFT_TIME_LIMIT_SECONDS": "4",
    "GIFTQ_TASK_TIME_LIMIT_SECONDS": "5",
    "GIFTQ_RETRY_COUNTDOWN_MAX_SECONDS": "1",
    "GIFTQ_BROKER_VISIBILITY_TIMEOUT_SECONDS": "8",
    "GIFTQ_SWEEP_SENDING_AFTER_SECONDS": "6",
    "GIFTQ_SWEEP_STUCK_AFTER_SECONDS": "3",
    "GIFTQ_SCHEDULER_INTERVAL_SECONDS": "0.5",
    "GIFTQ_SWEEP_INTERVAL_SECONDS": "1",
}


@pytest.mark.parametrize("engine_kind", ["postgresql", "sqlite"])
def test_sigkill_mid_batch_loses_nothing_and_issues_nothing_twice(
    engine_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Any,
    conftest: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smtp = conftest.ScriptedSmtp()
    smtp.delay = 0.02
    with (
        conftest.module_database(engine_kind, request, tmp_path) as url,
        conftest.module_redis(14) as broker,
        SmtpServerThread(smtp, "127.0.0.1", 0) as server,
    ):
        env = conftest.pipeline_env(url, broker, server.port, tmp_path / "var", **TIMINGS)
        engine = make_engine(url)
        try:
            _crash_and_recover(
                conftest, conftest.Pipeline(url, broker, smtp, env, sessionmaker(engine)), monkeypatch
            )
        finally:
            engine.dispose()


def _crash_and_recover(conftest: Any, pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path = Path(pipeline.env["GIFTQ_DATA_DIR"]).parent
    smtp = pipeline.smtp
    env = pipeline.env
    conftest.use_pipeline(pipeline, monkeypatch)
    args = ("-Q", "orders,email,scheduler", "-c", "2", "-B")
    first = conftest.WorkerProcess(env, tmp_path / "first.log", *args)
    second = conftest.WorkerProcess(env, tmp_path / "second.log", *args)
    try:
        first.start()
        for n in range(ORDERS):
            order = conftest.make_order(LINES)
            for i, line in enumerate(order["lines"]):
                line["recipient"]["email"] = f"o{n}-r{i}@example.com"
            pipeline.send("giftq.place_order", order=order, idempotency_key=f"crash-{n}")
        conftest.wait_until(lambda: len(smtp.accepted) >= 30, what="sending to be under way")
        first.kill()

        unfinished = [d for d in pipeline.deliveries(kind="gift") if d.status != "sent"]
        with pipeline.Session() as s:
            placed = s.scalar(select(func.count()).select_from(Order))
        assert unfinished or placed < ORDERS, "the kill came too late to test anything"

        second.start()
        conftest.wait_until(
            lambda: len(pipeline.deliveries(kind="gift", status="sent")) == ORDERS * LINES,
            timeout=90,
            what="the second worker to finish every gift",
        )
    finally:
        first.stop()
        second.stop()

    with pipeline.Session() as s:
        assert [o.status for o in s.scalars(select(Order))] == ["issued"] * ORDERS
        lines = list(s.scalars(select(OrderLine)))
        assert len(lines) == ORDERS * LINES
        card_ids = [line.card_id for line in lines]
        assert None not in card_ids
        assert len(set(card_ids)) == ORDERS * LINES
        # The ledger holds exactly one card per line: nothing was issued twice.
        assert s.scalar(select(func.count()).select_from(Card)) == ORDERS * LINES
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.kind == "gift")) == (
            ORDERS * LINES
        )

    codes: dict[str, set[str]] = defaultdict(set)
    for rcpt, message in smtp.accepted:
        if rcpt.startswith("o"):
            codes[rcpt].update(conftest.codes_in(message))
    assert len(codes) == ORDERS * LINES  # every recipient got the gift
    assert all(len(c) == 1 for c in codes.values())  # twice at most, with the same code
    assert len({c for cs in codes.values() for c in cs}) == ORDERS * LINES
    gifts_sent = sum(1 for rcpt, _ in smtp.accepted if rcpt.startswith("o"))
    duplicates = gifts_sent - ORDERS * LINES
    # Each answer is recorded as it comes: at most the message in flight in each of the
    # two pool processes goes out again, never the rest of its batch.
    assert duplicates <= 2
    # And ops can see each one: the delivery counts a possible duplicate.
    with pipeline.Session() as s:
        flagged = s.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.kind == "gift", Delivery.possible_duplicates > 0)
        )
    assert duplicates <= flagged <= 2
