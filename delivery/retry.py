"""Which failures are worth retrying, and when: pure functions over data.

:func:`classify` sorts a failure into retryable or permanent:

=====================================  ===========
SMTP 4xx (421 busy, 451 try later)     retryable
SMTP 5xx (550 no such mailbox)         permanent
HTTP 429 and 5xx                       retryable
other HTTP 4xx (invalid number)        permanent
connection refused / lost, timeouts    retryable
anything else                          retryable, within the schedule
=====================================  ===========

This is the one policy; each channel's classifier (``channels/email/failures.py``,
``channels/sms/failures.py``) decides what its provider's codes mean and falls back to
:func:`classify` for anything it does not recognise. An unknown error is retried: it
is as likely a passing fault (a library's hiccup on reconnect) as a bug, the schedule
bounds the cost (8 attempts over about 11.5 hours, each in the attempts log for ops),
and telling a purchaser "failed for good" about a passing fault cannot be taken back.
What is known to be permanent is said so where it is known: a message that cannot be
rendered, an address a relay refused with 5xx, an invalid number.

:class:`RetrySchedule` says how long to wait after the n-th failure: the delays are data
(``GIFTQ_RETRY_SCHEDULE_SECONDS``), each spread by +/- ``jitter`` so that a burst of
failures does not come back as a burst, and never above ``cap``. After the last delay
the failure is final.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from enum import StrEnum

from giftq.settings import get_settings


class FailureKind(StrEnum):
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


def classify(
    *,
    smtp_code: int | None = None,
    http_status: int | None = None,
    error: BaseException | None = None,
) -> FailureKind:
    """Sort one failure; give whatever is known (a status code wins over the exception)."""
    if smtp_code is not None:
        return FailureKind.PERMANENT if 500 <= smtp_code < 600 else FailureKind.RETRYABLE
    if http_status is not None:
        if http_status == 429 or http_status >= 500:
            return FailureKind.RETRYABLE
        return FailureKind.PERMANENT
    return FailureKind.RETRYABLE


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    delays: tuple[int, ...] = (30, 120, 600, 1800, 3600, 10800, 21600)
    """Seconds to wait after the 1st, 2nd, ... failure; 8 attempts over about 11.5 hours."""
    jitter: float = 0.2
    """Each delay is spread uniformly over [delay * (1 - jitter), delay * (1 + jitter)]."""
    cap: int = 21600
    """No wait is ever longer than this, jitter included."""

    @classmethod
    def from_settings(cls) -> RetrySchedule:
        s = get_settings()
        return cls(tuple(s.retry_schedule_seconds), s.retry_jitter, s.retry_cap_seconds)

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay(self, failures: int, rand: float) -> float | None:
        """Seconds to wait after ``failures`` failed attempts; None when that was the last.

        ``rand`` is a uniform number in [0, 1) (passed in, so that this stays pure).
        """
        if failures < 1:
            raise ValueError("failures counts failed attempts, from 1")
        if failures > len(self.delays):
            return None
        spread = 1 + self.jitter * (2 * rand - 1)
        return min(self.delays[failures - 1] * spread, float(self.cap))

    def next_attempt_at(
        self, failures: int, now: dt.datetime, rand: float | None = None
    ) -> dt.datetime | None:
        delay = self.delay(failures, random.random() if rand is None else rand)
        return None if delay is None else now + dt.timedelta(seconds=delay)
