"""The fault run, short: every promise holds while everything breaks at once.

``python -m bench.faults --short`` as a test: 60 orders of 1 to 3 lines (email, text,
printable, physical; some scheduled a few seconds ahead; some to addresses that fail for
good or twice) through the three doors (Python, a Celery client that imports nothing
of giftq, HTTP), on a PostgreSQL cluster and a Redis (append-only file) of the run's
own, two workers and one beat. Meanwhile: three SIGKILLs of a pool child (one while the
relay holds a batch's DATA), a Redis restart, the relay answering 421 for 4 s, a
PostgreSQL restart, the text provider answering 429 and then 503. The system must then
settle by itself, and every check (:mod:`bench.fault_checks`) pass; docs/reliability.md
says what each one proves.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.faults import SHORT, FaultRun
from bench.services import postgres_available


@pytest.fixture
def run_directory(tmp_path: Path) -> Path:
    if not postgres_available():
        why = "initdb or redis-server is not installed"
        if os.environ.get("GIFTQ_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{why}; GIFTQ_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
        pytest.skip(why)
    return tmp_path / "run"


def test_every_promise_holds_under_many_faults_at_once(run_directory: Path) -> None:
    result = FaultRun(SHORT, run_directory, say=lambda _: None).run()

    # The faults happened, while orders flowed.
    events = "\n".join(result.events)
    assert events.count("SIGKILL to") == 3, events
    assert "while the relay holds its DATA" in events, events
    for fault in ("Redis restarted", "PostgreSQL restarted", "answers 421", "answers 429"):
        assert fault in events, events
    orders = result.check("every order").figures
    # One malformed order per door (every 20th: orders 19, 39 and 59), each refused.
    assert (orders["orders"], orders["refused"], orders["issued"]) == (SHORT.orders, 3, SHORT.orders - 3)

    failures = [check.line() for check in result.checks if not check.ok]
    assert not failures, "\n".join(failures)

    # What the checks measured is what the run planned: addresses that fail for good
    # failed, their purchasers heard, and no code was found outside the gifts.
    notices = result.check("every failure told").figures
    assert notices["failed_gifts"] > 0 and notices["told"] == notices["failed_gifts"]
    scan = result.check("no claim code").figures
    assert scan["codes"] == result.check("cards issued").figures["cards"] > 0
