"""Shared bench helpers: scratch databases, the pgbench anchor, a results table, and
the parts of an end-to-end run (ports, loopback checks, worker and sink processes, CPU
time by process).

Absolute rates on shared 2-core machines drift from run to run, so every benchmark
measures an anchor on the same server in the same run and reports ratios to it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def sqlalchemy_url(url: str | URL) -> URL:
    """The same URL with the psycopg 3 driver (``postgresql://`` would pick psycopg2)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg") if parsed.drivername == "postgresql" else parsed


@contextmanager
def scratch_database(admin_url: str, purpose: str) -> Iterator[URL]:
    """A new empty database on the admin URL's server, dropped afterwards (even on error)."""
    admin = sqlalchemy_url(admin_url)
    name = f"giftq_bench_{purpose}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with engine.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.set(database=name)
        finally:
            with engine.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def _libpq_args(url: URL) -> tuple[list[str], dict[str, str]]:
    args = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    clients: int
    seconds: int
    scale: int
    transactions: int


def pgbench_tps(
    admin_url: str, *, clients: int = 8, threads: int = 2, seconds: int = 15, scale: int = 8
) -> PgbenchResult:
    """TPC-B (pgbench's default script) on a scratch database initialised at ``scale``."""
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise SystemExit("pgbench is not installed (Debian/Ubuntu: apt-get install postgresql-client)")
    with scratch_database(admin_url, "pgbench") as url:
        args, env = _libpq_args(url)
        subprocess.run(
            [pgbench, "-i", "-q", "-s", str(scale), *args, str(url.database)],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
        run = subprocess.run(
            [pgbench, "-c", str(clients), "-j", str(threads), "-T", str(seconds), *args, str(url.database)],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
    tps = re.search(r"^tps = ([0-9.]+)", run.stdout, re.MULTILINE)
    done = re.search(r"^number of transactions actually processed: (\d+)", run.stdout, re.MULTILINE)
    if tps is None or done is None:
        raise RuntimeError(f"could not read pgbench's output:\n{run.stdout}\n{run.stderr}")
    return PgbenchResult(float(tps.group(1)), clients, seconds, scale, int(done.group(1)))


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A plain-text table, first column left-aligned and the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


# --- the parts of an end-to-end run ------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})


def loopback_only(host: str | None, what: str) -> None:
    """Refuse a server that is not on this machine: a benchmark sends nothing off the box."""
    if not host:
        return  # a Unix socket
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise SystemExit(f"{what}: cannot resolve {host!r} ({exc})") from None
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise SystemExit(f"{what}: {host} is not a loopback address; benchmarks talk to this machine only")


def without_proxies(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` without proxy settings: httpx would send even loopback requests to a proxy."""
    kept = {k: v for k, v in environ.items() if k.lower() not in PROXY_VARIABLES}
    kept["NO_PROXY"] = kept["no_proxy"] = "127.0.0.1,localhost,::1"
    return kept


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> socket.socket:
    """A loopback port held bound and never listening: every connection to it is refused,
    and no other program can start listening there while the socket is open."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    return held


def wait_for_port(port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} is not listening on port {port}") from None
            time.sleep(0.1)


def venv_command(name: str) -> str:
    """A console script of this interpreter's environment (not another one on PATH)."""
    own = Path(sys.executable).with_name(name)
    return str(own) if own.exists() else (shutil.which(name) or name)


def start_workers(
    env: dict[str, str], queues: str, workers: int, log: Path, loglevel: str = "WARNING"
) -> subprocess.Popen[bytes]:
    """``celery -A worker worker -Q <queues> -c <workers>`` as the README recommends, in a
    process group of its own (so that its CPU time can be summed and it can be stopped)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                venv_command("celery"),
                "-A",
                "worker",
                "worker",
                "-Q",
                queues,
                "-c",
                str(workers),
                "--without-mingle",
                "--without-gossip",
                f"--loglevel={loglevel}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_workers(timeout: float = 60.0) -> None:
    """Until a worker answers a ping (this process's settings name the broker)."""
    from delivery.worker.celery_app import get_app

    deadline = time.monotonic() + timeout
    while not get_app().control.ping(timeout=0.5):
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not answer a ping")


def stop_group(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the process group a ``start_new_session`` child leads, then wait for it."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


@dataclass(frozen=True, slots=True)
class ProcessCpu:
    group: int
    seconds: float
    """User plus system CPU time so far."""


def cpu_by_process() -> dict[int, ProcessCpu]:
    """Every process's group and CPU seconds so far, by pid (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, ProcessCpu] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        rest = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = ProcessCpu(int(rest[2]), (int(rest[11]) + int(rest[12])) / tick)
    return found


def cpu_spent(
    before: dict[int, ProcessCpu],
    after: dict[int, ProcessCpu],
    *,
    group: int = 0,
    pids: frozenset[int] = frozenset(),
) -> float:
    """CPU seconds spent between two snapshots by the processes of ``group`` or in ``pids``.

    A process born in between counts from zero; one that ended in between is lost, so
    take the second snapshot while the processes that matter are still running.
    """
    spent = 0.0
    for pid, now in after.items():
        if (group and now.group == group) or pid in pids:
            then = before.get(pid)
            spent += now.seconds - (then.seconds if then is not None and then.group == now.group else 0.0)
    return spent
