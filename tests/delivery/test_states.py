from __future__ import annotations

import pytest

from delivery.errors import InvalidTransition
from delivery.states import FINAL_FAILURES, PENDING, TRANSITIONS, DeliveryStatus, check, sources

S = DeliveryStatus


def test_every_status_has_a_row() -> None:
    assert set(TRANSITIONS) == set(DeliveryStatus)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.SCHEDULED, S.QUEUED),
        (S.QUEUED, S.SENDING),
        (S.SENDING, S.SENT),
        (S.SENT, S.DELIVERED),
        (S.SENT, S.BOUNCED),
        (S.SENDING, S.FAILED_RETRYABLE),
        (S.FAILED_RETRYABLE, S.SENDING),
        (S.FAILED_RETRYABLE, S.FAILED_PERMANENT),
        (S.SENDING, S.FAILED_PERMANENT),
        (S.FAILED_PERMANENT, S.QUEUED),
        (S.SENDING, S.QUEUED),
        (S.SCHEDULED, S.CANCELLED),
    ],
)
def test_allowed(source: DeliveryStatus, target: DeliveryStatus) -> None:
    assert check(source, target) is target


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.SENT, S.SENDING),  # never sent twice
        (S.SENT, S.QUEUED),
        (S.DELIVERED, S.QUEUED),
        (S.CANCELLED, S.QUEUED),
        (S.SCHEDULED, S.SENDING),  # only through the queue
        (S.SENDING, S.CANCELLED),  # in flight: too late
        (S.QUEUED, S.SENT),
    ],
)
def test_refused(source: DeliveryStatus, target: DeliveryStatus) -> None:
    with pytest.raises(InvalidTransition, match=f"from {source} to {target}"):
        check(source, target)


def test_terminal_states_go_nowhere() -> None:
    assert TRANSITIONS[S.DELIVERED] == TRANSITIONS[S.CANCELLED] == frozenset()


def test_sources_of_sending() -> None:
    assert sources(S.SENDING) == {S.QUEUED, S.FAILED_RETRYABLE}


def test_pending_can_be_cancelled_and_failures_replayed() -> None:
    assert all(check(s, S.CANCELLED) for s in PENDING)
    assert all(check(s, S.QUEUED) for s in FINAL_FAILURES)
