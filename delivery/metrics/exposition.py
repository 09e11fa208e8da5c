"""One scrape: this process's (or all processes') instruments and the database gauges.

Multiprocess mode. A Celery prefork worker runs tasks in child processes and the API
may run several uvicorn workers; a scrape reaches one process. With
``PROMETHEUS_MULTIPROC_DIR`` set in the environment *before the process starts* (an
empty folder of its own for each worker or API instance: a tmpfs in
``docker-compose.yml``), every process writes its samples to files there and the
scrape adds them up (:class:`prometheus_client.multiprocess.MultiProcessCollector`).
Without it, the scrape reads this process's own registry (the demo, tests, a single
process). The folder must be emptied when its service starts, or counters of a
previous run are added in (harmless for rates, wrong for totals).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess, start_http_server
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy.orm import Session

from delivery.metrics import instruments
from delivery.metrics.database import DatabaseCollector
from giftq.db import session_factory
from giftq.settings import Settings

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_VARIABLE) or None


class _Instruments:
    """This process's instruments, or every process's when in multiprocess mode."""

    def collect(self) -> Iterator[Metric]:
        path = multiprocess_dir()
        if path:
            yield from multiprocess.MultiProcessCollector(CollectorRegistry(), path=path).collect()  # type: ignore[no-untyped-call]
        else:
            yield from REGISTRY.collect()


def _session() -> Session:
    # Looked up at each scrape: the engine may have been replaced since (a forked child).
    return session_factory()()


def scrape_registry() -> CollectorRegistry:
    """A registry whose every collect is one fresh scrape (instruments, then the database)."""
    assert instruments.TASKS  # the instruments exist before the first scrape, at zero
    registry = CollectorRegistry()
    registry.register(_Instruments())
    registry.register(DatabaseCollector(_session))
    return registry


def render() -> bytes:
    """The exposition text of one scrape (what ``/metrics`` answers)."""
    return generate_latest(scrape_registry())


def start_worker_server(settings: Settings) -> Any:
    """Serve a scrape on ``GIFTQ_WORKER_METRICS_PORT`` from this (the worker's main) process,
    in a thread; nothing when the port is 0. Returns the server (tests stop it)."""
    if not settings.worker_metrics_port:
        return None
    if not multiprocess_dir():
        log.warning(
            "worker metrics without %s: the pool's children's counters are not seen", MULTIPROC_VARIABLE
        )
    server, _thread = start_http_server(
        settings.worker_metrics_port, addr=settings.worker_metrics_host, registry=scrape_registry()
    )
    log.info("metrics on http://%s:%d/metrics", settings.worker_metrics_host, settings.worker_metrics_port)
    return server


def child_exited(pid: int | None) -> None:
    """Tell the multiprocess files that a pool child is gone (live gauges drop its samples)."""
    path = multiprocess_dir()
    if path and pid:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
