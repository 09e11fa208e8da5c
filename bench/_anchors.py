"""Shared bench helpers: scratch databases, the pgbench anchor, a results table.

Absolute rates on shared 2-core machines drift from run to run, so every benchmark
measures an anchor on the same server in the same run and reports ratios to it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

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
