"""A real prefork worker serves metrics from its main process, counting its children's tasks,
and logs JSON lines with the task id bound."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import sessionmaker

from giftq.db import make_engine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_worker_serves_its_childrens_counts_and_the_database_gauges(
    pg_url: str, redis_url: str, tmp_path: Path, conftest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = conftest.pipeline_env(
        pg_url,
        redis_url,
        9,  # no mail goes out here
        tmp_path / "var",
        GIFTQ_WORKER_METRICS_PORT=str(port),
        GIFTQ_LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
    )
    engine = make_engine(pg_url)
    pipeline = conftest.Pipeline(pg_url, redis_url, None, env, sessionmaker(engine))
    conftest.use_pipeline(pipeline, monkeypatch)
    worker = conftest.WorkerProcess(env, tmp_path / "worker.log", "-Q", "scheduler", "-c", "2")
    sweep = ("giftq_tasks_total", (("state", "SUCCESS"), ("task", "giftq.sweep")))
    try:
        worker.start()
        task_ids = [pipeline.send("giftq.sweep") for _ in range(3)]
        samples = conftest.wait_until(
            lambda: (s := _samples(port)).get(sweep, 0) >= 3 and s, what="three sweeps counted"
        )
    finally:
        worker.stop()
        engine.dispose()
    # Run in the pool's children, counted in the main process's answer.
    assert samples[sweep] == 3
    assert samples[("giftq_database_up", ())] == 1
    assert ("giftq_deliveries", (("channel", "email"), ("status", "queued"))) in samples
    assert list(multiproc.glob("counter_*.db"))

    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    assert lines, worker.log()
    bound = {line.get("task_id") for line in lines if line.get("task") == "giftq.sweep"}
    assert set(task_ids) <= bound, worker.log()
