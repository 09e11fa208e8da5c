"""Sending a batch of texts: paced per sender, one API call each, one outcome each.

- :class:`TextEnvelope`: one text to one number (``ref`` is the caller's id, the
  delivery row's, and comes back on the outcome and in the status callback URL).
- :class:`TextOutcome`: what became of it. ``accepted`` with the message SID (the
  provider took it; ``delivered`` comes later by status callback), ``failed`` with an
  :class:`~delivery.channels.sms.failures.SmsFailure` (kind, code, detail, suppress,
  reason), or ``deferred``: not attempted, because the batch's wait for the send rate
  ran out or the provider asked us to slow down; send it again after ``retry_after``
  seconds. A deferral is not a failed attempt.
- :class:`SmsTransport`: :meth:`~SmsTransport.send_batch`; :func:`get_transport` is the
  process-wide one built from settings (fork-safe through its client).

Each text waits for its slot (:mod:`~delivery.channels.sms.ratelimit`), then goes out.
After a 429 the rest of the batch is deferred (the provider is alive but busy). When the
provider cannot be reached (timeout, refused connection), the rest of the batch gets the
same retryable failure without being tried, as the email transport does, so that a
batch of a hundred does not wait a hundred timeouts and a long outage still ends in
final failures the purchaser hears of.

Bodies hold claim codes: they are never logged, never in an outcome, never in a repr.
Provider text kept in a failure's ``detail`` is one line with codes masked.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import redis

from delivery.channels.sms.callbacks import status_callback_url
from delivery.channels.sms.errors import ProviderUnreachable, SmsConfigError
from delivery.channels.sms.failures import SmsFailure, classify_answer, classify_unreachable
from delivery.channels.sms.ratelimit import RateLimiter, rate_limiter_from_settings
from delivery.channels.sms.twilio import TwilioClient, close_client, get_client
from giftq.settings import Settings, get_settings

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
RATE_LIMITED_RETRY_AFTER = 1.0
"""Seconds to wait after a 429 that did not say how long."""
PACER_DOWN_RETRY_AFTER = 5.0
"""Seconds to wait when the shared send rate cannot be read (Redis unreachable)."""

Status = Literal["accepted", "failed", "deferred"]


@dataclass(frozen=True, slots=True)
class TextEnvelope:
    """One text: ``to`` in E.164, ``body`` (with its claim code: never in repr)."""

    ref: int
    to: str
    body: str = field(repr=False)

    def __post_init__(self) -> None:
        if type(self.ref) is not int:
            raise TypeError("ref is the delivery id (int)")
        if not isinstance(self.to, str) or not E164.match(self.to):
            raise ValueError(f"delivery {self.ref}: the number must be E.164, like +14155550123")
        if not isinstance(self.body, str) or not self.body.strip():
            raise ValueError(f"delivery {self.ref}: the text is empty")


@dataclass(frozen=True, slots=True)
class TextOutcome:
    """What became of one envelope."""

    ref: int
    status: Status
    message_sid: str | None = None
    failure: SmsFailure | None = None
    retry_after: float | None = None
    """For ``deferred`` (and a 429 failure): seconds to wait before sending again."""
    http_status: int | None = None
    """The API's HTTP status; None when it was not asked or did not answer."""

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def deferred(self) -> bool:
        return self.status == "deferred"


class SmsTransport:
    """Paced sending through one client (one account, one sender)."""

    def __init__(
        self,
        client: TwilioClient,
        limiter: RateLimiter,
        *,
        status_callback_base: str,
        pace_max_wait: float = 60.0,
    ) -> None:
        if limiter.sender != client.sender:
            raise SmsConfigError("the rate limiter must pace the client's own sender")
        status_callback_url(status_callback_base, 0)  # refuses a relative or non-http URL now
        self.client = client
        self.limiter = limiter
        self.status_callback_base = status_callback_base
        self.pace_max_wait = pace_max_wait

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, client: TwilioClient | None = None
    ) -> SmsTransport:
        settings = settings or get_settings()
        client = client or TwilioClient.from_settings(settings)
        callback = settings.sms_status_callback_url or f"{settings.public_base_url.rstrip('/')}/sms/status"
        return cls(
            client,
            rate_limiter_from_settings(client.sender, settings),
            status_callback_base=callback,
            pace_max_wait=settings.sms_pace_max_wait_seconds,
        )

    def __repr__(self) -> str:
        return f"SmsTransport(client={self.client!r}, limiter={self.limiter!r})"

    def send_batch(
        self,
        envelopes: Iterable[TextEnvelope],
        on_outcome: Callable[[TextOutcome], None] | None = None,
    ) -> list[TextOutcome]:
        """Send every envelope, paced; one outcome each, in order. Never raises for a
        provider's refusal or absence: those are outcomes.

        ``on_outcome`` sees each outcome as soon as it is known, before the next text is
        sent, so that the caller can record an acceptance before going on.
        """
        batch = list(envelopes)
        if not batch:
            return []
        outcomes: list[TextOutcome] = []

        def emit(*items: TextOutcome) -> None:
            for item in items:
                outcomes.append(item)
                if on_outcome is not None:
                    on_outcome(item)

        deadline = time.monotonic() + self.pace_max_wait
        for index, envelope in enumerate(batch):
            rest = batch[index + 1 :]
            try:
                slot = self.limiter.acquire(max(0.0, deadline - time.monotonic()))
            except redis.RedisError as exc:
                log.warning(
                    "SMS send rate unavailable (%s); %d texts deferred",
                    type(exc).__name__,
                    len(batch) - index,
                )
                emit(*_deferred([envelope, *rest], PACER_DOWN_RETRY_AFTER))
                break
            if not slot.granted:
                emit(*_deferred([envelope, *rest], slot.wait))
                log.info(
                    "SMS pacing: %d texts deferred by %.1f s (sender %s)",
                    len(rest) + 1,
                    slot.wait,
                    self.limiter.sender,
                )
                break
            outcome = self._send_one(envelope)
            emit(outcome)
            if outcome.http_status == 429:
                emit(*_deferred(rest, outcome.retry_after or RATE_LIMITED_RETRY_AFTER))
                break
            if outcome.failure is not None and outcome.http_status is None:
                # No answer at all: the provider is down or unreachable from here.
                emit(*[TextOutcome(e.ref, "failed", failure=outcome.failure) for e in rest])
                break
        _log_batch(outcomes)
        return outcomes

    def _send_one(self, envelope: TextEnvelope) -> TextOutcome:
        callback = status_callback_url(self.status_callback_base, envelope.ref)
        try:
            answer = self.client.send(envelope.to, envelope.body, status_callback=callback)
        except ProviderUnreachable as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            return TextOutcome(envelope.ref, "failed", failure=classify_unreachable(cause))
        if answer.accepted:
            return TextOutcome(
                envelope.ref, "accepted", message_sid=answer.message_sid, http_status=answer.http_status
            )
        failure = classify_answer(answer.http_status, answer.error_code, answer.error_message)
        return TextOutcome(
            envelope.ref,
            "failed",
            failure=failure,
            retry_after=answer.retry_after,
            http_status=answer.http_status,
        )

    def close(self) -> None:
        self.client.close()


def _deferred(envelopes: list[TextEnvelope], retry_after: float) -> list[TextOutcome]:
    return [TextOutcome(e.ref, "deferred", retry_after=max(retry_after, 0.0)) for e in envelopes]


def _log_batch(outcomes: list[TextOutcome]) -> None:
    accepted = sum(o.accepted for o in outcomes)
    deferred = sum(o.deferred for o in outcomes)
    for outcome in outcomes:
        if outcome.failure is not None:
            log.info(
                "SMS ref=%s not accepted (%s, %s%s): %s",
                outcome.ref,
                outcome.failure.kind,
                outcome.failure.code,
                ", suppress" if outcome.failure.suppress else "",
                outcome.failure.detail,
            )
    log.info(
        "SMS batch: %d accepted, %d deferred, %d failed",
        accepted,
        deferred,
        len(outcomes) - accepted - deferred,
    )


# --- the process-wide transport -----------------------------------------------------------


class _ProcessTransport:
    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.transport: SmsTransport | None = None


_process = _ProcessTransport()


def get_transport() -> SmsTransport:
    """The process-wide transport from settings; its client's pool is per process (fork-safe)."""
    with _process.guard:
        if _process.transport is None:
            _process.transport = SmsTransport.from_settings(client=get_client())
        return _process.transport


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time would stay locked forever in the child.
    _process.guard = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def close_transport() -> None:
    """Forget the process-wide transport and close its client (worker shutdown)."""
    with _process.guard:
        _process.transport = None
    close_client()
