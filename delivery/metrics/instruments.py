"""The counters and histograms giftq moves as it works.

Created at import, in whichever process imports this module: with
``PROMETHEUS_MULTIPROC_DIR`` set *before the process starts*, prometheus-client keeps
each process's samples in files there, so that a prefork worker's children and the
API's uvicorn workers are added up by whoever serves the scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session

ORDERS = Counter("giftq_orders", "Orders processed, by outcome (issued, failed).", ["outcome"])
CARDS_ISSUED = Counter("giftq_cards_issued", "Cards issued, by currency.", ["currency"])
SENDS = Counter(
    "giftq_sends",
    "Answers to sends, by channel and outcome (accepted, retrying, failed, deferred).",
    ["channel", "outcome"],
)
RETRIES = Counter(
    "giftq_send_retries", "Sends that failed and were scheduled again, by channel.", ["channel"]
)
SEND_SECONDS = Histogram(
    "giftq_send_seconds",
    "Time for one send's answer to come, by channel (from the previous answer of its batch).",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
TASKS = Counter("giftq_tasks", "Celery tasks run by this worker, by task and final state.", ["task", "state"])


HTTP_REQUESTS = Counter(
    "giftq_http_requests",
    "HTTP requests answered by the API, by method, route (its template, never the path) and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "giftq_http_request_seconds",
    "Time to answer an HTTP request, by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def after_commit(session: Session, counter: Counter, amount: float = 1, **labels: str) -> None:
    """Count when ``session``'s transaction commits, not before: a rolled-back chunk that a
    redelivered task does again is counted once."""
    child = counter.labels(**labels)
    event.listen(session, "after_commit", lambda _session: child.inc(amount), once=True)
