"""A client for Twilio's Messages API (2010-04-01): send one text, get a typed answer.

``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded (``To``,
``Body``, ``StatusCallback`` and ``MessagingServiceSid`` or ``From``), HTTP basic auth with
the account SID and auth token, as Twilio's OpenAPI description defines it. A 201
answer is the Message resource (``sid``, ``status``: ``queued`` or ``accepted``); a
refusal is Twilio's error resource (``code``, ``message``, ``more_info``, ``status``, or
the newer RFC 9457 shape with ``code``, ``title``, ``detail``). Both become a
:class:`MessageAnswer`; only a send with no HTTP answer at all (timeout, refused or lost
connection) raises, as :class:`~delivery.channels.sms.errors.ProviderUnreachable`.

Why httpx and not the official ``twilio`` package. The contract is one form POST with
basic auth and two JSON shapes, published as OpenAPI, which the sink and the tests check.
The ``twilio`` package would bring ``requests``, ``aiohttp``, ``aiohttp-retry`` and PyJWT
into every worker for that call, raises ``TwilioRestException`` for every refusal (we want
an answer to classify, with exceptions only for transport failures), and keeps its own
``requests`` session, whose fork safety we would have to handle anyway. httpx gives one
kept-alive connection pool, explicit timeouts and typed transport errors. The tests still
use ``twilio``, as the reference for the webhook signature (``signature.py``).

One connection pool per process. :func:`get_client` is the process-wide client; a
Celery prefork child never uses its parent's pool (an at-fork hook and a pid check make
it build its own on first use; the parent's sockets are left alone, never closed from
the child). Connecting is retried once by httpx (nothing was sent then); a request that
was sent is never retried here: Twilio has no idempotency key for messages, so a second
POST could send a second text. That decision belongs to the retry policy.
"""

from __future__ import annotations

import json
import os
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import httpx

from delivery.channels.sms.errors import ProviderUnreachable, SmsConfigError
from delivery.channels.sms.failures import provider_text
from giftq.settings import Settings, get_settings

TWILIO_API_BASE_URL = "https://api.twilio.com"
SINK_API_BASE_URL = "http://127.0.0.1:8026"
API_VERSION = "2010-04-01"

SINK_ACCOUNT_SID = "AC" + "0" * 31 + "1"
"""The account the sink accepts when no account is configured (development only)."""
SINK_AUTH_TOKEN = "sink-development-token"  # noqa: S105 - a placeholder for the local sink

ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
# A sender: an E.164 long code, a short code, or an alphanumeric sender ID (at most 11).
SENDER = re.compile(r"^(\+[1-9][0-9]{6,14}|[0-9]{3,8}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11})$")


@dataclass(frozen=True, slots=True)
class MessageAnswer:
    """The API's answer to one send."""

    http_status: int
    message_sid: str | None
    """``SM...`` when the message was created."""
    status: str | None
    """The Message resource's status (``queued``, ``accepted``, ``failed``...)."""
    error_code: int | None
    """Twilio's error code when the send was refused (21211, 21610, 20429...)."""
    error_message: str
    """Twilio's words, one line, bounded, claim codes masked; empty when none."""
    retry_after: float | None = None
    """Seconds the provider asked us to wait (``Retry-After`` on a 429)."""

    @property
    def accepted(self) -> bool:
        return 200 <= self.http_status < 300 and self.message_sid is not None


class TwilioClient:
    """Sends texts through one account, from one sender, over a kept-alive pool."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str = TWILIO_API_BASE_URL,
        messaging_service_sid: str = "",
        from_number: str = "",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not ACCOUNT_SID.match(account_sid):
            raise SmsConfigError("the account SID must look like AC followed by 32 hex digits")
        if not auth_token:
            raise SmsConfigError("an auth token is required")
        if messaging_service_sid and not MESSAGING_SERVICE_SID.match(messaging_service_sid):
            raise SmsConfigError("a Messaging Service SID looks like MG followed by 32 hex digits")
        if not messaging_service_sid and not from_number:
            raise SmsConfigError("a Messaging Service SID or a From number is required")
        if from_number and not SENDER.match(from_number):
            raise SmsConfigError(
                "the From number must be E.164 (+14155550123), a short code or an alphanumeric ID"
            )
        if not base_url.startswith(("https://", "http://")):
            raise SmsConfigError("the API base URL must start with https:// (or http:// for the sink)")
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.base_url = base_url.rstrip("/")
        self.messaging_service_sid = messaging_service_sid
        self.from_number = from_number
        self.timeout = timeout
        self._transport = transport
        self.url = f"{self.base_url}/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        self._guard = threading.Lock()
        self._http: httpx.Client | None = None
        self._pid = os.getpid()
        self.pools_opened = 0
        """Connection pools opened in this process (observability, tests)."""
        _live_clients.add(self)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TwilioClient:
        """The client the settings describe (``GIFTQ_SMS_*``); the sink backend has defaults."""
        settings = settings or get_settings()
        if settings.sms_backend == "none":
            raise SmsConfigError("text messages are off (GIFTQ_SMS_BACKEND=none)")
        sink = settings.sms_backend == "sink"
        token = settings.sms_auth_token.get_secret_value() if settings.sms_auth_token else ""
        account_sid = settings.sms_account_sid
        if sink and not account_sid and not token:
            account_sid, token = SINK_ACCOUNT_SID, SINK_AUTH_TOKEN
        if not account_sid or not token:
            raise SmsConfigError("GIFTQ_SMS_ACCOUNT_SID and GIFTQ_SMS_AUTH_TOKEN are required")
        from_number = settings.sms_from_number
        if sink and not from_number and not settings.sms_messaging_service_sid:
            from_number = "giftq"
        default_base = SINK_API_BASE_URL if sink else TWILIO_API_BASE_URL
        return cls(
            account_sid,
            token,
            base_url=settings.sms_api_base_url or default_base,
            messaging_service_sid=settings.sms_messaging_service_sid,
            from_number=from_number,
            timeout=settings.sms_timeout_seconds,
        )

    def __repr__(self) -> str:
        return (
            f"TwilioClient(account_sid={self.account_sid!r}, base_url={self.base_url!r}, "
            f"sender={self.sender!r})"
        )

    @property
    def auth_token(self) -> str:
        """The token that signs requests and status callbacks."""
        return self._auth_token

    @property
    def sender(self) -> str:
        """Who the texts come from: the Messaging Service, else the From number."""
        return self.messaging_service_sid or self.from_number

    def send(self, to: str, body: str, *, status_callback: str) -> MessageAnswer:
        """Create one message to ``to``; the provider reports its fate to ``status_callback``.

        Raises :class:`ProviderUnreachable` when no HTTP answer came back; every answer,
        success or refusal, is a :class:`MessageAnswer`.
        """
        if not to or not body:
            raise ValueError("a text needs a recipient number and a body")
        if not status_callback.startswith(("https://", "http://")):
            raise ValueError("the status callback must be an http(s) URL")
        form = {"To": to, "Body": body, "StatusCallback": status_callback}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        if self.from_number:
            form["From"] = self.from_number
        try:
            response = self._client().post(self.url, data=form)
        except httpx.TransportError as exc:
            # The type and the host only: an exception's text may repeat the request.
            what = "timed out" if isinstance(exc, httpx.TimeoutException) else "unreachable"
            raise ProviderUnreachable(
                f"{self.base_url} {what} ({type(exc).__name__})",
                timeout=isinstance(exc, httpx.TimeoutException),
            ) from exc
        return parse_answer(response.status_code, response.headers, response.content)

    def close(self) -> None:
        """Close this process's pool (shutdown; idempotent). A later send opens a new one."""
        with self._guard:
            http, self._http = self._http, None
            inherited = self._pid != os.getpid()
        if http is not None and not inherited:
            http.close()

    def _client(self) -> httpx.Client:
        with self._guard:
            if self._pid != os.getpid():
                self._forget_inherited()
            if self._http is None:
                self._http = httpx.Client(
                    auth=httpx.BasicAuth(self.account_sid, self._auth_token),
                    timeout=httpx.Timeout(self.timeout),
                    headers={"Accept": "application/json", "User-Agent": "giftq"},
                    # retries=1 repeats a failed *connect* only: nothing was sent yet.
                    transport=self._transport or httpx.HTTPTransport(retries=1),
                    follow_redirects=False,
                )
                self.pools_opened += 1
            return self._http

    def _forget_inherited(self) -> None:
        """In a forked child: drop (but keep alive) the parent's pool; build our own later."""
        self._guard = threading.Lock()
        if self._http is not None:
            _inherited.append(self._http)
        self._http = None
        self._pid = os.getpid()
        self.pools_opened = 0


def parse_answer(http_status: int, headers: httpx.Headers | dict[str, str], content: bytes) -> MessageAnswer:
    """A :class:`MessageAnswer` from the status, headers and body of an API answer."""
    data: Any
    try:
        data = json.loads(content) if content else {}
    except ValueError:  # includes UnicodeDecodeError
        data = None
    if not isinstance(data, dict):
        data = {}
        error_message = f"answer is not a JSON object ({len(content)} bytes)"
    else:
        text = data.get("message") or data.get("detail") or data.get("title") or data.get("error_message")
        error_message = provider_text(str(text)) if text else ""
    sid = data.get("sid")
    status = data.get("status")
    error_code = _int_or_none(data.get("code") if data.get("code") is not None else data.get("error_code"))
    success = 200 <= http_status < 300
    return MessageAnswer(
        http_status=http_status,
        message_sid=sid if success and isinstance(sid, str) and MESSAGE_SID.match(sid) else None,
        status=status if isinstance(status, str) else None,
        error_code=error_code,
        error_message="" if success and error_code is None else error_message,
        retry_after=_retry_after(httpx.Headers(headers).get("Retry-After")),
    )


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _retry_after(value: str | None) -> float | None:
    # Seconds only; an HTTP-date would need a clock we do not want in a parser.
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86400 else None


# --- process-wide client and fork safety -----------------------------------------------

# Parents' pools inherited through fork(): referenced forever, never closed, so that
# neither this process nor its garbage collector touches their sockets.
_inherited: list[httpx.Client] = []
_live_clients: weakref.WeakSet[TwilioClient] = weakref.WeakSet()


class _ProcessClient:
    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.client: TwilioClient | None = None


_process = _ProcessClient()


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time would stay locked forever in the child.
    _process.guard = threading.Lock()
    for client in list(_live_clients):
        client._forget_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)


def get_client() -> TwilioClient:
    """The process-wide client, built from settings on first use (fork-safe)."""
    with _process.guard:
        if _process.client is None:
            _process.client = TwilioClient.from_settings()
        return _process.client


def close_client() -> None:
    """Close the process-wide client (worker shutdown); the next use builds a new one."""
    with _process.guard:
        client, _process.client = _process.client, None
    if client is not None:
        client.close()
