"""An order sent to Celery's default queue is placed like any other.

A storefront's Celery client that names no queue publishes to ``celery``. Here such a
client is a subprocess with a bare ``celery.Celery(broker=...)`` app that imports nothing
of giftq; the worker is started with the queue list the README documents.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from delivery.channels.email.sink import SmtpServerThread
from delivery.models import Order, OrderLine
from giftq.db import make_engine

ROOT = Path(__file__).resolve().parents[2]

BARE_CLIENT = """
import json, sys

from celery import Celery

app = Celery(broker=sys.argv[1])  # no routes, no queues: Celery's defaults
order = json.loads(sys.argv[2])
app.send_task("giftq.place_order", kwargs={"order": order, "idempotency_key": "bare-client-1"})
app.close()
ours = sorted(m for m in sys.modules if m.split(".")[0] in {"giftq", "delivery", "ledger", "worker"})
print(json.dumps({"default_queue": app.conf.task_default_queue, "giftq_modules": ours}))
"""


def documented_worker_commands() -> list[list[str]]:
    """The ``celery -A worker worker`` commands of the README's "Tasks and queues"."""
    readme = (ROOT / "README.md").read_text()
    section = re.split(r"\n#{2,3} ", readme.split("\n### Tasks and queues\n", 1)[1], maxsplit=1)[0]
    return [
        line.split("#", 1)[0].split()
        for line in section.splitlines()
        if re.match(r"celery -A worker worker\b", line)
    ]


def test_every_documented_orders_worker_consumes_the_default_queue() -> None:
    commands = documented_worker_commands()
    assert commands, "the README documents no worker command"
    for command in commands:
        queues = command[command.index("-Q") + 1].split(",")
        assert ("orders" in queues) == ("celery" in queues), command


def test_an_order_sent_without_a_queue_is_placed_and_issued(
    redis_url: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    conftest: Any,
) -> None:
    smtp = conftest.ScriptedSmtp()
    order = conftest.make_order(2)
    with (
        conftest.module_database("sqlite", request, tmp_path) as url,
        SmtpServerThread(smtp, "127.0.0.1", 0) as server,
    ):
        env = conftest.pipeline_env(url, redis_url, server.port, tmp_path / "var")
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTQ_")}
        sent = subprocess.run(
            [sys.executable, "-c", BARE_CLIENT, redis_url, json.dumps(order)],
            cwd=tmp_path,
            env=client_env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr.decode()
        client = json.loads(sent.stdout)
        assert client == {"default_queue": "celery", "giftq_modules": []}
        broker = redis.Redis.from_url(redis_url)
        try:
            assert broker.llen("celery") == 1  # it waits where a bare client puts it
        finally:
            broker.close()

        small_host = documented_worker_commands()[0]
        queues = small_host[small_host.index("-Q") + 1]
        worker = conftest.WorkerProcess(env, tmp_path / "worker.log", "-Q", queues, "-c", "1")
        engine = make_engine(url)
        sessions = sessionmaker(engine)
        try:
            worker.start()

            def issued() -> Order | None:
                with sessions() as s:
                    placed = s.scalar(select(Order).where(Order.idempotency_key == "bare-client-1"))
                    return placed if placed is not None and placed.status == "issued" else None

            placed = conftest.wait_until(issued, what="the order to be placed and issued")
            with sessions() as s:
                lines = list(s.scalars(select(OrderLine).where(OrderLine.order_id == placed.id)))
            assert len(lines) == 2
            assert all(line.card_id is not None for line in lines)
            smtp.wait("r1@example.com")
            assert len(smtp.to("r0@example.com")) == len(smtp.to("r1@example.com")) == 1
        finally:
            worker.stop()
            engine.dispose()
