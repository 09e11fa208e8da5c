"""What a failed send means: retry it later, or give up and tell the purchaser.

:func:`classify_smtp_failure` is a pure function of the error (an exception, or an
SMTP reply code with its text):

=====================================================  =============
SMTP 4xx (421 busy / closing, 450, 451, 452, ...)       retryable
SMTP 5xx (550 no such mailbox, 553, 554, ...)           permanent
connection refused / reset / closed, timeouts, TLS      retryable
the relay refused *us* (login, EHLO, greeting), any     retryable
code: our configuration, not the recipient's address
anything else (an unknown exception)                    retryable
=====================================================  =============

Relay-level refusals are retryable on purpose: a wrong SMTP password must hold the
queue until ops fix it, not tell every purchaser that their gift failed for good.

``detail`` carries the server's words for ops (single line, at most 300 characters).
It never holds a message body: the transport only passes SMTP replies and exception
types here, and any claim code in them is masked anyway (the ledger's redaction).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from typing import Literal

import aiosmtplib

from delivery.retry import classify
from giftq.text import one_line
from ledger.codes.redact import redact

FailureKind = Literal["retryable", "permanent"]
"""The values of :class:`delivery.retry.FailureKind`."""

MAX_DETAIL_CHARS = 300

# The relay refused the session itself (not the recipient): fix the configuration, retry.
_RELAY_REFUSALS: tuple[type[BaseException], ...] = (
    aiosmtplib.SMTPAuthenticationError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPConnectResponseError,
    aiosmtplib.SMTPNotSupported,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPHeloError,
    smtplib.SMTPConnectError,
    smtplib.SMTPNotSupportedError,
)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a message was not accepted, and whether trying again can help."""

    kind: FailureKind
    code: int | None
    detail: str

    @property
    def retryable(self) -> bool:
        return self.kind == "retryable"

    @property
    def permanent(self) -> bool:
        return self.kind == "permanent"


def classify_smtp_failure(error: BaseException | tuple[int | None, str] | int) -> Failure:
    """Classify an SMTP failure: an exception, a ``(code, text)`` reply or a bare code."""
    if isinstance(error, int):
        return _from_reply(error, "")
    if isinstance(error, tuple):
        code, text = error
        return _from_reply(code, text)
    return _from_exception(error)


def _from_reply(code: int | None, text: str) -> Failure:
    detail = _detail(f"{code} {text}" if code is not None else text)
    if code is not None and 500 <= code <= 599:
        return Failure("permanent", code, detail)
    # 4xx, and anything that is not a refusal we understand: trying again is cheap.
    return Failure("retryable", code, detail)


def _from_exception(exc: BaseException) -> Failure:
    name = type(exc).__name__
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        # One envelope, one recipient in this codebase; with several, the first decides.
        return _from_exception(exc.recipients[0])
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        refused_code, refused_text = next(iter(exc.recipients.values()))
        return _from_reply(refused_code, _text(refused_text))
    code, text = _reply_of(exc)
    if isinstance(exc, _RELAY_REFUSALS):
        return Failure("retryable", code, _detail(f"relay refused the session ({name}): {text}"))
    if code is not None:
        return _from_reply(code, text)
    if isinstance(exc, TimeoutError):
        return Failure("retryable", None, _detail(f"timed out ({name})"))
    if isinstance(exc, ConnectionError | aiosmtplib.SMTPServerDisconnected):
        return Failure("retryable", None, _detail(f"connection failed or lost ({name}): {text}"))
    if isinstance(exc, ssl.SSLError):
        why = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or ""
        return Failure("retryable", None, _detail(f"TLS failed ({name}): {why}"))
    if isinstance(exc, OSError):
        # Errno text only: never str(exc), which may carry arbitrary payload.
        return Failure("retryable", None, _detail(f"network error ({name}): {exc.strerror or ''}"))
    if isinstance(exc, aiosmtplib.SMTPException | smtplib.SMTPException):
        return Failure("retryable", None, _detail(f"{name}: {text}"))
    # Unknown: the one policy (delivery.retry) decides; name only the type, its message
    # could hold anything.
    return Failure(classify(error=exc).value, None, _detail(f"unexpected error ({name})"))


def _reply_of(exc: BaseException) -> tuple[int | None, str]:
    """The SMTP reply code and text an exception carries, if it carries one."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code, exc.message
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code, _text(exc.smtp_error)
    if isinstance(exc, aiosmtplib.SMTPException):
        return None, exc.message
    if isinstance(exc, smtplib.SMTPException) and exc.args and isinstance(exc.args[0], str):
        return None, exc.args[0]
    return None, ""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _detail(text: str) -> str:
    text = one_line(text)
    text = redact(text)
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 1] + "…"
    return text
