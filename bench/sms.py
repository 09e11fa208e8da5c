"""Text-message benchmark: text gifts end to end, against a raw HTTP blast into the same sink.

    python -m bench.sms --texts 5000 --lines 10 --workers 2

One run, on a scratch PostgreSQL database and Redis, with the stand-in for Twilio's
Messages API in its own process (``giftq sms-sink``) on loopback:

1. the anchor: a raw HTTP blast of ``--texts`` requests into the sink from ``--workers``
   processes at once (as many as the worker pool has; one would flatter the ratio), each
   over one kept-alive httpx client, with what the channel sends: the same form fields
   (``To``, ``Body``, ``StatusCallback``, ``From``), a real gift text of the same length,
   basic auth and the same headers;
2. the pipeline: ``--texts`` text gifts placed with ``delivery.place_order`` as orders of
   ``--lines`` lines (several values: one run each, in order), issued and sent by real
   Celery workers (``celery -A worker worker -Q orders,celery,sms,scheduler -c <workers>
   --without-mingle --without-gossip``), timed from the first order until the sink has
   accepted every text (its folder holds a file per accepted text).

The send rate is set far above what the run reaches (``GIFTQ_SMS_RATE_PER_SECOND`` and
``GIFTQ_SMS_BURST`` at a million), so pacing costs its one Redis call per text and never
waits. The sink cannot be told to post no status callbacks, so they go to a loopback
port held closed: the sink's attempts fail at once, in both measures alike, and no gift
becomes ``delivered`` (nor is a delivered notice sent). The purchasers' receipts go by
email and wait in the ``email`` queue, which these workers do not read: the measure is
the texts. Nothing leaves this machine: the database and Redis must be on loopback.

It prints texts/s end to end and their ratio to the blast's requests/s (goal: at least
0.6), and CPU per text by process (workers, sink, this database's PostgreSQL backends,
Redis, placing), measured once everything has gone quiet, so that the sink's share
includes its callback attempts. Absolute numbers drift on shared machines; the ratios
and the CPU split are what to compare. ``--lines 1`` shows what one order per gift
costs (an order, an issuance and a dispatch task per text).

The blast's round trip per request says what bounds both rates: at a millisecond or
two it is CPU, and the ratio compares the work done per text; at tens of milliseconds
both wait on the sink's answers, and the last lines (the rate the CPU time alone would
allow) are the ones to compare.
"""

from __future__ import annotations

import argparse
import base64
import math
import multiprocessing
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from bench._anchors import (
    DEFAULT_POSTGRES_URL,
    ProcessCpu,
    Stopwatch,
    closed_port,
    cpu_by_process,
    cpu_spent,
    free_port,
    loopback_only,
    scratch_database,
    start_workers,
    stop_group,
    table,
    venv_command,
    wait_for_port,
    wait_for_workers,
    without_proxies,
)

GOAL_RATIO = 0.6
QUEUES = "orders,celery,sms,scheduler"
FROM_NUMBER = "+15005550006"  # Twilio's magic "valid sender" test number
PURCHASER = "Bench Buyer"
AMOUNT = 2500
MARKETPLACE = "UK"
UNLIMITED = "1000000"
"""Texts per second and burst: far above any rate the run reaches."""


def _phone(n: int) -> str:
    """The n-th recipient: a UK mobile number (07911 xxxxxx is a mobile range)."""
    return f"+447911{n % 1_000_000:06d}"


@dataclass(frozen=True)
class SinkAccount:
    """Where the texts go and as whom: the sink's API, its account, the callback target."""

    api_base_url: str
    account_sid: str
    auth_token: str
    status_callback_url: str

    @property
    def messages_url(self) -> str:
        from delivery.channels.sms.twilio import API_VERSION

        return f"{self.api_base_url}/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"


def _environment(
    database_url: str, redis_url: str, data_dir: Path, sms: SinkAccount, closed: int
) -> dict[str, str]:
    env = without_proxies({k: v for k, v in os.environ.items() if not k.startswith("GIFTQ_")})
    env.update(
        {
            "GIFTQ_ENV": "development",
            "GIFTQ_DATA_DIR": str(data_dir),
            "GIFTQ_DATABASE_URL": database_url,
            "GIFTQ_BROKER_URL": redis_url,
            # Receipts are never sent (no worker reads "email"); if one were, it would be refused here.
            "GIFTQ_SMTP_HOST": "127.0.0.1",
            "GIFTQ_SMTP_PORT": str(closed),
            "GIFTQ_CODE_PEPPER": base64.b64encode(secrets.token_bytes(32)).decode(),
            "GIFTQ_CODE_KEYS": "bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "GIFTQ_SMS_BACKEND": "sink",
            "GIFTQ_SMS_API_BASE_URL": sms.api_base_url,
            "GIFTQ_SMS_ACCOUNT_SID": sms.account_sid,
            "GIFTQ_SMS_AUTH_TOKEN": sms.auth_token,
            "GIFTQ_SMS_FROM_NUMBER": FROM_NUMBER,
            "GIFTQ_SMS_STATUS_CALLBACK_URL": sms.status_callback_url,
            "GIFTQ_SMS_RATE_REDIS_URL": redis_url,
            "GIFTQ_SMS_RATE_PER_SECOND": UNLIMITED,
            "GIFTQ_SMS_BURST": UNLIMITED,
        }
    )
    return env


def _sample_text() -> str:
    """A real gift text (rendered by the channel, fresh code), as the workers send them."""
    from delivery.channels.sms.render import GiftText, render_text
    from ledger.codes import ClaimCode

    gift = GiftText(
        sender_name=PURCHASER, amount=AMOUNT, marketplace=MARKETPLACE, code=ClaimCode.generate().reveal()
    )
    return render_text(gift).body


def _start_sink(env: dict[str, str], port: int, directory: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                venv_command("giftq"),
                "sms-sink",
                "--quiet",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(directory),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _accepted(directory: Path) -> int:
    """Texts the sink has accepted: it writes each one's file before it answers 201."""
    with os.scandir(directory) as entries:
        return sum(1 for e in entries if e.name.endswith(".json"))


# --- the anchor: a raw HTTP blast ----------------------------------------------------------


@dataclass(frozen=True)
class Blast:
    requests: int
    processes: int
    seconds: float
    blaster_cpu: float
    """CPU seconds of all blasting processes while they sent."""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def round_trip(self) -> float:
        """Mean seconds from one request to its answer, on each connection."""
        return self.seconds * self.processes / self.requests


def _blaster(sms: SinkAccount, body: str, *, first: int, count: int, go: Any, results: Any) -> None:
    import httpx

    try:
        with httpx.Client(
            auth=httpx.BasicAuth(sms.account_sid, sms.auth_token),
            headers={"Accept": "application/json", "User-Agent": "giftq"},
            timeout=httpx.Timeout(10.0),
        ) as http:
            # Connects and loads what a first request needs; the sink answers a GET with
            # 404 and keeps nothing. Spawning and importing take seconds on a busy machine:
            # the clock starts once every blaster has got this far.
            http.get(sms.messages_url)
            results.put("ready")
            go.wait()
            cpu = time.process_time()
            refused = 0
            for n in range(first, first + count):
                form = {
                    "To": _phone(n),
                    "Body": body,
                    "StatusCallback": f"{sms.status_callback_url}?ref={n + 1}",
                    "From": FROM_NUMBER,
                }
                refused += http.post(sms.messages_url, data=form).status_code != 201
            results.put((time.time(), time.process_time() - cpu, refused))
    except Exception as exc:  # reported to the parent, which stops the benchmark
        results.put(f"blaster failed: {exc!r}")


def http_blast(sms: SinkAccount, total: int, processes: int, body: str) -> Blast:
    """Requests per second the sink accepts from ``processes`` blasting at once."""
    ctx = multiprocessing.get_context("spawn")
    results, go = ctx.Queue(), ctx.Event()
    share = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
    firsts = [sum(share[:i]) for i in range(processes)]
    procs = [
        ctx.Process(
            target=_blaster,
            args=(sms, body),
            kwargs={"first": first, "count": n, "go": go, "results": results},
        )
        for first, n in zip(firsts, share, strict=True)
    ]
    for p in procs:
        p.start()
    try:
        ready = [results.get(timeout=120) for _ in procs]
        failures = [r for r in ready if r != "ready"]
        if failures:
            raise SystemExit("; ".join(failures))
        started = time.time()
        go.set()
        finished = [results.get(timeout=600) for _ in procs]
    finally:
        go.set()
        for p in procs:
            p.join(30)
    failures = [f for f in finished if isinstance(f, str)]
    if failures:
        raise SystemExit("; ".join(failures))
    refused = sum(f[2] for f in finished)
    if refused:
        raise SystemExit(f"the sink refused {refused} of the blast's {total} requests")
    return Blast(total, processes, max(f[0] for f in finished) - started, sum(f[1] for f in finished))


# --- the pipeline --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    lines: int
    texts: int
    seconds: float
    """From the first place_order until the sink had accepted every text."""
    latencies: list[float]
    placing_seconds: float
    placing_cpu: float

    @property
    def per_second(self) -> float:
        return self.texts / self.seconds


def _order(first: int, lines: int) -> dict[str, Any]:
    return {
        "purchaser": {"name": PURCHASER, "email": f"buyer{first}@example.com"},
        "lines": [
            {
                "channel": "sms",
                "amount": AMOUNT,
                "marketplace": MARKETPLACE,
                "message": "Happy birthday!",
                "recipient": {"name": f"Recipient {n}", "phone": _phone(n)},
            }
            for n in range(first, first + lines)
        ],
    }


def pipeline(texts: int, lines: int, first_number: int, accepted: Callable[[], int]) -> Run:
    from delivery import place_order

    baseline = accepted()
    latencies = []
    watch, cpu = Stopwatch(), time.process_time()
    for first in range(first_number, first_number + texts, lines):
        order = _order(first, min(lines, first_number + texts - first))
        began = time.perf_counter()
        place_order(order, idempotency_key=f"bench-sms-{first}")
        latencies.append(time.perf_counter() - began)
    placing_seconds, placing_cpu = watch.seconds, time.process_time() - cpu
    while accepted() - baseline < texts:
        time.sleep(0.05)
        if watch.seconds > 900:
            raise SystemExit(f"the sink accepted {accepted() - baseline} of {texts} texts in 15 minutes")
    return Run(lines, texts, watch.seconds, latencies, placing_seconds, placing_cpu)


def _gifts_sent() -> int:
    from sqlalchemy import func, select

    from delivery.models import Delivery
    from giftq.db import session_factory

    with session_factory()() as s:
        query = select(func.count()).where(Delivery.kind == "gift", Delivery.status == "sent")
        return int(s.scalar(query) or 0)


# --- CPU by process ------------------------------------------------------------------------


def _backends(url: URL) -> frozenset[int]:
    """The PostgreSQL server processes serving this database now."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as c:
            query = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            return frozenset(int(pid) for pid in c.scalars(query))
    finally:
        engine.dispose()


def _redis_pid(redis_url: str) -> int | None:
    """Redis's process id, when it runs here where /proc can see it."""
    import redis

    pid = str(redis.Redis.from_url(redis_url).info("server").get("process_id"))
    try:
        return int(pid) if "redis" in Path(f"/proc/{pid}/comm").read_text() else None
    except (OSError, TypeError, ValueError):
        return None


def _settle(group: int, timeout: float = 120.0) -> None:
    """Until the process group is idle: the sink posts its callbacks after it answers."""
    deadline = time.monotonic() + timeout
    before = cpu_by_process()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        after = cpu_by_process()
        if cpu_spent(before, after, group=group) < 0.02:
            return
        before = after


@dataclass(frozen=True)
class Watched:
    """The processes whose CPU time a run is charged."""

    workers: int
    sink: int
    redis: int | None
    database: URL

    def snapshot(self) -> tuple[dict[int, ProcessCpu], frozenset[int]]:
        backends = _backends(self.database)  # first: this query's own backend is gone by the snapshot
        return cpu_by_process(), backends

    def spent(
        self,
        before: tuple[dict[int, ProcessCpu], frozenset[int]],
        after: tuple[dict[int, ProcessCpu], frozenset[int]],
    ) -> dict[str, float]:
        (then, backends_then), (now, backends_now) = before, after
        return {
            "workers": cpu_spent(then, now, group=self.workers),
            "sink": cpu_spent(then, now, group=self.sink),
            "PostgreSQL": cpu_spent(then, now, pids=backends_then | backends_now),
            "Redis": cpu_spent(then, now, pids=frozenset({self.redis})) if self.redis else float("nan"),
        }


# --- the report ----------------------------------------------------------------------------


def _ms(seconds: float, count: int) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000 / count:.2f}"  # NaN: not measured


def _report(
    args: argparse.Namespace,
    blast: Blast,
    blast_cpu: dict[str, float],
    runs: list[tuple[Run, dict[str, float]]],
) -> None:
    cpus = os.cpu_count() or 1
    print(
        f"giftq text messages: {args.texts:,} texts into giftq sms-sink, {args.workers} worker processes "
        f"({args.workers} blasters), {cpus} CPUs, load {os.getloadavg()[0]:.1f} at the end\n"
    )
    rows = [
        (f"raw HTTP blast, {args.workers} processes (anchor)", f"{blast.per_second:,.0f} req/s", "1.00"),
        ("  round trip of one request", f"{blast.round_trip * 1000:.1f} ms", ""),
    ]
    for run, _ in runs:
        latencies = sorted(run.latencies)
        p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 100 else latencies[-1]
        rows += [
            (
                f"texts end to end, orders of {run.lines} lines",
                f"{run.per_second:,.0f} texts/s",
                f"{run.per_second / blast.per_second:.2f}",
            ),
            (
                f"  place_order, one client ({run.lines} lines)",
                f"{len(latencies) / run.placing_seconds:,.0f} orders/s",
                "",
            ),
            (
                "  place_order latency p50 / p99",
                f"{statistics.median(latencies) * 1000:.1f} / {p99 * 1000:.1f} ms",
                "",
            ),
        ]
    print(table(rows, ("measure", "rate", "ratio")))
    print()
    for run, _ in runs:
        ratio = run.per_second / blast.per_second
        verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
        print(f"texts/s : blast = {ratio:.2f} for orders of {run.lines} lines (goal {GOAL_RATIO}: {verdict})")

    header = ("CPU per text (ms)", "workers", "sink", "PostgreSQL", "Redis", "placing", "blasters", "total")
    cpu_rows: list[tuple[str, ...]] = [
        (
            "raw HTTP blast (anchor)",
            "-",
            _ms(blast_cpu["sink"], blast.requests),
            "-",
            "-",
            "-",
            _ms(blast.blaster_cpu, blast.requests),
            _ms(blast_cpu["sink"] + blast.blaster_cpu, blast.requests),
        )
    ]
    for run, cpu in runs:
        measured = [v for v in cpu.values() if not math.isnan(v)] + [run.placing_cpu]
        cpu_rows.append(
            (
                f"orders of {run.lines} lines",
                *(_ms(cpu[k], run.texts) for k in ("workers", "sink", "PostgreSQL", "Redis")),
                _ms(run.placing_cpu, run.texts),
                "-",
                _ms(sum(measured), run.texts),
            )
        )
    print()
    print(table(cpu_rows, header))
    print(
        "\n(CPU from /proc once all had gone quiet; PostgreSQL: this database's backends only; "
        "sink: its failed status-callback attempts included)"
    )
    bounds = [("raw HTTP blast", blast.requests, blast_cpu["sink"] + blast.blaster_cpu, blast_cpu["sink"])]
    for run, cpu in runs:
        total = sum(v for v in cpu.values() if not math.isnan(v)) + run.placing_cpu
        bounds.append((f"orders of {run.lines} lines", run.texts, total, cpu["sink"]))
    for label, count, total, sink in bounds:
        # The sink is one Python process: one CPU at most, whatever the machine has.
        print(
            f"{label}: {total * 1000 / count:.2f} ms of CPU per text would allow about "
            f"{min(cpus * count / total, count / sink):,.0f}/s on {cpus} CPUs"
        )


# --- main ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    blast: Blast
    blast_cpu: dict[str, float]
    runs: list[tuple[Run, dict[str, float]]]
    sent: int
    """Gift deliveries recorded ``sent`` after every run."""
    accepted: int
    """Texts the sink accepted from the workers (the blast's left out)."""


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin URL (a scratch DB is made)"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="a Redis DB it may empty")
    parser.add_argument("--texts", type=int, default=5000, help="texts per run (and requests in the blast)")
    parser.add_argument(
        "--lines", type=int, nargs="+", default=[10], help="texts per order; several values: one run each"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker pool processes (and blasters)")
    parser.add_argument("--worker-log", type=Path, default=None, help="keep the workers' log here")
    parser.add_argument("--worker-loglevel", default="WARNING", help="INFO logs every task (costs time)")
    args = parser.parse_args(argv)
    if args.texts < 1 or args.workers < 1 or min(args.lines) < 1:
        parser.error("--texts, --lines and --workers must be at least 1")
    loopback_only(make_url(args.postgres_url).host, "--postgres-url")
    loopback_only(urlsplit(args.redis_url).hostname, "--redis-url")
    return args


def measure(args: argparse.Namespace, sms: SinkAccount, data_dir: Path, closed: int) -> Measured:
    """The blast, then each run; the sink and the workers are stopped whatever happens."""
    sink_dir = data_dir / "sms"
    sink: subprocess.Popen[bytes] | None = None
    workers: subprocess.Popen[bytes] | None = None
    with scratch_database(args.postgres_url, "sms") as url:
        database_url = url.render_as_string(hide_password=False)
        env = _environment(database_url, args.redis_url, data_dir, sms, closed)
        os.environ.clear()
        os.environ.update(env)
        from giftq.db import reset_engine
        from giftq.migrate import upgrade
        from giftq.settings import reset_settings

        reset_settings()
        try:
            sink = _start_sink(env, urlsplit(sms.api_base_url).port or 0, sink_dir, data_dir / "sink.log")
            upgrade(database_url)
            wait_for_port(urlsplit(sms.api_base_url).port or 0, "giftq sms-sink")
            watched = Watched(0, sink.pid, _redis_pid(args.redis_url), url)
            before = watched.snapshot()
            blast = http_blast(sms, args.texts, args.workers, _sample_text())
            _settle(sink.pid)
            blast_cpu = watched.spent(before, watched.snapshot())

            workers = start_workers(
                env, QUEUES, args.workers, args.worker_log or data_dir / "workers.log", args.worker_loglevel
            )
            wait_for_workers()
            watched = Watched(workers.pid, sink.pid, watched.redis, url)
            runs = []
            for index, lines in enumerate(args.lines):
                before = watched.snapshot()
                run = pipeline(args.texts, lines, (index + 1) * args.texts, lambda: _accepted(sink_dir))
                deadline = time.monotonic() + 60
                while _gifts_sent() < (index + 1) * args.texts and time.monotonic() < deadline:
                    time.sleep(0.1)  # the last answers are being written down
                _settle(sink.pid)
                runs.append((run, watched.spent(before, watched.snapshot())))
            return Measured(blast, blast_cpu, runs, _gifts_sent(), _accepted(sink_dir) - args.texts)
        finally:
            stop_group(workers)
            stop_group(sink)
            reset_engine()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)

    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    data_dir = Path(tempfile.mkdtemp(prefix="giftq-bench-sms-"))
    closed = closed_port()  # the status callbacks' target, and the SMTP port nobody uses
    closed_number = int(closed.getsockname()[1])
    sms = SinkAccount(
        api_base_url=f"http://127.0.0.1:{free_port()}",
        account_sid="AC" + secrets.token_hex(16),
        auth_token=secrets.token_urlsafe(24),
        status_callback_url=f"http://127.0.0.1:{closed_number}/sms/status",
    )
    try:
        measured = measure(args, sms, data_dir, closed_number)
    finally:
        closed.close()
        shutil.rmtree(data_dir, ignore_errors=True)  # the sink's files hold (scratch) claim codes
    _report(args, measured.blast, measured.blast_cpu, measured.runs)
    placed = args.texts * len(args.lines)
    honest = measured.sent == measured.accepted == placed
    print(
        f"\ngifts placed {placed:,}, recorded sent {measured.sent:,}, "
        f"texts the sink accepted {measured.accepted:,}"
        + ("" if honest else "  <- MISMATCH: lost or duplicated")
    )
    return 0 if honest else 1


if __name__ == "__main__":
    raise SystemExit(main())
