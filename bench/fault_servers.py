"""The providers of a fault run: an SMTP relay and a text-message provider that can be
told to fail, for some addresses or for a while.

- :class:`FaultySmtp`, an aiosmtpd handler (serve it with
  :class:`delivery.channels.email.sink.SmtpServerThread`): ``550`` at RCPT for addresses
  that fail for good, ``421`` a given number of times for flaky ones, ``421`` for every
  address during an outage; each accepted message is written to a file of its own (the
  run reads them afterwards, off the clock) and indexed with the sender's port. With
  :meth:`FaultySmtp.on_next_data` armed, the next DATA calls back (with the sending
  process's port) *before* the server answers: the run kills that worker mid-batch.
- :class:`FaultySms`, giftq's stand-in for Twilio (:class:`SmsSink`) with the same kinds of
  faults: numbers refused for good, flaky numbers, and a window of ``429`` followed by a
  window of ``503`` for every number.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delivery.channels.sms.sink import Reply, SmsSink


@dataclass(frozen=True, slots=True)
class Received:
    """One message the relay accepted: the file that holds it, its recipients, the sender's port."""

    path: Path
    rcpts: tuple[str, ...]
    peer_port: int


class FaultySmtp:
    """An aiosmtpd handler with scripted failures; accepted messages go to ``directory``."""

    def __init__(self, directory: Path, *, permanent: set[str], flaky: dict[str, int]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.permanent = {a.lower() for a in permanent}
        self._flaky = {a.lower(): n for a, n in flaky.items()}
        self._busy_until = 0.0
        self._lock = threading.Lock()
        self._on_data: Callable[[int], None] | None = None
        self.received: list[Received] = []
        self.refusals = {"421": 0, "550": 0}

    def outage(self, seconds: float) -> None:
        """Answer ``421`` to every recipient for the next ``seconds``."""
        with self._lock:
            self._busy_until = time.monotonic() + seconds

    def on_next_data(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(sender port)`` at the next DATA, before answering it."""
        with self._lock:
            self._on_data = callback

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self.received)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        rcpt = address.lower()
        with self._lock:
            if rcpt in self.permanent:
                self.refusals["550"] += 1
                return "550 5.1.1 no such mailbox"
            if time.monotonic() < self._busy_until:
                self.refusals["421"] += 1
                return "421 4.3.2 service not available, try later"
            if self._flaky.get(rcpt, 0) > 0:
                self._flaky[rcpt] -= 1
                self.refusals["421"] += 1
                return "421 4.7.0 busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        peer_port = int(session.peer[1])
        with self._lock:
            callback, self._on_data = self._on_data, None
        if callback is not None:
            callback(peer_port)
        with self._lock:
            path = self.directory / f"{len(self.received):06d}.eml"
            path.write_bytes(envelope.original_content or b"")
            self.received.append(Received(path, tuple(r.lower() for r in envelope.rcpt_tos), peer_port))
        return "250 2.0.0 queued"


class FaultySms(SmsSink):
    """The Twilio stand-in with numbers that fail for good or a few times, and outages."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._flaky: dict[str, int] = {}
        self._busy_until = 0.0
        self._down_until = 0.0
        self.refusals = {"429": 0, "503": 0, "permanent": 0, "flaky": 0}

    def script_numbers(self, *, permanent: set[str], flaky: dict[str, int]) -> None:
        with self._lock:
            for number in permanent:
                self.numbers[number] = Reply.error(21211)
            self._flaky.update(flaky)

    def outage(self, busy: float, down: float) -> None:
        """``429`` to every send for ``busy`` seconds, then ``503`` for ``down`` seconds."""
        with self._lock:
            now = time.monotonic()
            self._busy_until = now + busy
            self._down_until = now + busy + down

    def _next_reply(self, to: str) -> Reply:
        with self._lock:
            now = time.monotonic()
            if now < self._busy_until:
                self.refusals["429"] += 1
                return Reply.error(20429)
            if now < self._down_until:
                self.refusals["503"] += 1
                return Reply.error(20503)
            if self._flaky.get(to, 0) > 0:
                self._flaky[to] -= 1
                self.refusals["flaky"] += 1
                return Reply.error(20503)
            reply = super()._next_reply(to)
            if reply.error_code is not None:
                self.refusals["permanent"] += 1
            return reply

    def accepted_texts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)
