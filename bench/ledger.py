"""Ledger benchmark: redemption and issuance rates against pgbench on the same server.

    python -m bench.ledger --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

In one run, against the server of ``--postgres-url`` (an admin URL: the benchmark
creates and drops its own databases):

1. the anchor: pgbench TPC-B, 8 clients, 2 threads, on a scratch database at scale 8;
2. bulk issuance: 100,000 cards, issued the way a caller would, in chunks of
   ``--chunk`` cards per ``issue_cards`` call and transaction (goal: 10,000 cards/s);
3. issuance with 1 and with 8 concurrent issuers, the same number of cards in
   chunks of ``--issuer-chunk`` (the pipeline's default chunk size): it must scale
   past one issuer (the shared funding account must not serialise issuers);
4. redemptions per second with 8 concurrent clients into many accounts, each
   redemption its own transaction (``redeem_code``), as a ratio to pgbench's tps
   (goal: at least 0.7).

Clients and issuers are processes, not threads: a redemption spends most of its
time in Python (SQLAlchemy, the HMAC, building results), and under the GIL eight
threads would measure one core.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import platform
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from queue import Empty
from typing import Any

from bench._anchors import (
    DEFAULT_POSTGRES_URL,
    Stopwatch,
    pgbench_tps,
    scratch_database,
    sqlalchemy_url,
    table,
)

GOAL_REDEEM_RATIO = 0.7
GOAL_BULK_CARDS_PER_SECOND = 10_000


def _bench_environment() -> None:
    """Secrets and a data dir of the benchmark's own; children inherit them (spawn)."""
    os.environ.setdefault("GIFTQ_ENV", "development")
    os.environ.setdefault("GIFTQ_DATA_DIR", tempfile.mkdtemp(prefix="giftq-bench-"))
    os.environ.setdefault("GIFTQ_CODE_PEPPER", base64.b64encode(secrets.token_bytes(32)).decode())
    os.environ.setdefault("GIFTQ_CODE_KEYS", "bench:" + base64.b64encode(secrets.token_bytes(32)).decode())


def _session_maker(url: str, pool_size: int = 2) -> Any:
    from sqlalchemy.orm import sessionmaker

    from giftq.db import make_engine

    return sessionmaker(make_engine(url, pool_size=pool_size, max_overflow=0), expire_on_commit=False)


def _issue(session_maker: Any, count: int, key: str, marketplace: str = "US") -> list[Any]:
    from ledger import CardSpec, issue_cards

    rng = random.Random(key)
    specs = [CardSpec(marketplace, rng.randrange(1000, 10_000)) for _ in range(count)]
    with session_maker.begin() as session:
        return issue_cards(session, specs, idempotency_key=key)


# --- issuance -----------------------------------------------------------------------------


def bulk_issue(url: str, total: int, chunk: int) -> float:
    """Cards per second issuing ``total`` cards, ``chunk`` per call, in this process."""
    session_maker = _session_maker(url)
    _issue(session_maker, 10, "bulk-warm-up")
    watch = Stopwatch()
    done = 0
    while done < total:
        n = min(chunk, total - done)
        _issue(session_maker, n, f"bulk-{done}")
        done += n
    seconds = watch.seconds
    session_maker.kw["bind"].dispose()
    return total / seconds


@dataclass(frozen=True)
class Job:
    """What one worker process does (picklable: it crosses to a spawned process)."""

    url: str
    name: str
    cards: int
    chunk: int = 500
    seconds: float = 0.0
    accounts: int = 1


def _issuer(job: Job, ready: Any, start: Any, results: Any) -> None:
    session_maker = _session_maker(job.url)
    _issue(session_maker, 10, f"{job.name}-warm-up")
    ready.put(job.name)
    start.wait()
    began = time.monotonic()
    for i in range(job.cards // job.chunk):
        _issue(session_maker, job.chunk, f"{job.name}-{i}")
    results.put((began, time.monotonic(), job.cards // job.chunk * job.chunk))
    session_maker.kw["bind"].dispose()


@dataclass(frozen=True)
class Concurrent:
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def _run_processes(target: Any, jobs: list[Job]) -> list[Any]:
    """Start a process per job, let them set up, release them at once, gather results."""
    ctx = multiprocessing.get_context("spawn")
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    processes = [ctx.Process(target=target, args=(job, ready, start, results)) for job in jobs]
    for p in processes:
        p.start()
    try:
        _gather(ready, processes)
        start.set()
        gathered = _gather(results, processes)
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


def concurrent_issue(url: str, issuers: int, total: int, chunk: int) -> Concurrent:
    jobs = [Job(url, f"issuer{issuers}-{i}", total // issuers, chunk) for i in range(issuers)]
    results = _run_processes(_issuer, jobs)
    began, ended = min(r[0] for r in results), max(r[1] for r in results)
    return Concurrent(sum(r[2] for r in results), ended - began)


# --- redemption ------------------------------------------------------------------------------


def _redeemer(job: Job, ready: Any, start: Any, results: Any) -> None:
    from ledger import redeem_code

    session_maker = _session_maker(job.url)
    codes: list[str] = []
    for i in range(0, job.cards, 5000):
        stock = _issue(session_maker, min(5000, job.cards - i), f"{job.name}-stock-{i}")
        codes += [card.code.reveal() for card in stock]
    rng = random.Random(job.name)
    ready.put(job.name)
    start.wait()
    began = time.monotonic()
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
    results.put((began, time.monotonic(), redeemed, redeemed == len(codes)))
    session_maker.kw["bind"].dispose()


def concurrent_redeem(
    url: str, clients: int, seconds: float, cards: int, accounts: int
) -> tuple[Concurrent, bool]:
    jobs = [Job(url, f"client{i}", cards, seconds=seconds, accounts=accounts) for i in range(clients)]
    results = _run_processes(_redeemer, jobs)
    began, ended = min(r[0] for r in results), max(r[1] for r in results)
    return Concurrent(sum(r[2] for r in results), ended - began), any(r[3] for r in results)


# --- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin URL of the server")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--cards", type=int, default=100_000, help="bulk issuance: cards in all")
    parser.add_argument("--chunk", type=int, default=5_000, help="bulk issuance: cards per issue_cards call")
    parser.add_argument("--issuer-cards", type=int, default=48_000, help="1 vs 8 issuers: cards in all")
    parser.add_argument("--issuer-chunk", type=int, default=500, help="1 vs 8 issuers: cards per call")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--redeem-seconds", type=float, default=15)
    parser.add_argument("--redeem-cards", type=int, default=8_000, help="cards in stock per client")
    parser.add_argument("--accounts", type=int, default=100_000, help="distinct recipient accounts")
    args = parser.parse_args(argv)
    _bench_environment()

    from sqlalchemy import create_engine, text

    from giftq import migrate

    print(
        f"giftq ledger benchmark: {platform.node()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    anchor = pgbench_tps(args.postgres_url, clients=8, threads=2, seconds=args.pgbench_seconds, scale=8)
    print(f"  pgbench done: {anchor.tps:,.0f} tps ({anchor.transactions:,} transactions)", flush=True)

    with scratch_database(args.postgres_url, "ledger") as bench_url:
        url = sqlalchemy_url(bench_url).render_as_string(hide_password=False)
        migrate.upgrade(url)
        engine = create_engine(url)
        with engine.connect() as c:
            server = c.execute(text("SHOW server_version")).scalar_one()
        engine.dispose()

        bulk = bulk_issue(url, args.cards, args.chunk)
        print(f"  bulk issuance done: {bulk:,.0f} cards/s", flush=True)
        one = concurrent_issue(url, 1, args.issuer_cards, args.issuer_chunk)
        eight = concurrent_issue(url, 8, args.issuer_cards, args.issuer_chunk)
        print(f"  issuers done: {one.rate:,.0f} and {eight.rate:,.0f} cards/s", flush=True)
        redemption, ran_out = concurrent_redeem(
            url, args.clients, args.redeem_seconds, args.redeem_cards, args.accounts
        )
        print(f"  redemption done: {redemption.rate:,.0f}/s", flush=True)

    ratio = redemption.rate / anchor.tps
    scaling = eight.rate / one.rate
    rows = [
        ("pgbench TPC-B, 8 clients, -j 2, scale 8 (anchor)", f"{anchor.tps:,.0f} tps", "1.00", ""),
        (
            f"redemptions, {args.clients} client processes, {args.redeem_seconds:g} s",
            f"{redemption.rate:,.0f} /s",
            f"{ratio:.2f} x pgbench",
            f">= {GOAL_REDEEM_RATIO} {'met' if ratio >= GOAL_REDEEM_RATIO else 'MISSED'}",
        ),
        (
            f"bulk issuance, {args.cards:,} cards, {args.chunk:,} per call",
            f"{bulk:,.0f} cards/s",
            f"{bulk / anchor.tps:.2f} x pgbench",
            f">= {GOAL_BULK_CARDS_PER_SECOND:,} /s "
            + ("met" if bulk >= GOAL_BULK_CARDS_PER_SECOND else "MISSED"),
        ),
        (f"issuance, 1 issuer, {args.issuer_chunk} per call", f"{one.rate:,.0f} cards/s", "1.00", ""),
        (
            f"issuance, 8 issuers, {args.issuer_chunk} per call",
            f"{eight.rate:,.0f} cards/s",
            f"{scaling:.2f} x 1 issuer",
            f"> 1 {'met' if scaling > 1 else 'MISSED'}",
        ),
    ]
    print()
    print(f"PostgreSQL {server}; redemption clients and issuers are processes (spawned)")
    print(table(rows, ("measure", "rate", "ratio", "goal")))
    if ran_out:
        print(f"note: a redemption client ran out of its {args.redeem_cards:,} cards before the time was up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
