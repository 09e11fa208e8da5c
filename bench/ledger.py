"""Ledger benchmark: redemption and issuance rates against anchors measured in the same run.

    python -m bench.ledger --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

Against the server of ``--postgres-url`` (an admin URL: every measure creates and drops
scratch databases of its own), in one run:

1. claim codes: generation, lookup hash and encryption per card, in microseconds
   (goal: under 10 us a card together);
2. the anchor for redemption: pgbench TPC-B, 8 clients, 2 threads, at scale 8;
3. redemptions per second at 1, 2, 4 and 8 client processes into many accounts, each
   redemption its own transaction (``redeem_code``), as a ratio to pgbench's tps
   (goal: at least 0.7 at 8 clients);
4. bulk issuance of 100,000 cards, ``--chunk`` per ``issue_cards`` call, in a process
   of its own whose resident memory is printed before and after (it must stay flat),
   against its own anchor: a raw ``COPY`` of rows of the same shape into tables of the
   same shape, without triggers, foreign keys or any of the ledger's logic (goal:
   20,000 cards/s and at least 0.5 of the anchor);
5. issuance with 1 and with 8 concurrent issuers in chunks of the pipeline's size: it
   must scale past one issuer (the shared funding account must not serialise issuers).

Clients and issuers are processes, not threads: under the GIL eight threads would
measure one core. Each measure is a function returning a :class:`Row`, for a runner
that prints several benchmarks' rows together: :func:`code_costs`,
:func:`pgbench_anchor`, :func:`run_redemptions`, :func:`run_issuance`,
:func:`run_issuers`.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import platform
import random
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

from bench._anchors import (
    DEFAULT_POSTGRES_URL,
    cpu_by_process,
    cpu_spent,
    pgbench_tps,
    scratch_database,
    sqlalchemy_url,
    table,
)

GOAL_REDEEM_RATIO = 0.7
GOAL_ISSUE_PER_SECOND = 20_000
GOAL_ISSUE_COPY_RATIO = 0.5
GOAL_CODE_MICROSECONDS = 10.0


@dataclass(frozen=True)
class Row:
    """One measure: what, how fast, against which anchor, and whether it met its goal."""

    measure: str
    rate: str
    ratio: str = ""
    goal: str = ""
    met: bool | None = None
    detail: str = ""

    def cells(self) -> tuple[str, str, str, str]:
        verdict = "" if self.met is None else (" met" if self.met else " MISSED")
        return (self.measure, self.rate, self.ratio, f"{self.goal}{verdict}" if self.goal else "")


def _bench_environment() -> None:
    """Secrets and a data dir of the benchmark's own; children inherit them (spawn)."""
    os.environ.setdefault("GIFTQ_ENV", "development")
    os.environ.setdefault("GIFTQ_DATA_DIR", tempfile.mkdtemp(prefix="giftq-bench-"))
    os.environ.setdefault("GIFTQ_CODE_PEPPER", base64.b64encode(secrets.token_bytes(32)).decode())
    os.environ.setdefault("GIFTQ_CODE_KEYS", "bench:" + base64.b64encode(secrets.token_bytes(32)).decode())


@contextmanager
def _ledger_database(admin_url: str, purpose: str) -> Iterator[str]:
    """A scratch database migrated to the head, as a SQLAlchemy URL string."""
    from giftq import migrate

    _bench_environment()
    with scratch_database(admin_url, purpose) as bench_url:
        url = sqlalchemy_url(bench_url).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url


def _session_maker(url: str, pool_size: int = 2) -> Any:
    from sqlalchemy.orm import sessionmaker

    from giftq.db import make_engine

    return sessionmaker(make_engine(url, pool_size=pool_size, max_overflow=0), expire_on_commit=False)


_AMOUNTS = [random.Random(n).randrange(1000, 10_000) for n in range(5_000)]


def _issue(session_maker: Any, count: int, key: str, marketplace: str = "US") -> list[Any]:
    from ledger import CardSpec, issue_cards

    # Amounts vary, drawn once: the draw is not what is measured.
    specs = [CardSpec(marketplace, amount) for amount in _AMOUNTS[:count]]
    specs += [CardSpec(marketplace, 2500)] * (count - len(specs))
    with session_maker.begin() as session:
        return issue_cards(session, specs, idempotency_key=key)


def _rss_mb() -> float:
    """This process's resident memory now (Linux ``/proc``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- processes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What one worker process does (picklable: it crosses to a spawned process)."""

    url: str
    name: str
    cards: int
    chunk: int = 500
    seconds: float = 0.0
    accounts: int = 1


def _run_processes(target: Any, jobs: list[Job], around: Any = nullcontext) -> list[Any]:
    """Start a process per job, let them set up, release them at once, gather results.

    ``around()`` is entered once all are set up and left once all have answered, before
    any closes its connections (``finish``).
    """
    ctx = multiprocessing.get_context("spawn")
    ready, start, results, finish = ctx.Queue(), ctx.Event(), ctx.Queue(), ctx.Event()
    processes = [ctx.Process(target=target, args=(job, ready, start, results, finish)) for job in jobs]
    for p in processes:
        p.start()
    try:
        _gather(ready, processes)
        with around():
            start.set()
            gathered = _gather(results, processes)
        finish.set()
    finally:
        for p in processes:
            p.join(timeout=60)
    return gathered


def _gather(queue: Any, processes: list[Any]) -> list[Any]:
    """One item per process; fails fast when a worker dies instead of waiting forever."""
    items: list[Any] = []
    while len(items) < len(processes):
        try:
            items.append(queue.get(timeout=1))
        except Empty:
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a worker failed (exit codes {failed})") from None
    return items


# --- claim codes ---------------------------------------------------------------------------------


def code_costs(cards: int = 50_000) -> Row:
    """Microseconds of CPU per card to generate a code, hash it for lookup and seal it (one batch).

    CPU time, not wall time: on a loaded machine a process waits for a core as well.
    """
    _bench_environment()
    from ledger.codes import code_text, get_vault

    vault = get_vault()
    code_text.generate_many(100)  # warm up
    began = time.process_time()
    codes = code_text.generate_many(cards)
    generated = time.process_time()
    lookups = vault.lookup_hashes(codes)
    hashed = time.process_time()
    vault.seal_many(codes, lookups)
    sealed = time.process_time()
    per_card = (sealed - began) / cards * 1e6
    return Row(
        f"claim codes, {cards:,}: generate + HMAC + AES-GCM",
        f"{per_card:.1f} us CPU/card",
        goal=f"< {GOAL_CODE_MICROSECONDS:g} us",
        met=per_card < GOAL_CODE_MICROSECONDS,
        detail=(
            f"generate {(generated - began) / cards * 1e6:.1f} us,"
            f" HMAC {(hashed - generated) / cards * 1e6:.1f} us,"
            f" AES-GCM {(sealed - hashed) / cards * 1e6:.1f} us"
        ),
    )


# --- redemption ------------------------------------------------------------------------------


def pgbench_anchor(admin_url: str = DEFAULT_POSTGRES_URL, seconds: int = 15) -> tuple[Row, float]:
    """pgbench TPC-B, 8 clients, -j 2, scale 8: the row and its tps."""
    anchor = pgbench_tps(admin_url, clients=8, threads=2, seconds=seconds, scale=8)
    return Row(
        "pgbench TPC-B, 8 clients, -j 2, scale 8 (anchor)", f"{anchor.tps:,.0f} tps", "1.00"
    ), anchor.tps


def _redeemer(job: Job, ready: Any, start: Any, results: Any, finish: Any) -> None:
    from ledger import redeem_code

    session_maker = _session_maker(job.url)
    codes: list[str] = []
    for i in range(0, job.cards, 5000):
        stock = _issue(session_maker, min(5000, job.cards - i), f"{job.name}-stock-{i}")
        codes += [card.code.reveal() for card in stock]
    rng = random.Random(job.name)
    ready.put(job.name)
    start.wait()
    began, cpu = time.monotonic(), time.process_time()
    deadline = began + job.seconds
    redeemed = 0
    for code in codes:
        if time.monotonic() >= deadline:
            break
        redeem_code(
            session_maker,
            code,
            account=f"customer-{rng.randrange(job.accounts)}",
            marketplace="US",
            idempotency_key=f"{job.name}-redeem-{redeemed}",
        )
        redeemed += 1
    results.put((began, time.monotonic(), redeemed, time.process_time() - cpu, redeemed == len(codes)))
    finish.wait()
    session_maker.kw["bind"].dispose()


@contextmanager
def _server_cpu(url: str, spent: list[float]) -> Iterator[None]:
    """CPU seconds of the server processes serving ``url``'s database while the block runs."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with psycopg.connect(make_plain_url(url), autocommit=True) as conn:
        pids = frozenset(
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
            )
        )
    before = cpu_by_process()
    yield
    spent.append(cpu_spent(before, cpu_by_process(), pids=pids))


def run_redemptions(
    admin_url: str = DEFAULT_POSTGRES_URL,
    clients: int = 8,
    *,
    seconds: float = 10.0,
    anchor_tps: float | None = None,
    stock: int = 40_000,
    accounts: int = 100_000,
) -> Row:
    """Redemptions per second from ``clients`` processes, each redemption its own transaction.

    With ``anchor_tps`` (pgbench's, measured in the same run) the row gives the ratio; the
    goal applies to 8 clients. Each client redeems from a stock of its own cards (issued
    before the clock starts) into accounts drawn from ``accounts``.
    """
    with _ledger_database(admin_url, "redeem") as url:
        jobs = [
            Job(url, f"client{i}", max(1000, stock // clients), seconds=seconds, accounts=accounts)
            for i in range(clients)
        ]
        server: list[float] = []
        results = _run_processes(_redeemer, jobs, lambda: _server_cpu(url, server))
    began, ended = min(r[0] for r in results), max(r[1] for r in results)
    redeemed = sum(r[2] for r in results)
    rate = redeemed / (ended - began)
    cpu_ms = sum(r[3] for r in results) / max(1, redeemed) * 1000
    ratio = rate / anchor_tps if anchor_tps else None
    detail = (
        f"CPU per redemption: clients {cpu_ms:.2f} ms,"
        f" their server processes {server[0] / max(1, redeemed) * 1000:.2f} ms"
    )
    if any(r[4] for r in results):
        detail += "; a client ran out of cards before the time was up"
    return Row(
        f"redemptions, {clients} client process{'es' if clients > 1 else ''}",
        f"{rate:,.0f} /s",
        "" if ratio is None else f"{ratio:.2f} x pgbench",
        f">= {GOAL_REDEEM_RATIO} x pgbench" if clients == 8 and ratio is not None else "",
        (ratio >= GOAL_REDEEM_RATIO) if clients == 8 and ratio is not None else None,
        detail,
    )


# --- issuance ---------------------------------------------------------------------------------


def copy_anchor(url: str, cards: int, chunk: int) -> float:
    """Cards per second for a raw COPY of one issuance's rows into tables of the same shape.

    Per card: an account row, a card row (a random 32-byte hash, a 45-byte sealed code)
    and an entry; per chunk a transaction row and the funding entry; one transaction per
    chunk. The tables copy the ledger's columns, defaults and indexes, and nothing else
    (no triggers, foreign keys or checks). The rows are built before the clock starts.
    """
    import datetime as dt

    import psycopg

    now = dt.datetime.now(dt.UTC)
    plain = make_plain_url(url)
    with psycopg.connect(plain, autocommit=True) as conn:
        for name in ("accounts", "cards", "transactions", "entries"):
            conn.execute(
                f"CREATE TABLE anchor_{name} (LIKE ledger_{name} INCLUDING DEFAULTS INCLUDING INDEXES)"
            )
    batches = []
    next_id = 1
    for start in range(0, cards, chunk):
        n = min(chunk, cards - start)
        ids = range(next_id, next_id + n)
        txn = start // chunk + 1
        accounts = [(i, "card", "US", "USD", None, 5000, now) for i in ids]
        card_rows = [
            (
                i,
                i,
                "US",
                "USD",
                5000,
                "active",
                os.urandom(32),
                "bench",
                os.urandom(45),
                "ABCD",
                None,
                now,
                now,
            )
            for i in ids
        ]
        entries = [(i, txn, i, "USD", 5000, now) for i in ids] + [
            (next_id + n, txn, 0, "USD", -5000 * n, now)
        ]
        batches.append((txn, accounts, card_rows, entries))
        next_id += n + 1
    began = time.perf_counter()
    with psycopg.connect(plain) as conn:
        for txn, accounts, card_rows, entries in batches:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO anchor_transactions (id, kind, posted_at) VALUES (%s, 'issue', %s)",
                    (txn, now),
                )
                for copy_sql, rows in (
                    (
                        "COPY anchor_accounts (id, kind, marketplace, currency, owner, balance, created_at)",
                        accounts,
                    ),
                    (
                        "COPY anchor_cards (id, account_id, marketplace, currency, amount, status, code_hash,"
                        " code_key_id, code_ciphertext, code_last4, reference, issued_at, activated_at)",
                        card_rows,
                    ),
                    (
                        "COPY anchor_entries (id, transaction_id, account_id, currency, amount, posted_at)",
                        entries,
                    ),
                ):
                    with cur.copy(f"{copy_sql} FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
    return cards / (time.perf_counter() - began)


def make_plain_url(url: str) -> str:
    """A libpq URL (psycopg's) for a SQLAlchemy one."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _bulk_issuer(job: Job, ready: Any, start: Any, results: Any, finish: Any) -> None:
    session_maker = _session_maker(job.url)
    _issue(session_maker, 10, "bulk-warm-up")
    rss_before = _rss_mb()
    ready.put(job.name)
    start.wait()
    began, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < job.cards:
        n = min(job.chunk, job.cards - done)
        _issue(session_maker, n, f"bulk-{done}")
        done += n
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    results.put((job.cards / seconds, cpu_seconds / job.cards * 1e6, rss_before, _rss_mb()))
    finish.wait()
    session_maker.kw["bind"].dispose()


def run_issuance(admin_url: str = DEFAULT_POSTGRES_URL, cards: int = 100_000, *, chunk: int = 5_000) -> Row:
    """Bulk issuance through ``issue_cards`` against a raw COPY anchor in the same database."""
    with _ledger_database(admin_url, "issue") as url:
        anchor = copy_anchor(url, cards, chunk)
        [(rate, cpu_us, rss_before, rss_after)] = _run_processes(
            _bulk_issuer, [Job(url, "bulk", cards, chunk)]
        )
    ratio = rate / anchor
    return Row(
        f"bulk issuance, {cards:,} cards, {chunk:,} per call",
        f"{rate:,.0f} cards/s",
        f"{ratio:.2f} x COPY",
        f">= {GOAL_ISSUE_PER_SECOND:,}/s and >= {GOAL_ISSUE_COPY_RATIO} x COPY",
        rate >= GOAL_ISSUE_PER_SECOND and ratio >= GOAL_ISSUE_COPY_RATIO,
        f"raw COPY anchor {anchor:,.0f} cards/s; issuer CPU {cpu_us:.0f} us/card;"
        f" issuer RSS {rss_before:.0f} MB before, {rss_after:.0f} MB after",
    )


def _issuer(job: Job, ready: Any, start: Any, results: Any, finish: Any) -> None:
    session_maker = _session_maker(job.url)
    _issue(session_maker, 10, f"{job.name}-warm-up")
    ready.put(job.name)
    start.wait()
    began = time.monotonic()
    for i in range(job.cards // job.chunk):
        _issue(session_maker, job.chunk, f"{job.name}-{i}")
    results.put((began, time.monotonic(), job.cards // job.chunk * job.chunk))
    finish.wait()
    session_maker.kw["bind"].dispose()


def run_issuers(
    admin_url: str = DEFAULT_POSTGRES_URL, issuers: int = 8, cards: int = 48_000, chunk: int = 500
) -> tuple[Row, float]:
    """Cards per second from ``issuers`` concurrent processes (the row and the rate)."""
    with _ledger_database(admin_url, "issuers") as url:
        jobs = [Job(url, f"issuer{issuers}-{i}", cards // issuers, chunk) for i in range(issuers)]
        results = _run_processes(_issuer, jobs)
    began, ended = min(r[0] for r in results), max(r[1] for r in results)
    rate = sum(r[2] for r in results) / (ended - began)
    return Row(
        f"issuance, {issuers} issuer{'s' if issuers > 1 else ''}, {chunk} per call", f"{rate:,.0f} cards/s"
    ), rate


# --- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin URL of the server")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--cards", type=int, default=100_000, help="bulk issuance: cards in all")
    parser.add_argument("--chunk", type=int, default=5_000, help="bulk issuance: cards per issue_cards call")
    parser.add_argument("--issuer-cards", type=int, default=48_000, help="1 vs 8 issuers: cards in all")
    parser.add_argument("--issuer-chunk", type=int, default=500, help="1 vs 8 issuers: cards per call")
    parser.add_argument("--clients", default="1,2,4,8", help="redemption client counts, comma-separated")
    parser.add_argument("--redeem-seconds", type=float, default=10)
    parser.add_argument("--only", choices=("codes", "redeem", "issue", "issuers"), help="run one part")
    args = parser.parse_args(argv)
    _bench_environment()

    print(
        f"giftq ledger benchmark: {platform.node()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]},"
        f" load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows: list[Row] = []

    def done(row: Row) -> None:
        rows.append(row)
        print(f"  {row.measure}: {row.rate} {row.ratio} {row.detail}".rstrip(), flush=True)

    if args.only in (None, "codes"):
        done(code_costs())
    if args.only in (None, "redeem"):
        anchor_row, tps = pgbench_anchor(args.postgres_url, args.pgbench_seconds)
        done(anchor_row)
        for clients in (int(c) for c in args.clients.split(",")):
            done(run_redemptions(args.postgres_url, clients, seconds=args.redeem_seconds, anchor_tps=tps))
    if args.only in (None, "issue"):
        done(run_issuance(args.postgres_url, args.cards, chunk=args.chunk))
    if args.only in (None, "issuers"):
        one_row, one = run_issuers(args.postgres_url, 1, args.issuer_cards, args.issuer_chunk)
        done(one_row)
        eight_row, eight = run_issuers(args.postgres_url, 8, args.issuer_cards, args.issuer_chunk)
        done(
            Row(
                eight_row.measure,
                eight_row.rate,
                f"{eight / one:.2f} x 1 issuer",
                "> 1 x 1 issuer",
                eight / one > 1,
            )
        )
    print()
    print(table([r.cells() for r in rows], ("measure", "rate", "ratio", "goal")))
    for row in rows:
        if row.detail:
            print(f"{row.measure}: {row.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
