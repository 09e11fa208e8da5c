"""HTTP API benchmark: the same work through ``giftq api`` and through the Python door.

    python -m bench.api --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

In one run, on a scratch database of ``--postgres-url``'s server:

1. redemptions, one client, one at a time: ``ledger.redeem_code`` in this process (the
   anchor), then ``POST /v1/redemptions`` against a live ``giftq api`` (uvicorn in a
   subprocess, ``--workers`` processes) on the same database;
2. orders of one email line, one client, one at a time: ``delivery.place_order`` here (the
   anchor), then ``POST /v1/orders``.

Each prints the rate, p50 and p99 latency, and the HTTP rate as a ratio of the Python
rate: what the HTTP door costs over the function it calls (authentication, the
idempotency row, JSON both ways, the network hop). Both sides publish to an in-process
broker (``memory://``), so no broker time is in either figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._anchors import DEFAULT_POSTGRES_URL, scratch_database, sqlalchemy_url, table
from bench.ledger import _bench_environment, _issue, _session_maker

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Timing:
    latencies: list[float]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


def timed(calls: list[Callable[[], Any]]) -> Timing:
    latencies = []
    began = time.perf_counter()
    for call in calls:
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return Timing(latencies, time.perf_counter() - began)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``giftq api`` in a subprocess, and a kept-alive HTTP connection to it."""

    def __init__(self, url: str, workers: int) -> None:
        self.port = _free_port()
        env = dict(os.environ, GIFTQ_DATABASE_URL=url, GIFTQ_API_WORKERS=str(workers))
        self.log = tempfile.NamedTemporaryFile(prefix="giftq-bench-api-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from api.cli import serve_app; serve_app()", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/v1/health")[0] == 200:
                    return
            except OSError:
                self.connection.close()
                time.sleep(0.2)
        raise RuntimeError(f"giftq api did not start; its log: {self.log.name}")

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        payload = json.dumps(body).encode() if body is not None else None
        sent = {"Content-Type": "application/json", **(headers or {})}
        self.connection.request(method, path, body=payload, headers=sent)
        answer = self.connection.getresponse()
        data = answer.read()
        return answer.status, data

    def stop(self) -> None:
        self.connection.close()
        self.process.terminate()
        self.process.wait(30)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def _expect(status: int, wanted: int, data: bytes) -> None:
    if status != wanted:
        raise RuntimeError(f"HTTP {status}, wanted {wanted}: {data[:300]!r}")


ORDER: dict[str, Any] = {
    "purchaser": {"name": "Pat Buyer", "email": "pat@example.com"},
    "lines": [
        {
            "channel": "email",
            "amount": 2500,
            "marketplace": "US",
            "recipient": {"name": "Robin Receiver", "email": "robin@example.com"},
        }
    ],
}


def _redemptions(
    server: Server, auth: dict[str, str], session_maker: Any, codes: list[str], n: int
) -> tuple[Timing, Timing]:
    from ledger import redeem_code

    def python_redeem(i: int) -> Callable[[], Any]:
        return lambda: redeem_code(
            session_maker,
            codes[i],
            account=f"py-{i % 50}",
            marketplace="US",
            idempotency_key=f"py-redeem-{i}",
            client="192.0.2.1",
        )

    def http_redeem(i: int) -> Callable[[], Any]:
        body = {
            "code": codes[i],
            "account": f"http-{i % 50}",
            "marketplace": "US",
            "client_address": "192.0.2.2",
        }

        def call() -> None:
            status, data = server.request(
                "POST", "/v1/redemptions", body, auth | {"Idempotency-Key": f"r{i}"}
            )
            _expect(status, 200, data)

        return call

    # Warm both paths (imports, connection pools, statement caches) before timing.
    for i in range(2 * n, 2 * n + 10):
        python_redeem(i)()
    for i in range(2 * n + 10, 2 * n + 20):
        http_redeem(i)()
    in_python = timed([python_redeem(i) for i in range(n)])
    print(f"  python redemptions done: {in_python.rate:,.0f}/s", flush=True)
    over_http = timed([http_redeem(i) for i in range(n, 2 * n)])
    print(f"  HTTP redemptions done: {over_http.rate:,.0f}/s", flush=True)
    return in_python, over_http


def _orders(server: Server, auth: dict[str, str], n: int) -> tuple[Timing, Timing]:
    from delivery import place_order

    def python_order(i: int) -> Callable[[], Any]:
        return lambda: place_order(ORDER, idempotency_key=f"py-order-{i}")

    def http_order(i: int) -> Callable[[], Any]:
        def call() -> None:
            status, data = server.request("POST", "/v1/orders", ORDER, auth | {"Idempotency-Key": f"o{i}"})
            _expect(status, 201, data)

        return call

    for i in range(10):
        python_order(-1 - i)()
        http_order(-1 - i)()
    in_python = timed([python_order(i) for i in range(n)])
    print(f"  python orders done: {in_python.rate:,.0f}/s", flush=True)
    over_http = timed([http_order(i) for i in range(n)])
    print(f"  HTTP orders done: {over_http.rate:,.0f}/s", flush=True)
    return in_python, over_http


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin URL of the server")
    parser.add_argument("--redemptions", type=int, default=500, help="per door")
    parser.add_argument("--orders", type=int, default=500, help="per door")
    parser.add_argument("--workers", type=int, default=1, help="giftq api worker processes")
    args = parser.parse_args(argv)
    _bench_environment()
    os.environ["GIFTQ_BROKER_URL"] = "memory://"

    from api.keys import create_key
    from giftq import db as giftq_db
    from giftq import migrate
    from giftq.settings import reset_settings

    print(f"giftq API benchmark: {platform.node()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with scratch_database(args.postgres_url, "api") as bench_url:
        url = sqlalchemy_url(bench_url).render_as_string(hide_password=False)
        migrate.upgrade(url)
        os.environ["GIFTQ_DATABASE_URL"] = url
        reset_settings()
        giftq_db.reset_engine()
        session_maker = _session_maker(url)
        with session_maker.begin() as session:
            token = create_key(session, name="bench", scopes=["orders", "redeem"]).token
        n = args.redemptions
        codes = [card.code.reveal() for card in _issue(session_maker, 2 * n + 20, "bench-api-stock")]
        server = Server(url, args.workers)
        try:
            auth = {"Authorization": f"Bearer {token}"}
            py_redeem, api_redeem = _redemptions(server, auth, session_maker, codes, n)
            py_orders, api_orders = _orders(server, auth, args.orders)
        finally:
            server.stop()
            session_maker.kw["bind"].dispose()
            giftq_db.reset_engine()

    def row(name: str, timing: Timing, anchor: Timing | None) -> tuple[str, ...]:
        ratio = f"{timing.rate / anchor.rate:.2f} x Python" if anchor else "1.00"
        return (
            name,
            f"{timing.rate:,.0f} /s",
            f"{timing.percentile(50):.1f} ms",
            f"{timing.percentile(99):.1f} ms",
            ratio,
        )

    rows = [
        row("redemptions, redeem_code in Python (anchor)", py_redeem, None),
        row(f"redemptions, POST /v1/redemptions ({args.workers} worker)", api_redeem, py_redeem),
        row("orders of 1 line, place_order in Python (anchor)", py_orders, None),
        row(f"orders of 1 line, POST /v1/orders ({args.workers} worker)", api_orders, py_orders),
    ]
    print()
    print(f"one client, one request at a time; {n:,} redemptions and {args.orders:,} orders per door")
    print(table(rows, ("measure", "rate", "p50", "p99", "ratio")))
    extra = statistics.mean(api_redeem.latencies) - statistics.mean(py_redeem.latencies)
    print(f"mean HTTP overhead per redemption: {extra * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
