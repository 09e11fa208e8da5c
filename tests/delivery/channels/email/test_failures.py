"""classify_smtp_failure: a pure function from an SMTP failure to retry-or-give-up."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable

import aiosmtplib
import pytest

from delivery.channels.email import Failure, classify_smtp_failure
from ledger.codes import ClaimCode

R, P = "retryable", "permanent"


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        # (code, text) replies and bare codes
        ((421, "4.3.2 Service not available"), R, 421),
        ((450, "4.2.0 Mailbox busy"), R, 450),
        ((451, "4.7.1 Greylisted, try again later"), R, 451),
        ((452, "4.5.3 Too many recipients"), R, 452),
        ((550, "5.1.1 <zoe@example.com>: Recipient address rejected: User unknown"), P, 550),
        ((551, "5.1.6 User not local"), P, 551),
        ((552, "5.2.2 Mailbox full"), P, 552),
        ((553, "5.1.3 Bad recipient address syntax"), P, 553),
        ((554, "5.7.1 Message rejected"), P, 554),
        (550, P, 550),
        (451, R, 451),
        ((None, "no reply at all"), R, None),
        ((250, "odd: success is not a failure we understand"), R, 250),
        # aiosmtplib refusals of one message
        (aiosmtplib.SMTPRecipientRefused(550, "5.1.1 User unknown", "zoe@example.com"), P, 550),
        (aiosmtplib.SMTPRecipientRefused(450, "4.2.1 Try later", "zoe@example.com"), R, 450),
        (aiosmtplib.SMTPSenderRefused(553, "5.7.1 Sender not allowed", "gifts@giftq.example"), P, 553),
        (aiosmtplib.SMTPDataError(554, "5.6.0 Message content rejected"), P, 554),
        (aiosmtplib.SMTPDataError(451, "4.3.0 Local error"), R, 451),
        (aiosmtplib.SMTPResponseException(421, "4.4.2 Timeout, closing"), R, 421),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(550, "User unknown", "zoe@example.com")]
            ),
            P,
            550,
        ),
        # the relay refusing us: configuration, so retryable even with a 5xx
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Authentication failed"), R, 535),
        (aiosmtplib.SMTPHeloError(501, "5.5.4 Bad EHLO"), R, 501),
        (aiosmtplib.SMTPConnectResponseError(554, "5.7.1 No SMTP service here"), R, 554),
        (aiosmtplib.SMTPNotSupported("STARTTLS extension not supported"), R, None),
        # connections and timeouts
        (aiosmtplib.SMTPServerDisconnected("Server not connected"), R, None),
        (aiosmtplib.SMTPConnectError("Error connecting to localhost on port 25"), R, None),
        (aiosmtplib.SMTPConnectTimeoutError("Timed out connecting"), R, None),
        (aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"), R, None),
        (ConnectionRefusedError(111, "Connection refused"), R, None),
        (ConnectionResetError(104, "Connection reset by peer"), R, None),
        (BrokenPipeError(32, "Broken pipe"), R, None),
        (TimeoutError(), R, None),
        (socket.gaierror(-2, "Name or service not known"), R, None),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), R, None),
        # the standard library's smtplib, for callers that use it
        (smtplib.SMTPRecipientsRefused({"zoe@example.com": (550, b"5.1.1 User unknown")}), P, 550),
        (smtplib.SMTPDataError(452, b"4.3.1 Insufficient storage"), R, 452),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 Bad credentials"), R, 535),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), R, None),
        # unknown exceptions: retry
        (RuntimeError("something odd"), R, None),
        (KeyError("x"), R, None),
    ],
)
def test_classification(error: object, kind: str, code: int | None) -> None:
    failure = classify_smtp_failure(error)  # type: ignore[arg-type]
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.code) == (kind, code)
    assert failure.retryable is (kind == R)
    assert failure.permanent is (kind == P)
    assert failure.detail
    assert "\n" not in failure.detail and "\r" not in failure.detail


def test_is_pure() -> None:
    error = aiosmtplib.SMTPRecipientRefused(550, "5.1.1 User unknown", "zoe@example.com")
    assert classify_smtp_failure(error) == classify_smtp_failure(error)
    assert classify_smtp_failure((550, "x")) == Failure("permanent", 550, "550 x")


def test_detail_keeps_the_servers_words_on_one_bounded_line() -> None:
    failure = classify_smtp_failure((550, "5.1.1 <zoe@example.com>:\r\n User unknown" + "!" * 1000))
    assert failure.detail.startswith("550 5.1.1 <zoe@example.com>: User unknown")
    assert len(failure.detail) <= 300


@pytest.mark.parametrize(
    "shape",
    [ClaimCode.reveal, lambda c: c.normalized, lambda c: c.reveal().lower(), lambda c: c.normalized.lower()],
)
def test_detail_never_holds_a_claim_code(shape: Callable[[ClaimCode], str]) -> None:
    code = ClaimCode.generate()
    failure = classify_smtp_failure((554, f"5.7.1 Message contains {shape(code)}, rejected"))
    assert failure.detail == f"554 5.7.1 Message contains {code.masked}, rejected"


def test_detail_keeps_what_is_not_a_claim_code() -> None:
    text = "4.7.1 queued as 0123456789ABCDEFG0 id 0b7a3a0c-1e1d-4e8e-9d3b-0e4b6b1f2a3c in 0.0123456789012416s"
    assert classify_smtp_failure((451, text)).detail == f"451 {text}"


def test_unknown_exception_messages_stay_out_of_the_detail() -> None:
    failure = classify_smtp_failure(ValueError("body was: your code is 7K3M-Q9RT-ZX2B-PW4N-H"))
    assert failure.detail == "unexpected error (ValueError)"
