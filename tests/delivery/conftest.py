"""Fixtures of the delivery tests.

Every test starts with the in-process broker (``memory://``) so that nothing reaches a
real Redis unless the test asks for one (``redis_url``) and sets it itself.
"""

from __future__ import annotations

import copy
import email
import email.message
import email.policy
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from delivery.celery_app import reset_app
from giftq.settings import reset_settings


@pytest.fixture(autouse=True)
def _memory_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GIFTQ_BROKER_URL", "memory://")
    reset_settings()
    reset_app()
    yield
    reset_app()


BASE_ORDER: dict[str, Any] = {
    "purchaser": {"name": "Pat Buyer", "email": "pat@example.com"},
    "reference": "SHOP-1001",
    "lines": [
        {
            "channel": "email",
            "amount": 2500,
            "marketplace": "US",
            "design": "birthday",
            "message": "Happy birthday!\nLove, Pat",
            "recipient": {"name": "Robin Receiver", "email": "robin@example.com"},
        }
    ],
}


def make_order(lines: int = 1, **line_overrides: Any) -> dict[str, Any]:
    """A valid order with ``lines`` email lines (recipients r0@, r1@, ...)."""
    order = copy.deepcopy(BASE_ORDER)
    template = order["lines"][0]
    order["lines"] = []
    for i in range(lines):
        line = copy.deepcopy(template)
        line["recipient"] = {"name": f"Recipient {i}", "email": f"r{i}@example.com"}
        line.update(copy.deepcopy(line_overrides))
        order["lines"].append(line)
    return order


@pytest.fixture
def order_payload() -> Any:
    """``order_payload(lines=1, **line_overrides)``: a valid order as a storefront sends it."""
    return make_order


def drain(queue: str) -> list[tuple[str, dict[str, Any]]]:
    """Take every message waiting on ``queue`` of the current app's broker: (task, kwargs)."""
    from delivery.celery_app import get_app

    taken = []
    with get_app().connection_for_read() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(queue)) is not None:
            _args, kwargs, _embed = message.decode()
            taken.append((message.headers["task"], kwargs))
    return taken


@pytest.fixture
def broker_messages() -> Any:
    """``broker_messages(queue)``: drain the in-process broker's ``queue`` (see :func:`drain`)."""
    for queue in ("orders", "email", "scheduler"):
        drain(queue)
    return drain


@pytest.fixture
def issued_order(Session: Any, order_payload: Any) -> Any:
    """``issued_order(lines=1, key=..., **line_overrides) -> order_id``: placed and issued."""
    from delivery import place_order, processing

    counter = iter(range(1_000_000))

    def make(lines: int = 1, key: str | None = None, **overrides: Any) -> int:
        placed = place_order(order_payload(lines, **overrides), idempotency_key=key or f"k{next(counter)}")
        while True:
            with Session.begin() as s:
                if processing.issue_next_chunk(s, placed.order_id).done:
                    return placed.order_id

    return make


# --- a real SMTP server with scripted answers ---------------------------------------------

CODE_PATTERN = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}\b")


class ScriptedSmtp:
    """An aiosmtpd handler: answers from ``script[address]`` at RCPT, one per attempt,
    then accepts. ``script["flaky@example.com"] = ["421 4.7.0 busy"] * 2`` says busy twice.
    Accepted messages are kept as ``(rcpt, parsed message)``."""

    def __init__(self) -> None:
        self.script: dict[str, list[str]] = {}
        self.rcpt_answers: list[tuple[str, str]] = []
        self.accepted: list[tuple[str, email.message.Message]] = []
        self._changed = threading.Condition()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        answers = self.script.get(address.lower())
        answer = answers.pop(0) if answers else "250 2.1.5 OK"
        with self._changed:
            self.rcpt_answers.append((address.lower(), answer))
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        with self._changed:
            for rcpt in envelope.rcpt_tos:
                self.accepted.append((rcpt.lower(), parsed))
            self._changed.notify_all()
        return "250 2.0.0 queued"

    def to(self, address: str) -> list[email.message.Message]:
        with self._changed:
            return [m for rcpt, m in self.accepted if rcpt == address.lower()]

    def answers_to(self, address: str) -> list[str]:
        with self._changed:
            return [a for rcpt, a in self.rcpt_answers if rcpt == address.lower()]

    def wait(self, address: str, count: int = 1, timeout: float = 30.0) -> list[email.message.Message]:
        with self._changed:
            self._changed.wait_for(
                lambda: sum(1 for rcpt, _ in self.accepted if rcpt == address.lower()) >= count, timeout
            )
        return self.to(address)


def text_of(message: email.message.Message) -> str:
    body = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    assert body is not None
    return str(body.get_content())


def codes_in(message: email.message.Message) -> list[str]:
    return CODE_PATTERN.findall(text_of(message))


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedSmtp]:
    """A scripted SMTP server for this test; settings (and the email transport) point at it."""
    from delivery.email import close_transport
    from delivery.email.sink import SmtpServerThread

    handler = ScriptedSmtp()
    with SmtpServerThread(handler, "127.0.0.1", 0) as server:
        monkeypatch.setenv("GIFTQ_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("GIFTQ_SMTP_PORT", str(server.port))
        reset_settings()
        close_transport()
        yield handler
        close_transport()


@pytest.fixture
def conftest() -> Any:
    """This module, for its helpers (``conftest.codes_in(message)``): tests import nothing here."""
    import sys

    return sys.modules[__name__]
