"""Redis restarted under load: the worker reconnects and keeps consuming.

A private ``redis-server`` (append-only file, fsync on every write, so that queued and
unacknowledged messages survive) is stopped and started again several times while a real
prefork worker has a batch in flight: one pool process waits on a slow SMTP relay with its
message unacknowledged while the consumer waits on Redis for more. At each connection loss
the worker tries to put its unacknowledged messages back; under Celery 5.7 that path
raised ``AttributeError`` out of the consumer and the worker's main process exited (why:
pyproject.toml, next to the Celery range). The worker must still be alive after every
restart, an order sent after the last one must be delivered by it, and nothing sent
before may be lost (redelivery after the visibility timeout, and the sweeper).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import sessionmaker

from bench.services import RedisServer
from delivery.channels.email.sink import SmtpServerThread
from giftq.db import make_engine

RESTARTS = 4
LINES = 2
TIMINGS = {
    "GIFTQ_ISSUE_CHUNK_SIZE": "6",
    "GIFTQ_DISPATCH_BATCH_SIZE": "3",
    "GIFTQ_TASK_SOFT_TIME_LIMIT_SECONDS": "4",
    "GIFTQ_TASK_TIME_LIMIT_SECONDS": "5",
    "GIFTQ_RETRY_COUNTDOWN_MAX_SECONDS": "1",
    "GIFTQ_BROKER_VISIBILITY_TIMEOUT_SECONDS": "8",
    "GIFTQ_SWEEP_SENDING_AFTER_SECONDS": "6",
    "GIFTQ_SWEEP_STUCK_AFTER_SECONDS": "3",
    "GIFTQ_SCHEDULER_INTERVAL_SECONDS": "0.5",
    "GIFTQ_SWEEP_INTERVAL_SECONDS": "1",
}


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if os.environ.get("GIFTQ_REQUIRE_SERVICES") == "1":
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, appendfsync="always")
    server.start()
    yield server
    server.stop()


def test_worker_survives_redis_restarts_under_load(
    private_redis: RedisServer,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    conftest: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smtp = conftest.ScriptedSmtp()
    # A slow relay: a batch is still sending (its message unacknowledged) when Redis goes.
    smtp.delay = 1.0
    with (
        conftest.module_database("sqlite", request, tmp_path) as url,
        SmtpServerThread(smtp, "127.0.0.1", 0) as server,
    ):
        env = conftest.pipeline_env(url, private_redis.url, server.port, tmp_path / "var", **TIMINGS)
        engine = make_engine(url)
        pipeline = conftest.Pipeline(url, private_redis.url, smtp, env, sessionmaker(engine))
        conftest.use_pipeline(pipeline, monkeypatch)
        worker = conftest.WorkerProcess(
            env, tmp_path / "worker.log", "-Q", "orders,email,scheduler", "-c", "2", "-B"
        )
        try:
            worker.start()
            _restart_under_load(conftest, pipeline, private_redis, worker)
        finally:
            worker.stop()
            engine.dispose()


def _send_order(conftest: Any, pipeline: Any, name: str, lines: int) -> set[str]:
    order = conftest.make_order(lines)
    for i, line in enumerate(order["lines"]):
        line["recipient"]["email"] = f"{name}-r{i}@example.com"
    pipeline.send("giftq.place_order", order=order, idempotency_key=name)
    return {line["recipient"]["email"] for line in order["lines"]}


def _restart_under_load(conftest: Any, pipeline: Any, broker: RedisServer, worker: Any) -> None:
    smtp = pipeline.smtp
    recipients: set[str] = set()
    for restart in range(1, RESTARTS + 1):
        name = f"before{restart}"
        recipients |= _send_order(conftest, pipeline, name, LINES)
        # The relay has taken a recipient and sits on DATA: that batch is in flight.
        conftest.wait_until(
            lambda name=name: smtp.answers_to(f"{name}-r0@example.com"), what=f"{name} sending"
        )
        reconnected = worker.log().count("Connected to redis://")
        broker.restart()
        conftest.wait_until(
            lambda reconnected=reconnected: (
                worker.process.poll() is not None or worker.log().count("Connected to redis://") > reconnected
            ),
            what=f"the worker to reconnect after restart {restart}",
        )
        assert worker.process.poll() is None, f"the worker died at restart {restart}:\n{worker.log()[-5000:]}"

    # Sent after the last restart: consumed by the same worker process.
    smtp.delay = 0
    after = _send_order(conftest, pipeline, "after", 1)
    conftest.wait_until(lambda: smtp.to("after-r0@example.com"), what="the order sent after the restarts")
    # Nothing sent before was lost: the broker's restore, redelivery and the sweeper.
    conftest.wait_until(
        lambda: recipients | after <= {rcpt for rcpt, _ in smtp.accepted}, timeout=40, what="every gift"
    )
    assert worker.process.poll() is None, worker.log()[-5000:]
    assert "Unrecoverable error" not in worker.log()
