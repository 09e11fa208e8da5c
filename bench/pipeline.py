"""Pipeline benchmark: email gift cards end to end, against a raw SMTP blast.

    python -m bench.pipeline --cards 5000 --workers 2

One run, on PostgreSQL and Redis, with an SMTP sink in its own process
(``giftq smtp-sink --discard``):

1. anchor, SMTP: a raw aiosmtplib blast of ``--cards`` gift-sized messages into the
   sink from ``--workers`` processes at once (as many as the pipeline's worker pool;
   one process would flatter the ratio), each over one kept-open connection;
2. anchor, Celery: a bare ``delay()`` loop of a no-op task (publishes per second);
3. the pipeline: ``--cards`` email cards placed with ``delivery.place_order`` as
   orders of ``--lines`` lines, issued and sent by the worker set-up the README
   recommends (``celery -A worker worker -Q orders,email,scheduler -c <workers>
   --without-mingle --without-gossip``), until the sink accepted every gift.

It prints cards/s and their ratio to the blast's messages/s (goal: at least 0.6), and
place_order latency p50/p99 with the placing rate as a ratio to the ``delay()`` loop.
Absolute numbers drift on shared machines; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._anchors import (
    DEFAULT_POSTGRES_URL,
    Stopwatch,
    cpu_by_process,
    scratch_database,
    start_workers,
    stop_group,
    table,
    wait_for_workers,
)

GOAL_RATIO = 0.6
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(database_url: str, broker_url: str, smtp_port: int, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTQ_")}
    env.update(
        {
            "GIFTQ_ENV": "development",
            "GIFTQ_DATA_DIR": str(data_dir),
            "GIFTQ_DATABASE_URL": database_url,
            "GIFTQ_BROKER_URL": broker_url,
            "GIFTQ_SMTP_HOST": "127.0.0.1",
            "GIFTQ_SMTP_PORT": str(smtp_port),
            "GIFTQ_CODE_PEPPER": base64.b64encode(secrets.token_bytes(32)).decode(),
            "GIFTQ_CODE_KEYS": "bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        }
    )
    return env


def _sample_gift() -> bytes:
    """A real gift email (rendered and built by the email channel), for the blast."""
    from delivery.channels.email import GiftEmail, build_message, render_email

    context = GiftEmail(
        recipient_name="Robin Receiver",
        recipient_email="robin@example.com",
        sender_name="Pat Buyer",
        amount=2500,
        marketplace="US",
        message="Happy birthday!\nLove, Pat",
        code="ABCD-EFGH-JKMN-PQRST",
    )
    return build_message(render_email(context), to_name="Robin Receiver", to_addr="robin@example.com")


# --- anchor: raw SMTP blast --------------------------------------------------------------


def _blaster(port: int, count: int, data: bytes, start_at: float, results: Any) -> None:
    import aiosmtplib

    async def run() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await client.connect()
        while time.time() < start_at:
            await asyncio.sleep(0.001)
        for i in range(count):
            await client.sendmail("gifts@giftq.example", [f"r{i}@example.com"], data)
        await client.quit()

    try:
        asyncio.run(run())
    except Exception as exc:  # reported to the parent, which stops the benchmark
        results.put(f"blaster failed: {exc!r}")
        return
    results.put(time.time())


def smtp_blast(port: int, total: int, processes: int, data: bytes) -> float:
    """Messages per second accepted by the sink from ``processes`` blasting at once."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 2.0  # every process connected and waiting by then
    share = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
    procs = [ctx.Process(target=_blaster, args=(port, n, data, start_at, results)) for n in share]
    for p in procs:
        p.start()
    finished = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    failures = [f for f in finished if isinstance(f, str)]
    if failures:
        raise SystemExit("; ".join(failures))
    return total / (max(finished) - start_at)


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the SMTP sink is not listening on port {port}") from None
            time.sleep(0.1)


# --- anchor: bare delay() loop -----------------------------------------------------------


def delay_rate(broker_url: str, count: int) -> float:
    """Publishes per second of a bare ``delay()`` of a no-op task (into a queue nobody reads)."""
    from celery import Celery

    app = Celery("bench", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_routes={"bench.noop": {"queue": "bench"}},
    )

    @app.task(name="bench.noop")  # type: ignore[untyped-decorator]
    def noop() -> None:
        """Nothing: the message is the measurement."""

    noop.delay()  # connect first
    watch = Stopwatch()
    for _ in range(count):
        noop.delay()
    rate = count / watch.seconds
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("bench")
    app.close()
    return rate


# --- the pipeline ------------------------------------------------------------------------


def _order(first: int, lines: int) -> dict[str, Any]:
    return {
        "purchaser": {"name": "Bench Buyer", "email": f"buyer{first}@example.com"},
        "lines": [
            {
                "channel": "email",
                "amount": 2500,
                "marketplace": "US",
                "message": "Happy birthday!",
                "recipient": {"name": f"Recipient {n}", "email": f"r{n}@example.com"},
            }
            for n in range(first, first + lines)
        ],
    }


def place(cards: int, lines: int) -> tuple[list[float], float]:
    """Place ``cards`` cards as orders of ``lines`` lines from this one client:
    (place_order latencies in s, orders placed per second)."""
    from delivery import place_order

    latencies = []
    watch = Stopwatch()
    for first in range(0, cards, lines):
        order = _order(first, min(lines, cards - first))
        began = time.perf_counter()
        place_order(order, idempotency_key=f"bench-{first}")
        latencies.append(time.perf_counter() - began)
    return latencies, len(latencies) / watch.seconds


def wait_sent(cards: int, sent_count: Any, watch: Stopwatch) -> float:
    """Until ``cards`` gifts are sent; cards per second since ``watch`` started."""
    while sent_count() < cards:
        time.sleep(0.05)
        if watch.seconds > 900:
            raise SystemExit(f"only {sent_count()} of {cards} gifts sent after 15 minutes")
    return cards / watch.seconds


def pipeline(cards: int, lines: int, sent_count: Any) -> tuple[float, list[float], float]:
    """(cards per second end to end, place_order latencies in s, orders placed per second)."""
    watch = Stopwatch()
    latencies, placing_rate = place(cards, lines)
    return wait_sent(cards, sent_count, watch), latencies, placing_rate


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """One end-to-end run and its anchors, measured in the same run."""

    cards: int
    lines: int
    workers: int
    blast: float
    """Raw SMTP blast into the same sink, messages/s (anchor)."""
    delays: float
    """Bare ``delay()`` loop, publishes/s (anchor)."""
    cards_per_second: float
    latencies: list[float]
    """place_order, seconds each."""
    placing_rate: float
    """Orders placed per second by the one client."""
    cpu_ms_per_card: dict[str, float]
    """CPU time per card by process group (workers, sink, the placing client, PostgreSQL)."""
    worker_rss_mb: tuple[float, float]
    """The largest worker process's resident memory, before and after the cards (MB)."""
    backlog: bool = False
    """The orders were all placed before the workers started (see :func:`run_pipeline`)."""

    @property
    def ratio(self) -> float:
        return self.cards_per_second / self.blast

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        if len(self.latencies) >= 100:
            return statistics.quantiles(self.latencies, n=100)[98] * 1000
        return max(self.latencies) * 1000


def _report(run: PipelineRun) -> None:
    placed = "placed before the workers started" if run.backlog else "placed while they run"
    print(f"giftq pipeline: {run.cards} email cards, orders of {run.lines} lines ({placed}),", end=" ")
    print(f"{run.workers} workers\n")
    print(
        table(
            [
                ("raw SMTP blast (anchor)", f"{run.blast:,.0f} msg/s", ""),
                ("pipeline, end to end", f"{run.cards_per_second:,.0f} cards/s", f"{run.ratio:.2f}"),
                ("bare delay() loop (anchor)", f"{run.delays:,.0f} msg/s", ""),
                (
                    "place_order, one client",
                    f"{run.placing_rate:,.0f} orders/s",
                    f"{run.placing_rate / run.delays:.2f}",
                ),
                ("place_order latency p50", f"{run.p50_ms:.1f} ms", ""),
                ("place_order latency p99", f"{run.p99_ms:.1f} ms", ""),
            ],
            ("measure", "rate", "ratio"),
        )
    )
    verdict = "met" if run.ratio >= GOAL_RATIO else "NOT met"
    print(f"\ncards/s : blast = {run.ratio:.2f} (goal {GOAL_RATIO}: {verdict})")
    print(
        "\nCPU per card during the pipeline run (ms): "
        + ", ".join(f"{k} {v:.1f}" for k, v in run.cpu_ms_per_card.items())
    )
    before, after = run.worker_rss_mb
    print(f"largest worker process RSS: {before:.0f} MB before, {after:.0f} MB after")


def _cpu_by_group(groups: dict[str, int], database: str) -> dict[str, float]:
    """CPU seconds so far by label: the processes of each process group, and PostgreSQL's
    backends serving ``database`` (other databases' work on a shared server is not ours;
    the server's own background writers are left out)."""
    found = cpu_by_process()
    totals = dict.fromkeys([*groups, "postgres"], 0.0)
    for pid, process in found.items():
        for label, group in groups.items():
            if process.group == group:
                totals[label] += process.seconds
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
            totals["postgres"] += process.seconds
    return totals


def _gifts_sent() -> int:
    from sqlalchemy import func, select

    from delivery.models import Delivery
    from giftq.db import session_factory

    with session_factory()() as s:
        query = select(func.count()).where(Delivery.kind == "gift", Delivery.status == "sent")
        return int(s.scalar(query) or 0)


def _worker_rss_mb(group: int) -> float:
    """The largest resident set among the processes of ``group`` (MB)."""
    page = os.sysconf("SC_PAGE_SIZE")
    largest = 0.0
    for pid, process in cpu_by_process().items():
        if process.group != group:
            continue
        try:
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile
        largest = max(largest, resident * page / 2**20)
    return largest


def _warm_up(lines: int, sent_count: Any) -> None:
    """A few orders first, so that the workers' imports, templates and pools are in place
    before memory and CPU are read (and so that the run measures the steady state)."""
    from delivery import place_order

    for first in range(0, 4 * lines, lines):
        place_order(_order(10_000_000 + first, lines), idempotency_key=f"warm-{first}")
    deadline = time.monotonic() + 120
    while sent_count() < 4 * lines:
        if time.monotonic() > deadline:
            raise SystemExit("the warm-up orders were not sent within two minutes")
        time.sleep(0.05)


@dataclass(slots=True)
class _Measure:
    """The measured part of a run, once the workers (``pool``) are warm."""

    pool: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path
    loglevel: str
    workers: int
    sink: int
    database: str

    def measure(
        self, cards: int, lines: int, *, backlog: bool
    ) -> tuple[float, list[float], float, dict[str, float], tuple[float, float]]:
        """(cards/s, place_order latencies, placing rate, CPU ms per card, worker RSS before, after)."""
        warm = _gifts_sent()
        if backlog:
            # Every order waits before the workers start: what they do at a peak.
            stop_group(self.pool)
            latencies, placing_rate = place(cards, lines)
            self.pool = start_workers(
                self.env, "orders,email,scheduler", self.workers, self.log, self.loglevel
            )
            wait_for_workers()
        pool = self.pool
        rss_before = _worker_rss_mb(pool.pid)
        groups = {"workers": pool.pid, "sink": self.sink, "placing client": os.getpgrp()}
        before = _cpu_by_group(groups, self.database)
        if backlog:
            cards_per_second = wait_sent(cards, lambda: _gifts_sent() - warm, Stopwatch())
        else:
            cards_per_second, latencies, placing_rate = pipeline(cards, lines, lambda: _gifts_sent() - warm)
        after = _cpu_by_group(groups, self.database)
        cpu = {k: (after[k] - before[k]) * 1000 / cards for k in after}
        return cards_per_second, latencies, placing_rate, cpu, (rss_before, _worker_rss_mb(pool.pid))


def run_pipeline(
    *,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    redis_url: str,
    cards: int,
    lines: int,
    workers: int,
    delays: int = 5000,
    worker_log: Path | None = None,
    worker_loglevel: str = "WARNING",
    backlog: bool = False,
) -> PipelineRun:
    """The anchors and one end-to-end run on a scratch database, Redis DB and sink.

    ``backlog``: every order is placed before the workers start, and the rate is theirs
    (from their start to the last gift sent), as at a peak when many storefront
    processes place orders at once; otherwise one client places them while they run.
    """
    import redis

    data_dir = Path(tempfile.mkdtemp(prefix="giftq-bench-pipeline-"))
    port = _free_port()
    redis.Redis.from_url(redis_url).flushdb()
    giftq = shutil.which("giftq") or str(Path(sys.executable).with_name("giftq"))
    sink = subprocess.Popen(
        [giftq, "smtp-sink", "--discard", "--quiet", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    saved = dict(os.environ)
    pool: subprocess.Popen[bytes] | None = None
    try:
        with scratch_database(postgres_url, "pipeline") as url:
            database_url = url.render_as_string(hide_password=False)
            env = _environment(database_url, redis_url, port, data_dir)
            os.environ.update(env)
            from giftq.db import reset_engine
            from giftq.migrate import upgrade
            from giftq.settings import reset_settings

            reset_settings()
            reset_engine()
            upgrade(database_url)
            _wait_for_port(port)
            # The anchor needs a steady rate, not the whole run's count of messages.
            blast = smtp_blast(port, min(max(cards, 1000), 10_000), workers, _sample_gift())
            delay_anchor = delay_rate(redis_url, delays)
            log = worker_log or data_dir / "workers.log"
            pool = start_workers(env, "orders,email,scheduler", workers, log, worker_loglevel)
            wait_for_workers()
            _warm_up(lines, _gifts_sent)
            run = _Measure(pool, env, log, worker_loglevel, workers, sink.pid, str(url.database))
            try:
                measured = run.measure(cards, lines, backlog=backlog)
            finally:
                pool = run.pool
                stop_group(pool)
                reset_engine()
    finally:
        stop_group(pool)
        stop_group(sink)
        shutil.rmtree(data_dir, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)
    cards_per_second, latencies, placing_rate, cpu, rss = measured
    return PipelineRun(
        cards,
        lines,
        workers,
        blast,
        delay_anchor,
        cards_per_second,
        latencies,
        placing_rate,
        cpu,
        rss,
        backlog,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin URL (a scratch DB is made)"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="a Redis DB it may empty")
    parser.add_argument("--cards", type=int, default=5000)
    parser.add_argument("--lines", type=int, default=10, help="cards per order")
    parser.add_argument("--workers", type=int, default=2, help="worker pool processes (and blasters)")
    parser.add_argument("--delays", type=int, default=5000, help="delay() calls in the Celery anchor")
    parser.add_argument("--worker-log", type=Path, default=None, help="keep the workers' log here")
    parser.add_argument("--worker-loglevel", default="WARNING", help="INFO logs every task (costs time)")
    parser.add_argument("--backlog", action="store_true", help="place every order before the workers start")
    args = parser.parse_args(argv)
    run = run_pipeline(
        postgres_url=args.postgres_url,
        redis_url=args.redis_url,
        cards=args.cards,
        lines=args.lines,
        workers=args.workers,
        delays=args.delays,
        worker_log=args.worker_log,
        worker_loglevel=args.worker_loglevel,
        backlog=args.backlog,
    )
    _report(run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
