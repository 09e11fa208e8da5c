"""Fixtures of the delivery tests.

Every test starts with the in-process broker (``memory://``) so that nothing reaches a
real Redis unless the test asks for one (``redis_url``) and sets it itself.
"""

from __future__ import annotations

import copy
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
