"""What a failed text means: retry it, give up (and why, for the purchaser), suppress the number.

Pure functions over what the provider said; the tables below are the policy.

:func:`classify_answer` takes the API's answer to a send (HTTP status and Twilio error
code), :func:`classify_unreachable` a send that got no answer, and
:func:`classify_report` a status callback (``undelivered`` / ``failed`` with its
``ErrorCode``). Each gives a :class:`SmsFailure`: ``kind`` from
:class:`delivery.retry.FailureKind`, ``reason`` from :class:`delivery.reasons.FailureReason`
(the purchaser's notice says it in their words), ``suppress`` when the number must not be
texted again until ops clear it, and ``detail`` for ops (one line, bounded, claim codes
masked with :func:`ledger.codes.redact.redact`).

Our own configuration is retryable. Credentials, sender numbers, Messaging Service,
geographic permissions and account state are ours to fix, not the recipient's: as with
an SMTP relay that refuses our login (``delivery.channels.email.failures``), the queue holds until
ops fix it instead of telling every purchaser that the gift failed for good.

Only an opt-out suppresses. A recipient who replied STOP (21610) must not get another
text from this sender, by law in the US and by carrier rules elsewhere. An invalid or
landline number (21211, 21614, 30006) fails again at once, free and harmlessly, and a
number can be fixed or ported, so it is not put on a list.

Carrier blocks and filtering (30004, 30005, 30007) are permanent, not retried: the same
text to the same handset is blocked again, and every retry of a filtered text teaches
the carrier's filter that our sender sends unwanted messages, which hurts every other
recipient's delivery. Ops can replay once the cause (registration, wording) is fixed.

Codes we do not know: an API refusal with another 4xx is permanent (the request itself
is wrong; :func:`delivery.retry.classify` says the same for any HTTP 4xx), HTTP 429 and
5xx are retryable. A delivery report with an unknown code is retryable: most of Twilio's
3xxxx carrier codes are transient (queue overflow, congestion, lost segment, unknown
carrier error), and the retry schedule is bounded, so a truly permanent one still ends
as a final failure, after the schedule, rather than giving up on a gift at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from delivery.reasons import FailureReason
from delivery.retry import FailureKind, classify
from ledger.codes.redact import redact

RETRYABLE, PERMANENT = FailureKind.RETRYABLE, FailureKind.PERMANENT
MAX_DETAIL_CHARS = 300

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True, slots=True)
class SmsFailure:
    """Why a text was not sent or not delivered, and what to do about it."""

    kind: FailureKind
    code: int | None
    """The Twilio error code, else the HTTP status, else None (no answer at all)."""
    reason: FailureReason
    """What the purchaser is told if this failure is final."""
    suppress: bool
    """Do not text this number again until ops clear it (the recipient opted out)."""
    detail: str
    """For ops: one line, at most 300 characters, claim codes masked."""

    @property
    def retryable(self) -> bool:
        return self.kind is RETRYABLE

    @property
    def permanent(self) -> bool:
        return self.kind is PERMANENT


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: FailureKind
    reason: FailureReason
    meaning: str
    suppress: bool = False


_OURS = FailureReason.UNREACHABLE
"""Our configuration failed: if it is never fixed, the gift could not be sent."""

# Twilio error codes an API request can be refused with (HTTP 4xx/5xx), and their meaning.
API_ERRORS: dict[int, _Rule] = {
    20003: _Rule(RETRYABLE, _OURS, "authentication failed: account SID or auth token wrong"),
    20005: _Rule(RETRYABLE, _OURS, "account not active (suspended or closed)"),
    20404: _Rule(RETRYABLE, _OURS, "resource not found: wrong account SID or API base URL"),
    20429: _Rule(RETRYABLE, FailureReason.UNREACHABLE, "too many requests: slow down"),
    20500: _Rule(RETRYABLE, FailureReason.UNREACHABLE, "provider internal error"),
    20503: _Rule(RETRYABLE, FailureReason.UNREACHABLE, "provider temporarily unavailable"),
    21211: _Rule(PERMANENT, FailureReason.UNDELIVERABLE, "invalid 'To' phone number"),
    21212: _Rule(RETRYABLE, _OURS, "invalid 'From' number (our sender setting)"),
    21408: _Rule(RETRYABLE, _OURS, "sending to this region is not enabled on our account"),
    21602: _Rule(PERMANENT, FailureReason.UNRENDERABLE, "message body is required"),
    21603: _Rule(RETRYABLE, _OURS, "a 'From' number or Messaging Service is required"),
    21606: _Rule(RETRYABLE, _OURS, "our 'From' number cannot send to this destination"),
    21608: _Rule(RETRYABLE, _OURS, "trial account: the number is not verified"),
    21610: _Rule(PERMANENT, FailureReason.OPTED_OUT, "recipient unsubscribed (replied STOP)", suppress=True),
    21612: _Rule(PERMANENT, FailureReason.UNDELIVERABLE, "the 'To' number cannot be reached by SMS"),
    21614: _Rule(PERMANENT, FailureReason.UNDELIVERABLE, "the 'To' number is not a mobile number"),
    21617: _Rule(PERMANENT, FailureReason.UNRENDERABLE, "body exceeds 1600 characters"),
    21635: _Rule(PERMANENT, FailureReason.UNDELIVERABLE, "the 'To' number is a landline"),
    21703: _Rule(RETRYABLE, _OURS, "Messaging Service has no phone numbers in its sender pool"),
    21705: _Rule(RETRYABLE, _OURS, "Messaging Service is invalid"),
}

# Twilio error codes a status callback can carry with ``undelivered`` or ``failed``.
REPORT_ERRORS: dict[int, _Rule] = {
    30001: _Rule(RETRYABLE, FailureReason.UNREACHABLE, "queue overflow: sent faster than the sender's rate"),
    30002: _Rule(RETRYABLE, _OURS, "account suspended"),
    30003: _Rule(RETRYABLE, FailureReason.UNREACHABLE, "unreachable handset (off, no signal)"),
    30004: _Rule(PERMANENT, FailureReason.REFUSED, "message blocked (by the recipient or carrier)"),
    30005: _Rule(PERMANENT, FailureReason.UNDELIVERABLE, "unknown handset: the number may not exist"),
    30006: _Rule(PERMANENT, FailureReason.UNDELIVERABLE, "landline or unreachable carrier"),
    30007: _Rule(PERMANENT, FailureReason.REFUSED, "carrier filtering: message flagged as spam"),
    30008: _Rule(RETRYABLE, FailureReason.UNREACHABLE, "unknown error from the carrier"),
    30009: _Rule(RETRYABLE, FailureReason.UNREACHABLE, "a segment of the message went missing"),
    30010: _Rule(RETRYABLE, _OURS, "message price exceeds our max price"),
    30017: _Rule(RETRYABLE, FailureReason.UNREACHABLE, "carrier network congestion"),
    30022: _Rule(RETRYABLE, FailureReason.UNREACHABLE, "US A2P 10DLC rate limit exceeded"),
    30023: _Rule(RETRYABLE, FailureReason.UNREACHABLE, "US A2P 10DLC daily cap reached"),
    30032: _Rule(RETRYABLE, _OURS, "toll-free number not verified"),
    30034: _Rule(RETRYABLE, _OURS, "US A2P 10DLC: our number is not registered to a campaign"),
}

FAILED_STATUSES = frozenset({"undelivered", "failed"})


def classify_answer(http_status: int, error_code: int | None, message: str = "") -> SmsFailure:
    """A send the API refused: its HTTP status, Twilio ``code`` and ``message``."""
    if 200 <= http_status < 300:
        # "Created" without a message SID we can read: something between us and the API
        # answered. The text may not exist; trying again is the safer mistake.
        detail = provider_text(f"HTTP {http_status} without a message SID: {message}")
        return SmsFailure(RETRYABLE, http_status, FailureReason.UNREACHABLE, False, detail)
    rule = API_ERRORS.get(error_code) if error_code is not None else None
    code = error_code if error_code is not None else http_status
    if rule is not None:
        return _failure(rule, code, f"HTTP {http_status}, error {error_code}: {message or rule.meaning}")
    # One rule for the status alone, shared with the other channels: 429/5xx retry, other 4xx not.
    kind = classify(http_status=http_status)
    reason = FailureReason.UNREACHABLE if kind is RETRYABLE else FailureReason.REFUSED
    what = f"error {error_code}" if error_code is not None else "no error code"
    return SmsFailure(kind, code, reason, False, provider_text(f"HTTP {http_status}, {what}: {message}"))


def classify_unreachable(error: BaseException) -> SmsFailure:
    """A send that got no HTTP answer (timeout, refused or lost connection): retryable.

    A timeout after the request went out may have created the message: retrying can
    then send it twice, the price of at-least-once delivery (as for email).
    """
    # The type says what happened; str(error) of some exceptions repeats the request.
    name = type(error).__name__
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        detail = f"no answer in time ({name})"
    else:
        detail = f"provider unreachable ({name})"
    return SmsFailure(RETRYABLE, None, FailureReason.UNREACHABLE, False, provider_text(detail))


def classify_report(status: str, error_code: int | None, message: str = "") -> SmsFailure | None:
    """A status callback: a failure for ``undelivered``/``failed``, None for anything else."""
    if status not in FAILED_STATUSES:
        return None
    rule = REPORT_ERRORS.get(error_code) if error_code is not None else None
    if rule is None and error_code is not None:
        # A refusal the API could also have given (21610 and friends) arrives this way too.
        rule = API_ERRORS.get(error_code)
    if rule is not None:
        return _failure(rule, error_code, f"{status}, error {error_code}: {message or rule.meaning}")
    what = f"unknown error {error_code}" if error_code is not None else "no error code"
    return SmsFailure(
        RETRYABLE, error_code, FailureReason.UNREACHABLE, False, provider_text(f"{status}, {what}: {message}")
    )


def meaning(error_code: int) -> str | None:
    """What a Twilio error code means, as these tables say; None for one they do not list."""
    rule = API_ERRORS.get(error_code) or REPORT_ERRORS.get(error_code)
    return rule.meaning if rule else None


def provider_text(text: str) -> str:
    """Text from (or about) the provider, fit to keep: one line, bounded, codes masked."""
    text = redact(" ".join(_CONTROL.sub(" ", text).split())).rstrip(" :")
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 1] + "…"
    return text


def _failure(rule: _Rule, code: int | None, detail: str) -> SmsFailure:
    return SmsFailure(rule.kind, code, rule.reason, rule.suppress, provider_text(detail))
