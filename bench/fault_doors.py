"""The three doors of a fault run, each a storefront that places its share of the orders
at a steady pace while the faults happen, and tries again (same key) when giftq or its
database or broker is away, as a storefront must.

- ``python``: :func:`delivery.place_order` in this process (a thread);
- ``celery``: ``bench/fault_client.py``, a process that imports nothing of giftq and
  sends ``giftq.place_order`` by name with JSON kwargs;
- ``http``: ``POST /v1/orders`` to a ``giftq api`` process (a thread).

Each answers :class:`DoorOutcome` per order: placed (after how many tries) or refused,
with the refusal's reason as the door gave it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.fault_orders import PlannedOrder
from giftq.db import utcnow

CLIENT = Path(__file__).with_name("fault_client.py")
GIVE_UP_AFTER = 120.0
"""Seconds a door keeps trying one order before it records the order as not placed."""


@dataclass
class DoorOutcome:
    key: str
    door: str
    placed: bool = False
    refused: str | None = None
    """Why the door refused the order (a malformed one), in the door's words."""
    tries: int = 0
    task_id: str | None = None
    """The Celery door's task id (its refusal, if any, is a worker log line naming it)."""
    errors: list[str] = field(default_factory=list)
    """What the door answered on the tries that did not take (an outage), by type."""


class Doors:
    """Places ``planned`` through their doors over ``seconds``; :meth:`join` waits for all."""

    def __init__(
        self,
        planned: Sequence[PlannedOrder],
        seconds: float,
        *,
        api_url: str,
        api_key: str,
        broker_url: str,
        python: str,
        log_dir: Path,
    ) -> None:
        self.planned = list(planned)
        self.seconds = seconds
        self.api_url = api_url
        self.api_key = api_key
        self.broker_url = broker_url
        self.python = python
        self.log_dir = log_dir
        self.outcomes: dict[str, DoorOutcome] = {p.key: DoorOutcome(p.key, p.door) for p in planned}
        self.client_imported_giftq: bool | None = None
        self._threads: list[threading.Thread] = []
        self._client: subprocess.Popen[str] | None = None
        self._pace = {p.key: seconds * i / max(1, len(planned)) for i, p in enumerate(self.planned)}
        self.placed_count = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self._started = time.monotonic()
        self._start_client()
        for door, target in (("python", self._python_door), ("http", self._http_door)):
            thread = threading.Thread(target=target, name=f"door-{door}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()
        if self._client is not None:
            self._client.wait(GIVE_UP_AFTER)
            if self._client.stdout is not None:
                self._client.stdout.close()

    def _mine(self, door: str) -> list[PlannedOrder]:
        return [p for p in self.planned if p.door == door]

    def _wait_turn(self, plan: PlannedOrder) -> None:
        pause = self._started + self._pace[plan.key] - time.monotonic()
        if pause > 0:
            time.sleep(pause)

    def _done(self, outcome: DoorOutcome) -> None:
        with self._lock:
            self.placed_count += outcome.placed

    # --- the Python door ------------------------------------------------------------------

    def _python_door(self) -> None:
        from delivery import place_order
        from delivery.errors import InvalidOrder

        for plan in self._mine("python"):
            self._wait_turn(plan)
            outcome = self.outcomes[plan.key]
            deadline = time.monotonic() + GIVE_UP_AFTER
            while time.monotonic() < deadline:
                outcome.tries += 1
                try:
                    place_order(plan.ready(utcnow()), idempotency_key=plan.key)
                    outcome.placed = True
                    break
                except InvalidOrder as exc:
                    outcome.refused = str(exc)
                    break
                except Exception as exc:  # the database is away: the same key again, later
                    outcome.errors.append(type(exc).__name__)
                    time.sleep(0.5)
            self._done(outcome)

    # --- the HTTP door --------------------------------------------------------------------

    def _http_door(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=30, trust_env=False) as http:
            for plan in self._mine("http"):
                self._wait_turn(plan)
                outcome = self.outcomes[plan.key]
                deadline = time.monotonic() + GIVE_UP_AFTER
                while time.monotonic() < deadline:
                    outcome.tries += 1
                    try:
                        answer = http.post(
                            "/v1/orders", json=plan.ready(utcnow()), headers={"Idempotency-Key": plan.key}
                        )
                    except httpx.HTTPError as exc:
                        outcome.errors.append(type(exc).__name__)
                        time.sleep(0.5)
                        continue
                    if answer.status_code in (200, 201):
                        outcome.placed = True
                        break
                    if answer.status_code == 422:
                        problem = answer.json()
                        outcome.refused = "; ".join(
                            f"{e.get('pointer', '')}: {e.get('detail', '')}"
                            for e in problem.get("errors", [])
                        ) or str(problem.get("detail"))
                        break
                    outcome.errors.append(f"HTTP {answer.status_code}")
                    time.sleep(0.5)
                self._done(outcome)

    # --- the Celery door (another process) ------------------------------------------------

    def _start_client(self) -> None:
        now = utcnow()
        # Scheduled orders sent by this door get their send time as they are written here:
        # a few seconds ahead of when the client sends them, at most its pace later.
        for p in self._mine("celery"):
            if p.schedule_in is not None:
                p.schedule_in += self._pace[p.key]
        lines = [
            json.dumps({"key": p.key, "order": p.ready(now), "at": self._pace[p.key]})
            for p in self._mine("celery")
        ]
        # From a file, not a pipe: the client reads at its pace, and a pipe would block
        # this thread (and the other doors) until it had read nearly everything.
        orders = self.log_dir.parent / "celery-client-orders.jsonl"
        orders.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        with (self.log_dir / "celery-client.log").open("w") as log, orders.open("rb") as stdin:
            self._client = subprocess.Popen(
                [self.python, str(CLIENT), self.broker_url],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        reader = threading.Thread(target=self._read_client, name="door-celery", daemon=True)
        reader.start()
        self._threads.append(reader)

    def _read_client(self) -> None:
        assert self._client is not None and self._client.stdout is not None
        for raw in self._client.stdout:
            self._client_line(raw)

    def _client_line(self, raw: str) -> None:
        line = json.loads(raw)
        if "imported_giftq" in line:
            self.client_imported_giftq = bool(line["imported_giftq"])
            return
        outcome = self.outcomes[line["key"]]
        outcome.tries = int(line["tries"])
        outcome.task_id = str(line["task_id"])
        outcome.placed = True  # the broker took it; whether giftq refused it, the checks read
        self._done(outcome)
