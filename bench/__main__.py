"""Every row of the performance table in one run: ``python -m bench``.

    python -m bench --redis-url redis://127.0.0.1:6379/13

Each row is measured with its anchor in the same run, on the same machine, and printed
as a ratio next to its goal:

- email cards end to end, orders of 10 lines and of 1 line (the common storefront
  order), against a raw SMTP blast into the same sink (:mod:`bench.pipeline`);
- ``place_order`` from one client, against a bare Celery ``delay()`` loop, and its p99;
- the ledger: redemptions against pgbench TPC-B on the same PostgreSQL, bulk issuance
  (:mod:`bench.ledger`);

then CPU per card by process (workers, PostgreSQL, the SMTP sink, the placing client),
the largest worker process's memory before and after the cards, and throughput of
one-line orders with 1, 2 and 4 worker processes (``--no-scaling`` skips it).

One client placing orders one after another bounds an end-to-end run at its placing
rate, so the one-line orders also run as a backlog: every order placed first, then
the workers' rate from their start to the last gift sent, as at a holiday peak when
many storefront processes place orders at once.
Absolute rates drift on shared machines; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from dataclasses import dataclass

from bench._anchors import DEFAULT_POSTGRES_URL, table
from bench.pipeline import PipelineRun, run_pipeline

GOAL_TEN_LINES = 0.8
GOAL_ONE_LINE = 0.5
GOAL_PLACING = 0.5
GOAL_PLACING_P99_MS = 10.0
GOAL_REDEEM = 0.7
GOAL_BULK_ISSUANCE = 10_000


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    measured: str
    anchor: str
    ratio: str
    goal: str
    met: bool | None
    """None: a row without a goal."""

    def cells(self) -> tuple[str, ...]:
        verdict = "" if self.met is None else ("met" if self.met else "MISSED")
        return (self.name, self.measured, self.anchor, self.ratio, self.goal, verdict)


def _email_row(name: str, run: PipelineRun, goal: float) -> Row:
    return Row(
        name,
        f"{run.cards_per_second:,.0f} cards/s",
        f"SMTP blast {run.blast:,.0f} msg/s",
        f"{run.ratio:.2f}",
        f">= {goal}",
        run.ratio >= goal,
    )


def _placing_rows(run: PipelineRun) -> list[Row]:
    ratio = run.placing_rate / run.delays
    return [
        Row(
            "place_order, one client",
            f"{run.placing_rate:,.0f} orders/s",
            f"bare delay() {run.delays:,.0f}/s",
            f"{ratio:.2f}",
            f">= {GOAL_PLACING}",
            ratio >= GOAL_PLACING,
        ),
        Row(
            "place_order p50 / p99",
            f"{run.p50_ms:.1f} / {run.p99_ms:.1f} ms",
            "",
            "",
            f"p99 < {GOAL_PLACING_P99_MS:g} ms",
            run.p99_ms < GOAL_PLACING_P99_MS,
        ),
    ]


def _ledger_rows(postgres_url: str, seconds: int, issue_cards: int) -> tuple[list[Row], list[str]]:
    """Redemption (1, 2, 4 and 8 clients against pgbench) and bulk issuance (against a raw
    COPY) rows, measured by :mod:`bench.ledger`'s own functions; and their details.

    Short settings here (``--ledger-seconds``); ``python -m bench.ledger`` runs the long version.
    """
    from bench import ledger

    ledger._bench_environment()
    _anchor_row, tps = ledger.pgbench_anchor(postgres_url, seconds=seconds)
    measured = [
        ledger.run_redemptions(postgres_url, clients, seconds=seconds, anchor_tps=tps)
        for clients in (1, 2, 4, 8)
    ]
    measured.append(ledger.run_issuance(postgres_url, issue_cards, chunk=min(5_000, issue_cards)))
    rows = [
        Row(
            m.measure,
            m.rate,
            f"pgbench {tps:,.0f} tps" if "redemptions" in m.measure else "raw COPY, same rows",
            m.ratio,
            m.goal,
            m.met,
        )
        for m in measured
    ]
    return rows, [f"{m.measure}: {m.detail}" for m in measured if m.detail]


def _cpu_rows(runs: dict[str, PipelineRun]) -> str:
    groups = sorted({g for run in runs.values() for g in run.cpu_ms_per_card})
    rows = [(name, *(f"{run.cpu_ms_per_card.get(g, 0.0):.1f}" for g in groups)) for name, run in runs.items()]
    return table(rows, ("CPU ms per card", *groups))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin URL (scratch DBs are made)"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="a Redis DB it may empty")
    parser.add_argument("--cards", type=int, default=2000, help="email cards per end-to-end row")
    parser.add_argument("--workers", type=int, default=2, help="worker pool processes (and blasters)")
    parser.add_argument("--delays", type=int, default=5000, help="delay() calls in the Celery anchor")
    parser.add_argument(
        "--scaling", action=argparse.BooleanOptionalAction, default=True, help="1, 2 and 4 worker processes"
    )
    parser.add_argument(
        "--ledger", action=argparse.BooleanOptionalAction, default=True, help="the ledger rows"
    )
    parser.add_argument("--ledger-seconds", type=int, default=10, help="pgbench and redemption run time")
    parser.add_argument("--issue-cards", type=int, default=100_000, help="cards in the bulk issuance row")
    args = parser.parse_args(argv)

    print(f"giftq benchmarks: {platform.node()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    common = {"postgres_url": args.postgres_url, "redis_url": args.redis_url, "delays": args.delays}
    ten = run_pipeline(cards=args.cards, lines=10, workers=args.workers, **common)
    print(f"  10-line orders done: {ten.cards_per_second:,.0f} cards/s", flush=True)
    one = run_pipeline(cards=args.cards, lines=1, workers=args.workers, **common)
    print(f"  1-line orders done: {one.cards_per_second:,.0f} cards/s", flush=True)
    peak = run_pipeline(cards=args.cards, lines=1, workers=args.workers, backlog=True, **common)
    print(f"  1-line orders, a backlog: {peak.cards_per_second:,.0f} cards/s", flush=True)
    rows = [
        _email_row("email cards end to end, 10-line orders", ten, GOAL_TEN_LINES),
        _email_row("email cards end to end, 1-line orders", one, GOAL_ONE_LINE),
        _email_row("1-line orders, the workers on a backlog", peak, GOAL_ONE_LINE),
        *_placing_rows(one),
    ]
    ledger_details: list[str] = []
    if args.ledger:
        ledger_rows, ledger_details = _ledger_rows(args.postgres_url, args.ledger_seconds, args.issue_cards)
        rows += ledger_rows
        print("  ledger done", flush=True)
    scaling: dict[int, PipelineRun] = {}
    if args.scaling:
        for workers in (1, 2, 4):
            scaling[workers] = run_pipeline(
                cards=max(args.cards // 2, 200), lines=1, workers=workers, **common
            )
            print(f"  {workers} worker(s) done: {scaling[workers].cards_per_second:,.0f} cards/s", flush=True)

    print()
    print(table([r.cells() for r in rows], ("row", "measured", "anchor", "ratio", "goal", "")))
    print()
    print(_cpu_rows({"10-line orders": ten, "1-line orders": one, "1-line, backlog": peak}))
    print()
    for detail in ledger_details:
        print(detail)
    for name, run in (("10-line orders", ten), ("1-line orders", one)):
        before, after = run.worker_rss_mb
        print(f"largest worker, {name}: {before:.0f} MB before, {after:.0f} MB after {run.cards:,} cards")
    if scaling:
        base = scaling[1].cards_per_second
        print()
        print(
            table(
                [
                    (
                        f"{w} worker process{'es' if w > 1 else ''}",
                        f"{r.cards_per_second:,.0f} cards/s",
                        f"{r.cards_per_second / base:.2f}",
                    )
                    for w, r in scaling.items()
                ],
                ("1-line orders, a backlog", "measured", "x 1 process"),
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
