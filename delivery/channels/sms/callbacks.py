"""Status callbacks: the provider tells us what became of a text, and we check it was them.

Every message is sent with ``StatusCallback`` = :func:`status_callback_url` (the
configured endpoint plus ``?ref=<delivery id>``), so that a report finds its delivery
even when it arrives before the worker has stored the message SID (Twilio can post
``queued`` and ``sent`` within milliseconds). The signature covers the whole URL, so the
``ref`` cannot be changed on the way.

:func:`parse_status_callback` checks the ``X-Twilio-Signature`` first
(:mod:`~delivery.channels.sms.signature`), then reads ``MessageSid``,
``MessageStatus`` (or the older ``SmsStatus``) and ``ErrorCode`` into a
:class:`StatusReport`. Reports arrive more than once and out of order: ``progress``
orders them (a ``sent`` after ``delivered`` changes nothing), and ``failure`` classifies
``undelivered``/``failed`` with :func:`~delivery.channels.sms.failures.classify_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from delivery.channels.sms.errors import InvalidSignature, MalformedCallback
from delivery.channels.sms.failures import SmsFailure, classify_report
from delivery.channels.sms.signature import Params, signed_pairs, verify_signature
from delivery.channels.sms.twilio import ACCOUNT_SID, MESSAGE_SID

REF_PARAMETER = "ref"


class MessageStatus(StrEnum):
    """A Message resource's status, as Twilio's OpenAPI description lists them."""

    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"
    PARTIALLY_DELIVERED = "partially_delivered"
    CANCELED = "canceled"
    RECEIVING = "receiving"
    RECEIVED = "received"


_PROGRESS: dict[MessageStatus, int] = {
    MessageStatus.ACCEPTED: 0,
    MessageStatus.SCHEDULED: 0,
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.PARTIALLY_DELIVERED: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.CANCELED: 3,
}
FINAL_PROGRESS = 3


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One verified status callback."""

    message_sid: str
    status: MessageStatus
    error_code: int | None
    delivery_ref: int | None
    """The delivery id from the callback URL (``?ref=``), when the URL carries one."""
    account_sid: str | None

    @property
    def progress(self) -> int:
        """0 queued, 1 sending, 2 sent, 3 final: a report never moves a delivery backwards."""
        return _PROGRESS.get(self.status, 0)

    @property
    def final(self) -> bool:
        """Delivered, undelivered, failed, read or canceled: no later report changes it."""
        return self.progress == FINAL_PROGRESS

    @property
    def delivered(self) -> bool:
        return self.status in (MessageStatus.DELIVERED, MessageStatus.READ)

    @property
    def failure(self) -> SmsFailure | None:
        """What an ``undelivered``/``failed`` report means; None for any other status."""
        return classify_report(self.status.value, self.error_code)


def status_callback_url(base_url: str, ref: int) -> str:
    """``base_url`` with ``ref=<delivery id>`` added to its query."""
    if type(ref) is not int:
        raise TypeError("ref is a delivery id (int)")
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError("the status callback URL must be an absolute http(s) URL")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != REF_PARAMETER]
    query.append((REF_PARAMETER, str(ref)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def parse_status_callback(
    url: str,
    params: Params,
    signature: str | None,
    auth_token: str,
    *,
    account_sid: str | None = None,
) -> StatusReport:
    """Verify and read one status callback.

    ``url`` is the full URL the provider requested (as it was configured: behind a proxy,
    the public one), ``params`` the form parameters, ``signature`` the
    ``X-Twilio-Signature`` header. Raises :class:`InvalidSignature` before looking at
    anything else, then :class:`MalformedCallback` naming each bad field. With
    ``account_sid``, a report for another account is malformed too.
    """
    if not verify_signature(url, params, signature, auth_token):
        raise InvalidSignature("the status callback's X-Twilio-Signature does not verify")
    fields: dict[str, list[str]] = {}
    for name, value in signed_pairs(params):
        fields.setdefault(name, []).append(value)
    problems: list[str] = []

    def one(name: str) -> str | None:
        values = fields.get(name, [])
        if len(values) > 1:
            problems.append(f"{name}: given {len(values)} different values")
            return None
        return values[0] if values else None

    sid = one("MessageSid") or one("SmsSid")
    if sid is None:
        problems.append("MessageSid: missing")
    elif not MESSAGE_SID.match(sid):
        problems.append("MessageSid: not a message SID (SM or MM and 32 hex digits)")

    raw_status = one("MessageStatus") or one("SmsStatus")
    status: MessageStatus | None = None
    if raw_status is None:
        problems.append("MessageStatus: missing")
    else:
        try:
            status = MessageStatus(raw_status)
        except ValueError:
            problems.append(f"MessageStatus: unknown status {raw_status[:20]!r}")

    raw_code = one("ErrorCode")
    error_code: int | None = None
    if raw_code:
        if raw_code.isdigit() and len(raw_code) <= 6:
            error_code = int(raw_code)
        else:
            problems.append("ErrorCode: not a number")

    account = one("AccountSid")
    if account is not None and not ACCOUNT_SID.match(account):
        problems.append("AccountSid: not an account SID")
    elif account_sid is not None and account != account_sid:
        problems.append("AccountSid: not our account")

    ref = _ref_of(url, problems)
    if problems:
        raise MalformedCallback("malformed status callback: " + "; ".join(problems))
    assert sid is not None and status is not None  # problems would have named them
    return StatusReport(sid, status, error_code, ref, account)


def _ref_of(url: str, problems: list[str]) -> int | None:
    refs = [v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True) if k == REF_PARAMETER]
    if not refs:
        return None
    if len(refs) > 1 or not refs[0].isdigit() or len(refs[0]) > 18:
        problems.append(f"{REF_PARAMETER}: the URL's delivery id is not one number")
        return None
    return int(refs[0])
