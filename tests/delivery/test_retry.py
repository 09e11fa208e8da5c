from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from delivery.retry import FailureKind, RetrySchedule, classify

R, P = FailureKind.RETRYABLE, FailureKind.PERMANENT


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"smtp_code": 421}, R),
        ({"smtp_code": 450}, R),
        ({"smtp_code": 451}, R),
        ({"smtp_code": 452}, R),
        ({"smtp_code": 550}, P),
        ({"smtp_code": 553}, P),
        ({"smtp_code": 554}, P),
        ({"http_status": 429}, R),
        ({"http_status": 503}, R),
        ({"http_status": 400}, P),
        ({"http_status": 404}, P),
        ({"error": ConnectionRefusedError("refused")}, R),
        ({"error": ConnectionResetError("reset")}, R),
        ({"error": TimeoutError()}, R),
        # Unknown errors are retried within the schedule: one policy for every channel.
        ({"error": KeyError("template variable")}, R),
        ({"smtp_code": 550, "error": TimeoutError()}, P),  # the code says more
        ({}, R),
    ],
)
def test_classify(kwargs: dict[str, object], kind: FailureKind) -> None:
    assert classify(**kwargs) is kind  # type: ignore[arg-type]


def test_schedule_is_data() -> None:
    schedule = RetrySchedule(delays=(10, 60, 600), jitter=0.0, cap=300)
    assert [schedule.delay(n, 0.5) for n in (1, 2, 3, 4)] == [10, 60, 300, None]
    assert schedule.max_attempts == 4


def test_jitter_spreads_both_ways() -> None:
    schedule = RetrySchedule(delays=(100,), jitter=0.2, cap=1000)
    assert schedule.delay(1, 0.0) == pytest.approx(80)
    assert schedule.delay(1, 0.5) == pytest.approx(100)
    assert schedule.delay(1, 0.999999) == pytest.approx(120, abs=1e-3)


@given(
    failures=st.integers(min_value=1, max_value=10),
    rand=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_never_above_the_cap_nor_negative(failures: int, rand: float) -> None:
    schedule = RetrySchedule()
    delay = schedule.delay(failures, rand)
    if failures > len(schedule.delays):
        assert delay is None
    else:
        assert delay is not None
        assert 0 < delay <= schedule.cap


def test_next_attempt_at() -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    schedule = RetrySchedule(delays=(30,), jitter=0.0)
    assert schedule.next_attempt_at(1, now) == now + dt.timedelta(seconds=30)
    assert schedule.next_attempt_at(2, now) is None


def test_failures_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        RetrySchedule().delay(0, 0.5)


def test_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from giftq.settings import reset_settings

    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "[1, 2]")
    monkeypatch.setenv("GIFTQ_RETRY_JITTER", "0")
    reset_settings()
    assert RetrySchedule.from_settings() == RetrySchedule(delays=(1, 2), jitter=0.0, cap=21600)


def test_the_email_channel_follows_the_same_policy_for_unknown_errors() -> None:
    from delivery.channels.email.failures import classify_smtp_failure

    class Odd(Exception):
        pass

    assert classify_smtp_failure(Odd("?")).kind == classify(error=Odd("?")) == R
