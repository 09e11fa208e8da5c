"""GIFTQ_NOTICES: which sent gifts the purchaser hears of, and what the receipt promises."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from delivery.notice_policy import receipt_promises_notices, wants_sent_notice
from giftq.settings import Settings

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


def gift(**overrides: Any) -> dict[str, Any]:
    """An email gift of a one-line order, accepted at its first attempt, sent at once."""
    return {
        "line_count": 1,
        "to_purchaser": False,
        "reported": False,
        "attempts": 1,
        "due_at": NOW,
        "created_at": NOW,
    } | overrides


LATER = dt.timedelta(days=30)


@pytest.mark.parametrize(
    ("policy", "facts", "told"),
    [
        # later (the default): only what the receipt could not say.
        ("later", gift(), False),
        ("later", gift(due_at=NOW + LATER), True),  # a scheduled send
        ("later", gift(attempts=3), True),  # it went out after retries
        ("later", gift(reported=True), True),  # a text delivered, a card shipped
        ("later", gift(to_purchaser=True, due_at=NOW + LATER), False),  # a card to print
        ("later", gift(line_count=6, due_at=NOW + LATER), False),  # a big order
        # all: every gift of a small order.
        ("all", gift(), True),
        ("all", gift(to_purchaser=True), False),
        ("all", gift(line_count=6), False),
        ("all", gift(line_count=5), True),
        # failures: none.
        ("failures", gift(due_at=NOW + LATER), False),
        ("failures", gift(reported=True), False),
    ],
)
def test_who_hears_of_a_sent_gift(policy: str, facts: dict[str, Any], told: bool) -> None:
    settings = Settings(notices=policy, delivered_notice_max_lines=5)
    assert wants_sent_notice(**facts, settings=settings) is told


@pytest.mark.parametrize(
    ("policy", "lines", "promised"),
    [
        ("later", [("email", False)], False),
        ("later", [("email", False), ("email", True)], True),
        ("later", [("sms", False)], True),
        ("later", [("physical", False)], True),
        ("later", [("printable", False)], False),
        ("later", [("email", True)] * 6, False),
        ("all", [("email", False)], True),
        ("all", [("email", False)] * 6, False),
        ("failures", [("sms", True)], False),
    ],
)
def test_the_receipt_promises_what_will_come(
    policy: str, lines: list[tuple[str, bool]], promised: bool
) -> None:
    settings = Settings(notices=policy, delivered_notice_max_lines=5)
    assert receipt_promises_notices(lines, settings) is promised


def test_an_unknown_policy_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from giftq.settings import SettingsError

    monkeypatch.setenv("GIFTQ_NOTICES", "some")
    with pytest.raises(SettingsError, match="GIFTQ_NOTICES"):
        Settings()
