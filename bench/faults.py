"""The fault run: thousands of mixed orders through every door while the run breaks
things, then the promises, checked.

    python -m bench.faults                 # 2,000 orders, the full faults (minutes)
    python -m bench.faults --short         # what the test suite runs: 60 orders, short outages

One run, on servers of its own (a PostgreSQL cluster made with ``initdb`` and a Redis
with its append-only file, each on a private port: nothing else on the machine is
touched), the SMTP relay and the text-message provider of :mod:`bench.fault_servers`,
``giftq api``, one beat and the worker processes of the README's queue split.

Orders (:mod:`bench.fault_orders`) go in through the three doors at once
(:mod:`bench.fault_doors`) at a steady pace over the placing window. While they flow,
the run SIGKILLs a worker pool child three times (one of them while the relay holds the
DATA of a batch), makes the relay answer 421 for a while, restarts Redis, restarts
PostgreSQL, and makes the text provider answer 429 and then 503 for a while. Then it
waits, touching nothing, for beat and the sweeper to settle everything, within a bound
it prints; it checks the promises (:mod:`bench.fault_checks`) and scans every place a
claim code must not be (:mod:`bench.fault_scan`). It prints each figure, one check a
line, and exits 1 if a promise broke.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nacl.public import PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench import fault_checks, fault_scan, procs
from bench._anchors import ROOT, free_port, venv_command, wait_for_port, without_proxies
from bench.fault_checks import Check
from bench.fault_doors import Doors
from bench.fault_orders import PlannedOrder, plan_orders
from bench.fault_servers import FaultySms, FaultySmtp
from bench.services import PostgresCluster, RedisServer

PENDING_DELIVERY = ("scheduled", "queued", "sending", "failed_retryable")
PENDING_ORDER = ("received", "issuing")


@dataclass(frozen=True)
class Worker:
    """One ``celery worker`` of the queue split: its name, queues and pool size."""

    name: str
    queues: str
    concurrency: int


README_SPLIT = (
    Worker("orders", "orders,celery", 2),
    Worker("email", "email", 2),
    Worker("channels", "sms,printables,fulfilment", 1),
    Worker("scheduler", "scheduler", 1),
)
"""docker-compose.yml's groups (with smaller pools: the run shares two cores)."""


@dataclass(frozen=True)
class RunConfig:
    orders: int = 2000
    max_lines: int = 10
    place_seconds: float = 180.0
    """The orders are placed at a steady pace over this long; the faults happen meanwhile."""
    smtp_outage_seconds: float = 20.0
    sms_busy_seconds: float = 15.0
    sms_down_seconds: float = 15.0
    redis_down_seconds: float = 3.0
    workers: tuple[Worker, ...] = README_SPLIT
    kill_orders: str = "orders"
    kill_mid_send: str = "email"
    kill_third: str = "channels"
    malformed_every: int = 97
    """One order in this many is malformed (each door must refuse it with a reason)."""
    min_cards_per_second: float = 4.0
    """The settle bound allows the backlog to drain at this rate (a loaded machine's floor)."""
    seed: int = 12
    timings: dict[str, str] = field(
        default_factory=lambda: {
            "GIFTQ_RETRY_SCHEDULE_SECONDS": "[2, 3, 5, 8, 12, 20, 30]",
            "GIFTQ_RETRY_CAP_SECONDS": "60",
            "GIFTQ_RETRY_COUNTDOWN_MAX_SECONDS": "5",
            "GIFTQ_TASK_SOFT_TIME_LIMIT_SECONDS": "20",
            "GIFTQ_TASK_TIME_LIMIT_SECONDS": "25",
            "GIFTQ_BROKER_VISIBILITY_TIMEOUT_SECONDS": "40",
            "GIFTQ_SWEEP_SENDING_AFTER_SECONDS": "30",
            "GIFTQ_SWEEP_STUCK_AFTER_SECONDS": "10",
            "GIFTQ_SCHEDULER_INTERVAL_SECONDS": "1",
            "GIFTQ_SWEEP_INTERVAL_SECONDS": "2",
            "GIFTQ_ISSUE_CHUNK_SIZE": "100",
            "GIFTQ_DISPATCH_BATCH_SIZE": "20",
            "GIFTQ_SMTP_TIMEOUT_SECONDS": "10",
        }
    )

    def settle_bound(self, lines: int) -> float:
        """Seconds after the last order is placed by which everything must have settled:
        the retry schedule run out, a dead task's rows swept and its message redelivered,
        a physical card's cut-off (every minute), and the backlog at the floor rate."""
        schedule = [float(x) for x in self.timings["GIFTQ_RETRY_SCHEDULE_SECONDS"].strip("[]").split(",")]
        recovery = (
            sum(schedule) * 1.2
            + float(self.timings["GIFTQ_SWEEP_SENDING_AFTER_SECONDS"])
            + float(self.timings["GIFTQ_BROKER_VISIBILITY_TIMEOUT_SECONDS"])
            + 60
        )
        return recovery + lines / self.min_cards_per_second


SHORT = RunConfig(
    orders=60,
    max_lines=3,
    place_seconds=15.0,
    smtp_outage_seconds=4.0,
    sms_busy_seconds=2.0,
    sms_down_seconds=2.0,
    redis_down_seconds=1.0,
    workers=(
        Worker("orders", "orders,celery,scheduler", 1),
        Worker("channels", "email,sms,printables,fulfilment", 2),
    ),
    kill_orders="orders",
    kill_mid_send="channels",
    kill_third="channels",
    malformed_every=20,
    min_cards_per_second=2.0,
    timings={
        "GIFTQ_RETRY_SCHEDULE_SECONDS": "[1, 2, 3, 5, 8]",
        "GIFTQ_RETRY_CAP_SECONDS": "10",
        "GIFTQ_RETRY_COUNTDOWN_MAX_SECONDS": "3",
        "GIFTQ_TASK_SOFT_TIME_LIMIT_SECONDS": "12",
        "GIFTQ_TASK_TIME_LIMIT_SECONDS": "15",
        "GIFTQ_BROKER_VISIBILITY_TIMEOUT_SECONDS": "24",
        "GIFTQ_SWEEP_SENDING_AFTER_SECONDS": "16",
        "GIFTQ_SWEEP_STUCK_AFTER_SECONDS": "4",
        "GIFTQ_SCHEDULER_INTERVAL_SECONDS": "0.5",
        "GIFTQ_SWEEP_INTERVAL_SECONDS": "1",
        "GIFTQ_ISSUE_CHUNK_SIZE": "20",
        "GIFTQ_DISPATCH_BATCH_SIZE": "5",
        "GIFTQ_SMTP_TIMEOUT_SECONDS": "5",
    },
)


@dataclass(frozen=True)
class Flow:
    """What the placing and settling came to: the doors' answers, how long settling
    took (None: not within the bound), the bound, each worker's memory (start, end)."""

    doors: Doors
    settle_seconds: float | None
    bound: float
    memory: dict[str, tuple[int, int]]


@dataclass
class RunResult:
    checks: list[Check]
    events: list[str]
    figures: dict[str, str]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def check(self, name_start: str) -> Check:
        return next(c for c in self.checks if c.name.startswith(name_start))


# --- processes ----------------------------------------------------------------------------


class Process:
    """A process of the run (worker, beat, API) in its own session, logging to a file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, marker: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.text():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


def environment(
    config: RunConfig,
    *,
    database_url: str,
    broker_url: str,
    smtp_port: int,
    sms_url: str,
    api_url: str,
    data_dir: Path,
    vendor: PrivateKey,
) -> dict[str, str]:
    env = without_proxies({k: v for k, v in os.environ.items() if not k.startswith("GIFTQ_")})
    every_minute = ",".join(f"{h:02d}:{m:02d}" for h in range(24) for m in range(60))
    env.update(
        {
            "GIFTQ_ENV": "test",
            "GIFTQ_DATA_DIR": str(data_dir),
            "GIFTQ_DATABASE_URL": database_url,
            "GIFTQ_DATABASE_POOL_SIZE": "5",
            "GIFTQ_BROKER_URL": broker_url,
            "GIFTQ_SMTP_HOST": "127.0.0.1",
            "GIFTQ_SMTP_PORT": str(smtp_port),
            "GIFTQ_CODE_PEPPER": base64.b64encode(secrets.token_bytes(32)).decode(),
            "GIFTQ_CODE_KEYS": "fr1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "GIFTQ_PUBLIC_BASE_URL": api_url,
            "GIFTQ_SMS_BACKEND": "sink",
            "GIFTQ_SMS_API_BASE_URL": sms_url,
            "GIFTQ_SMS_RATE_PER_SECOND": "200",
            "GIFTQ_SMS_BURST": "50",
            "GIFTQ_SMS_PACE_MAX_WAIT_SECONDS": "5",
            "GIFTQ_PRINTABLE_BACKEND": "email",
            "GIFTQ_FULFILMENT_BACKEND": "file",
            "GIFTQ_FULFILMENT_CUTOFFS": every_minute,
            "GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY": base64.b64encode(bytes(vendor.public_key)).decode(),
            "GIFTQ_LOG_FORMAT": "console",
            "PYTHONUNBUFFERED": "1",
            **config.timings,
        }
    )
    return env


@contextlib.contextmanager
def settings_of(env: dict[str, str]) -> Iterator[None]:
    """This process (the Python door, the checks) on the run's settings, then back."""
    from delivery.channels.email import close_transport
    from delivery.worker.celery_app import reset_app
    from giftq import db
    from giftq.settings import reset_settings

    saved = {k: v for k, v in os.environ.items() if k.startswith("GIFTQ_")}

    def apply(values: dict[str, str]) -> None:
        for name in [k for k in os.environ if k.startswith("GIFTQ_")]:
            del os.environ[name]
        os.environ.update({k: v for k, v in values.items() if k.startswith("GIFTQ_")})
        reset_settings()
        reset_app()
        db.reset_engine()
        close_transport()

    apply(env)
    try:
        yield
    finally:
        apply(saved)


# --- the run ------------------------------------------------------------------------------


class FaultRun:
    def __init__(self, config: RunConfig, directory: Path, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.dir = directory
        self.say = say
        self.events: list[str] = []
        self.processes: dict[str, Process] = {}
        self.started = time.monotonic()

    def event(self, text: str) -> None:
        line = f"[{time.monotonic() - self.started:6.1f} s] {text}"
        self.events.append(line)
        self.say(line)

    def run(self) -> RunResult:
        cfg = self.config
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.postgres = PostgresCluster(self.dir / "postgres")
        self.redis = RedisServer(self.dir / "redis")
        try:
            self.postgres.create()
            self.redis.start()
        except BaseException:
            self.redis.stop()
            self.postgres.remove()
            raise
        self.event(f"PostgreSQL on port {self.postgres.port}, Redis on port {self.redis.port} (append-only)")
        planned = plan_orders(
            cfg.orders, max_lines=cfg.max_lines, seed=cfg.seed, invalid_every=cfg.malformed_every
        )
        permanent = {a for p in planned for a in p.permanent}
        flaky = {a: 2 for p in planned for a in p.flaky}
        smtp = FaultySmtp(self.dir / "mail", permanent=permanent, flaky=flaky)
        sms = FaultySms(None, port=0)
        sms.script_numbers(
            permanent={a for a in permanent if a.startswith("+")},
            flaky={a: 2 for a in flaky if a.startswith("+")},
        )
        vendor = PrivateKey.generate()
        api_port = free_port()
        from delivery.channels.email.sink import SmtpServerThread

        with SmtpServerThread(smtp, "127.0.0.1", 0) as relay, sms:
            env = environment(
                cfg,
                database_url=self.postgres.url,
                broker_url=self.redis.url,
                smtp_port=relay.port,
                sms_url=sms.base_url,
                api_url=f"http://127.0.0.1:{api_port}",
                data_dir=self.dir / "data",
                vendor=vendor,
            )
            self.env, self.planned, self.smtp, self.sms = env, planned, smtp, sms
            self.vendor, self.api_port, self.logs = vendor, api_port, logs
            with settings_of(env):
                try:
                    return self._run()
                finally:
                    for process in self.processes.values():
                        process.stop()
                    self.redis.stop()
                    self.postgres.remove()

    def _start_processes(self, env: dict[str, str], api_port: int, logs: Path) -> dict[str, int]:
        celery = venv_command("celery")
        metrics_ports: dict[str, int] = {}
        for worker in self.config.workers:
            port = free_port()
            metrics_ports[worker.name] = port
            multiproc = self.dir / "prometheus" / worker.name
            multiproc.mkdir(parents=True)
            worker_env = dict(
                env, GIFTQ_WORKER_METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(multiproc)
            )
            self.processes[worker.name] = Process(
                worker.name,
                [
                    celery,
                    "-A",
                    "worker",
                    "worker",
                    "-Q",
                    worker.queues,
                    "-c",
                    str(worker.concurrency),
                    "-n",
                    f"{worker.name}@%h",
                    "--without-mingle",
                    "--without-gossip",
                    "--loglevel=INFO",
                ],
                worker_env,
                logs / f"worker-{worker.name}.log",
            )
        self.processes["beat"] = Process(
            "beat",
            [
                celery,
                "-A",
                "worker",
                "beat",
                "--schedule",
                str(self.dir / "celerybeat-schedule"),
                "--loglevel=INFO",
            ],
            env,
            logs / "beat.log",
        )
        self.processes["api"] = Process(
            "api", [venv_command("giftq"), "api", "--port", str(api_port)], env, logs / "api.log"
        )
        for worker in self.config.workers:
            self.processes[worker.name].wait_for(" ready.")
        wait_for_port(api_port, "giftq api", timeout=90)
        return metrics_ports

    def _run(self) -> RunResult:
        from api.keys import create_key
        from giftq.db import make_engine
        from giftq.migrate import upgrade

        upgrade(self.postgres.url)
        engine = make_engine(self.postgres.url)
        Session = sessionmaker(engine, expire_on_commit=False)
        try:
            with Session.begin() as s:
                api_key = create_key(s, name="fault-run", scopes=["orders"]).token
            metrics_ports = self._start_processes(self.env, self.api_port, self.logs)
            names = ", ".join(w.name for w in self.config.workers)
            self.event(f"{len(self.config.workers)} workers ({names}), beat and the API are up")
            flow = self._flow(Session, api_key)
            report, codes = self._scan(Session, metrics_ports)
            return self._check(Session, flow, report, codes)
        finally:
            engine.dispose()

    def _flow(self, Session: sessionmaker[Session], api_key: str) -> Flow:
        """Place the orders while the faults happen; wait for the system to settle."""
        cfg = self.config
        doors = Doors(
            self.planned,
            cfg.place_seconds,
            api_url=f"http://127.0.0.1:{self.api_port}",
            api_key=api_key,
            broker_url=self.redis.url,
            python=sys.executable,
            log_dir=self.logs,
        )
        placing_started = time.monotonic()
        doors.start()
        self.event(f"placing {len(self.planned)} orders through three doors over {cfg.place_seconds:.0f} s")
        memory_start = self._faults(self.smtp, self.sms, placing_started)
        doors.join()
        placed_at = time.monotonic()
        lines = sum(p.lines for p in self.planned)
        self.event(f"every door has placed its orders ({doors.placed_count} taken, {lines} lines)")
        bound = cfg.settle_bound(lines)
        self.say(f"waiting for the system to settle by itself, within {bound:.0f} s ...")
        settled = self._settle(Session, self.planned, self.sms, bound)
        self.event("settled" if settled is not None else "NOT settled within the bound")
        memory = {
            w.name: (memory_start[w.name], procs.tree_rss(self.processes[w.name].pid)) for w in cfg.workers
        }
        return Flow(doors, None if settled is None else settled - placed_at, bound, memory)

    def _scan(
        self, Session: sessionmaker[Session], metrics_ports: dict[str, int]
    ) -> tuple[fault_scan.ScanReport, dict[int, str]]:
        """Every place a code must not be (the metrics first, while the processes serve them)."""
        report = fault_scan.ScanReport(exempt=sorted(f"{t}.{c}" for t, c in fault_scan.EXEMPT_COLUMNS))
        with Session() as s:
            codes = fault_checks.issued_codes(s)
        code_set = set(codes.values())
        metrics = [f"http://127.0.0.1:{self.api_port}/metrics"]
        metrics += [f"http://127.0.0.1:{port}/metrics" for port in metrics_ports.values()]
        report.add("metrics", fault_scan.metrics_items(metrics), code_set)
        for process in self.processes.values():
            process.stop()
        self.event("workers, beat and the API stopped; checking")
        report.add("redis", fault_scan.redis_items(self.redis.url), code_set)
        report.add(
            "redis append-only file", fault_scan.file_items(_files(self.redis.directory, "*")), code_set
        )
        logs = [*_files(self.logs, "*"), self.postgres.log_path, self.redis.log_path]
        report.add("logs", fault_scan.file_items(logs), code_set)
        with Session() as s:
            report.add("database columns", fault_scan.database_items(s), code_set)
        report.add("fulfilment drop folder", fault_scan.file_items(_files(self.drop, "*")), code_set)
        self.stored_pdfs = [p for p in _files(self.dir / "data", "*.pdf") if self.drop not in p.parents]
        report.add("PDFs kept on disk", fault_scan.file_items(self.stored_pdfs), code_set)
        return report, codes

    @property
    def drop(self) -> Path:
        return Path(self.env["GIFTQ_DATA_DIR"]) / "fulfilment" / "drop"

    def _check(
        self, Session: sessionmaker[Session], flow: Flow, report: fault_scan.ScanReport, codes: dict[int, str]
    ) -> RunResult:
        worker_logs = "".join(self.processes[w.name].text() for w in self.config.workers)
        planned_failures = {a for p in self.planned for a in p.permanent}
        with Session() as s:
            emails = fault_checks.accepted_emails(s, self.smtp.received, codes)
            accepted = {
                "email": emails,
                "printable": emails,
                "sms": fault_checks.accepted_texts(s, self.sms.accepted_texts(), codes),
                "physical": fault_checks.accepted_cards(self.drop, self.vendor, s, codes),
            }
            doors = flow.doors
            checks = [
                fault_checks.settle_check(flow.settle_seconds, flow.bound),
                fault_checks.orders_check(
                    s, self.planned, doors.outcomes, worker_logs, doors.client_imported_giftq
                ),
                fault_checks.cards_check(s),
                fault_checks.gifts_check(s, accepted, planned_failures),
                fault_checks.notices_check(s, emails),
                fault_checks.ledger_check(s),
                fault_checks.memory_check(flow.memory),
                fault_checks.secrets_check(report, len(codes)),
            ]
        figures = {
            "relay refusals": ", ".join(f"{k}: {v}" for k, v in self.smtp.refusals.items()),
            "text provider refusals": ", ".join(f"{k}: {v}" for k, v in self.sms.refusals.items()),
            "messages accepted": f"{self.smtp.accepted} emails, {len(self.sms.accepted_texts())} texts",
            "exempt from the scan": ", ".join(report.exempt) + "; the accepted emails and texts (the gifts)",
            "PDFs kept on disk": str(len(self.stored_pdfs)),
        }
        return RunResult(checks, self.events, figures)

    # --- the faults -----------------------------------------------------------------------

    def _at(self, start: float, fraction: float) -> None:
        pause = start + self.config.place_seconds * fraction - time.monotonic()
        if pause > 0:
            time.sleep(pause)

    def _kill_child(self, worker: str, why: str) -> None:
        children = procs.children(self.processes[worker].pid)
        if not children:
            self.event(f"no pool child of the {worker} worker to kill")
            return
        os.kill(children[0], signal.SIGKILL)
        self.event(f"SIGKILL to a pool child of the {worker} worker (pid {children[0]}): {why}")

    def _kill_mid_send(self, smtp: FaultySmtp, worker: str) -> None:
        killed = threading.Event()
        worker_pid = self.processes[worker].pid

        def kill_sender(port: int) -> None:
            owner = procs.owner_of_port(port, procs.children(worker_pid))
            if owner is None:  # another worker's batch (printables): wait for one of this worker's
                smtp.on_next_data(kill_sender)
                return
            os.kill(owner, signal.SIGKILL)
            self.event(f"SIGKILL to the {worker} worker's child (pid {owner}) while the relay holds its DATA")
            killed.set()

        smtp.on_next_data(kill_sender)
        if not killed.wait(60):
            smtp.on_next_data(lambda port: None)
            self.event(f"the {worker} worker sent no batch within 60 s: the mid-send kill did not happen")

    def _faults(self, smtp: FaultySmtp, sms: FaultySms, start: float) -> dict[str, int]:
        cfg = self.config
        self._at(start, 0.08)
        memory = {w.name: procs.tree_rss(self.processes[w.name].pid) for w in cfg.workers}
        self._at(start, 0.10)
        self._kill_child(cfg.kill_orders, "while orders are being issued")
        self._at(start, 0.20)
        smtp.outage(cfg.smtp_outage_seconds)
        self.event(f"the relay answers 421 to everything for {cfg.smtp_outage_seconds:.0f} s")
        self._at(start, 0.30)
        sms.outage(cfg.sms_busy_seconds, cfg.sms_down_seconds)
        self.event(
            f"the text provider answers 429 for {cfg.sms_busy_seconds:.0f} s, "
            f"then 503 for {cfg.sms_down_seconds:.0f} s"
        )
        self._at(start, 0.45)
        self.redis.restart(cfg.redis_down_seconds)
        self.event(f"Redis restarted (down {cfg.redis_down_seconds:.0f} s)")
        self._at(start, 0.55)
        self._kill_mid_send(smtp, cfg.kill_mid_send)
        self._at(start, 0.70)
        self.postgres.restart()
        self.event("PostgreSQL restarted (pg_ctl restart -m fast)")
        self._at(start, 0.85)
        self._kill_child(cfg.kill_third, "while texts, printables and physical cards are being sent")
        return memory

    def _settle(
        self, Session: sessionmaker[Session], planned: list[PlannedOrder], sms: FaultySms, bound: float
    ) -> float | None:
        from delivery.models import Delivery, Order

        expected = sum(1 for p in planned if p.valid)
        deadline = time.monotonic() + bound
        quiet_since: float | None = None
        next_note = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with Session() as s:
                    orders = s.scalar(
                        select(func.count()).select_from(Order).where(Order.reference.like("FR-%"))
                    )
                    pending_orders = s.scalar(
                        select(func.count()).select_from(Order).where(Order.status.in_(PENDING_ORDER))
                    )
                    pending = s.scalar(
                        select(func.count())
                        .select_from(Delivery)
                        .where(Delivery.status.in_(PENDING_DELIVERY))
                    )
            except Exception:  # the database is still coming back
                time.sleep(1)
                continue
            callbacks_due = len(sms.accepted_texts()) * 3 - len(sms.callbacks)
            if time.monotonic() >= next_note:
                next_note = time.monotonic() + 10
                self.event(
                    f"waiting: {expected - (orders or 0)} orders not stored, {pending_orders} being issued, "
                    f"{pending} deliveries pending ({self._pending(Session)}), "
                    f"{max(0, callbacks_due)} text reports due"
                )
            if orders == expected and not pending_orders and not pending and callbacks_due <= 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 3:
                    return quiet_since
            else:
                quiet_since = None
            time.sleep(1)
        return None

    def _pending(self, Session: sessionmaker[Session]) -> str:
        from delivery.models import Delivery

        with Session() as s:
            rows = s.execute(
                select(Delivery.channel, Delivery.status, func.count())
                .where(Delivery.status.in_(PENDING_DELIVERY))
                .group_by(Delivery.channel, Delivery.status)
            ).all()
        return ", ".join(f"{channel} {status} {n}" for channel, status, n in rows) or "none"


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.rglob(pattern) if p.is_file()) if folder.is_dir() else []


def report(result: RunResult, say: Callable[[str], None] = print) -> None:
    say("")
    for name, value in result.figures.items():
        say(f"      {name}: {value}")
    for check in result.checks:
        say(check.line())
    say("")
    say("every promise kept" if result.ok else "A PROMISE BROKE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--short", action="store_true", help="the test suite's version: 60 orders, short outages"
    )
    parser.add_argument("--orders", type=int, help="how many orders (default 2000; --short 60)")
    parser.add_argument(
        "--place-seconds", type=float, help="the placing window, during which the faults happen"
    )
    parser.add_argument(
        "--keep", type=Path, help="run in this (new) folder and keep it: logs, mail, database"
    )
    args = parser.parse_args(argv)
    config = SHORT if args.short else RunConfig()
    if args.orders:
        config = dataclasses.replace(config, orders=args.orders)
    if args.place_seconds:
        config = dataclasses.replace(config, place_seconds=args.place_seconds)
    directory = args.keep or Path(tempfile.mkdtemp(prefix="giftq-faults-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        result = FaultRun(config, directory).run()
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    report(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
