"""A local stand-in for Twilio's Messages API: the SMS provider of the demo and the tests.

It speaks the same HTTP contract as Twilio (``POST /2010-04-01/Accounts/{AccountSid}/
Messages.json``, HTTP basic auth with the account SID and auth token, form fields
``To``, ``Body``, ``From`` or ``MessagingServiceSid``, ``StatusCallback``) and answers
as Twilio does: ``201`` with a Message resource, or an error resource
(``{"code", "message", "more_info", "status"}``) with Twilio's HTTP status for that code.
It checks each request as Twilio would: a ``To`` that is not E.164 is refused with
21211, a missing body with 21602, a body over 1600 characters with 21617, and so on.

Every accepted message is written to ``<dir>/<MessageSid>.json`` (mode 0600): the
Message resource with its body. **The body holds a claim code: the folder is for
development only**; never point a production setting at it.

What it answers can be told, for tests and demos:

- :attr:`SmsSink.numbers`: a :class:`Reply` for every send to a number (sticky). By
  default Twilio's magic test numbers answer as with Twilio's test credentials:
  +15005550001 invalid (21211), +15005550002 cannot route (21612), +15005550003 no
  permission for the region (21408), +15005550004 opted out (21610), +15005550009 not
  a mobile number (21614).
- :attr:`SmsSink.script`: the next answers, whatever the number, one per send
  (``[Reply.error(20429), Reply.error(21610), Reply(delay=5)]``), then the defaults.
- :class:`Report`: the status callbacks that follow an accepted message:
  ``queued``/``sent``/``delivered`` by default, or ``undelivered`` with an error code;
  optionally shuffled and repeated. Each is signed with ``X-Twilio-Signature`` under
  the sink's auth token and posted to the message's ``StatusCallback`` URL by a
  background thread as soon as the message is accepted, so the first may arrive
  before the sender has read the API's answer (as it can with Twilio).

:class:`SmsSink` is a context manager that serves on a thread (``port=0``: any free
port; :attr:`SmsSink.base_url` says where). ``giftq sms-sink`` runs one in the
foreground (:mod:`delivery.channels.sms.cli`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import hmac
import json
import logging
import os
import queue
import random
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import httpx

from delivery.channels.sms.segments import count_segments
from delivery.channels.sms.signature import SIGNATURE_HEADER, compute_signature
from delivery.channels.sms.twilio import (
    ACCOUNT_SID,
    API_VERSION,
    MESSAGING_SERVICE_SID,
    SENDER,
    SINK_ACCOUNT_SID,
    SINK_AUTH_TOKEN,
)

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
MAX_BODY_CHARS = 1600
_PATH = re.compile(rf"^/{API_VERSION}/Accounts/([^/]+)/Messages\.json$")

# HTTP status Twilio answers with, by error code (every other 2xxxx code: 400).
_HTTP_STATUS = {20003: 401, 20404: 404, 20429: 429, 20500: 500, 20503: 503}
_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "The 'To' number is not a valid phone number.",
    21212: "The 'From' number is not a valid phone number, shortcode, or alphanumeric sender ID.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number.",
    21602: "Message body is required.",
    21603: "The 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21609: "The StatusCallback URL is not a valid URL.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "The 'To' number is not a valid mobile number.",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21705: "The Messaging Service Sid is invalid.",
}


@dataclass(frozen=True, slots=True)
class Report:
    """The status callbacks posted after a message is accepted."""

    statuses: tuple[str, ...] = ("queued", "sent", "delivered")
    error_code: int | None = None
    """Sent with the ``undelivered``/``failed`` statuses."""
    shuffle: bool = False
    """Post in a random order (they do arrive out of order)."""
    repeat: int = 1
    """Post each one this many times (they do arrive more than once)."""
    delay: float = 0.0
    """Seconds before each post."""

    @classmethod
    def undelivered(cls, error_code: int, **options: Any) -> Report:
        return cls(("queued", "sent", "undelivered"), error_code, **options)

    @classmethod
    def failed(cls, error_code: int, **options: Any) -> Report:
        return cls(("queued", "failed"), error_code, **options)


@dataclass(frozen=True, slots=True)
class Reply:
    """How the sink answers one send: accept (``error_code`` None) or refuse with a code."""

    error_code: int | None = None
    http_status: int | None = None
    """Default: Twilio's for the code (429 for 20429, 5xx for 205xx, 400 for the rest)."""
    message: str = ""
    delay: float = 0.0
    """Seconds to think before answering (longer than the client's timeout: a timeout)."""
    report: Report | None = None
    """Callbacks for an accepted message; default: the sink's."""

    @classmethod
    def error(cls, error_code: int, **options: Any) -> Reply:
        return cls(error_code=error_code, **options)

    @property
    def status(self) -> int:
        if self.http_status is not None:
            return self.http_status
        if self.error_code is None:
            return 201
        return _HTTP_STATUS.get(self.error_code, 400)


MAGIC_NUMBERS: dict[str, Reply] = {
    "+15005550001": Reply.error(21211),
    "+15005550002": Reply.error(21612),
    "+15005550003": Reply.error(21408),
    "+15005550004": Reply.error(21610),
    "+15005550009": Reply.error(21614),
}
"""Twilio's test-credential numbers and the errors they answer with."""


@dataclass(frozen=True, slots=True)
class PostedCallback:
    """One status callback the sink posted: where, what, and the answer it got."""

    url: str
    params: tuple[tuple[str, str], ...]
    answer: int | None
    """The receiver's HTTP status; None when the post itself failed."""

    @property
    def status(self) -> str:
        return dict(self.params)["MessageStatus"]

    @property
    def message_sid(self) -> str:
        return dict(self.params)["MessageSid"]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request to the Messages endpoint and the answer it got (no body kept)."""

    to: str
    http_status: int
    error_code: int | None
    message_sid: str | None
    fields: tuple[str, ...] = ()
    """The form's field names, in the order sent."""
    peer: tuple[str, int] | None = None
    """The client's address and port: one port for many requests is one kept-alive connection."""


@dataclass
class SmsSink:
    """The sink: a threaded HTTP server, its scripted answers and what it kept."""

    directory: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    account_sid: str = SINK_ACCOUNT_SID
    auth_token: str = field(default=SINK_AUTH_TOKEN, repr=False)
    report: Report | None = field(default_factory=Report)
    """Callbacks after each accepted message (None: post none)."""
    numbers: dict[str, Reply] = field(default_factory=lambda: dict(MAGIC_NUMBERS))
    script: deque[Reply] = field(default_factory=deque)
    on_message: Callable[[dict[str, Any]], None] | None = None
    """Called with each accepted Message resource (the CLI prints a line, never the body)."""
    seed: int | None = None
    """Seeds the shuffling of callbacks (reproducible tests)."""

    messages: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)
    exchanges: list[Exchange] = field(default_factory=list, init=False)
    callbacks: list[PostedCallback] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not ACCOUNT_SID.match(self.account_sid):
            raise ValueError("the sink's account SID must look like AC followed by 32 hex digits")
        if not self.auth_token:
            raise ValueError("the sink needs an auth token")
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._random = random.Random(self.seed)
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._posts: queue.Queue[tuple[str, list[tuple[str, str]], float] | None] = queue.Queue()
        if self.directory is not None:
            self.directory = Path(self.directory)
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    # --- running -----------------------------------------------------------------------

    def start(self) -> Self:
        server = _Server((self.host, self.port), _Handler)
        server.sink = self
        self._server = server
        self.port = server.server_address[1]
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="giftq-sms-sink",
                daemon=True,
            ),
            threading.Thread(target=self._post_callbacks, name="giftq-sms-sink-callbacks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers that are "thinking" (Reply.delay)
        server.shutdown()
        server.server_close()
        self._posts.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """What to set as the client's API base URL (``GIFTQ_SMS_API_BASE_URL``)."""
        return f"http://{self.host}:{self.port}"

    # --- what tests read ---------------------------------------------------------------

    def wait_for_callbacks(self, count: int, timeout: float = 30.0) -> list[PostedCallback]:
        """The callbacks posted so far, once there are at least ``count`` (or after ``timeout``)."""
        with self._lock:
            self._lock.wait_for(lambda: len(self.callbacks) >= count, timeout)
            return list(self.callbacks)

    def sent_to(self, number: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m["to"] == number]

    # --- serving (handler threads) -------------------------------------------------------

    def handle(
        self,
        path: str,
        authorization: str | None,
        content_type: str,
        raw: bytes,
        peer: tuple[str, int] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """The answer (HTTP status, JSON) to one request; the server's handler calls this."""
        match = _PATH.match(urlsplit(path).path)
        if match is None:
            return _error(20404, 404)
        if not self._authorized(match.group(1), authorization):
            return _error(20003, 401)
        pairs: list[tuple[str, str]] = []
        if content_type.split(";", maxsplit=1)[0].strip().lower() == "application/x-www-form-urlencoded":
            pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        form: dict[str, str] = {}
        for name, value in pairs:
            form.setdefault(name, value)
        to = form.get("To", "")
        names = tuple(name for name, _ in pairs)
        refusal = _check(form)
        if refusal is not None:
            self._record(Exchange(to, _HTTP_STATUS.get(refusal, 400), refusal, None, names, peer))
            return _error(refusal, _HTTP_STATUS.get(refusal, 400))

        reply = self._next_reply(to)
        if reply.delay and self._stopping.wait(reply.delay):
            return _error(20503, 503)
        if reply.error_code is not None or reply.status >= 300:
            self._record(Exchange(to, reply.status, reply.error_code, None, names, peer))
            return _error(reply.error_code, reply.status, reply.message)

        resource = self._accept(form)
        self._record(Exchange(to, 201, None, resource["sid"], names, peer))
        callback = form.get("StatusCallback")
        report = reply.report or self.report
        if callback and report is not None:
            self._schedule_callbacks(callback, resource, report)
        return 201, resource

    def _authorized(self, path_sid: str, authorization: str | None) -> bool:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        good_user = hmac.compare_digest(user.encode(), self.account_sid.encode())
        good_password = hmac.compare_digest(password.encode(), self.auth_token.encode())
        return good_user and good_password and path_sid == self.account_sid

    def _next_reply(self, to: str) -> Reply:
        with self._lock:
            if self.script:
                return self.script.popleft()
            return self.numbers.get(to, Reply())

    def _accept(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = email.utils.formatdate(usegmt=True).replace("GMT", "+0000")
        service = form.get("MessagingServiceSid") or None
        resource: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From") or None,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "0" if service else str(count_segments(form["Body"]).segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not form.get("From") else "queued",
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": form["To"],
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        if self.directory is not None:
            kept = dict(resource, status_callback=form.get("StatusCallback"))
            _write_private(self.directory / f"{sid}.json", json.dumps(kept, ensure_ascii=False, indent=2))
        with self._lock:
            self.messages.append(resource)
        if self.on_message is not None:
            self.on_message(resource)
        return resource

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    # --- status callbacks (one background thread) ----------------------------------------

    def _schedule_callbacks(self, url: str, resource: dict[str, Any], report: Report) -> None:
        statuses = [s for s in report.statuses for _ in range(max(1, report.repeat))]
        if report.shuffle:
            with self._lock:
                self._random.shuffle(statuses)
        for status in statuses:
            params = [
                ("AccountSid", self.account_sid),
                ("ApiVersion", API_VERSION),
                ("MessageSid", resource["sid"]),
                ("SmsSid", resource["sid"]),
                ("MessageStatus", status),
                ("SmsStatus", status),
                ("To", resource["to"]),
            ]
            if resource["from"]:
                params.append(("From", resource["from"]))
            if resource["messaging_service_sid"]:
                params.append(("MessagingServiceSid", resource["messaging_service_sid"]))
            if report.error_code is not None and status in ("undelivered", "failed"):
                params.append(("ErrorCode", str(report.error_code)))
            self._posts.put((url, params, report.delay))

    def _post_callbacks(self) -> None:
        with httpx.Client(timeout=5.0) as http:
            while (job := self._posts.get()) is not None:
                url, params, delay = job
                if delay and self._stopping.wait(delay):
                    continue
                headers = {SIGNATURE_HEADER: compute_signature(url, params, self.auth_token)}
                answer: int | None
                try:
                    answer = http.post(url, data=dict(params), headers=headers).status_code
                except httpx.HTTPError as exc:
                    log.warning("SMS sink: status callback to %s failed (%s)", url, type(exc).__name__)
                    answer = None
                with self._lock:
                    self.callbacks.append(PostedCallback(url, tuple(params), answer))
                    self._lock.notify_all()


def _check(form: dict[str, str]) -> int | None:
    """The error code Twilio refuses this form with, or None when it is acceptable."""
    to = form.get("To", "")
    if not to:
        return 21604
    if not E164.match(to):
        return 21211
    service, sender = form.get("MessagingServiceSid", ""), form.get("From", "")
    if not service and not sender:
        return 21603
    if service and not MESSAGING_SERVICE_SID.match(service):
        return 21705
    if sender and not SENDER.match(sender):
        return 21212
    body = form.get("Body", "")
    if not body:
        return 21602
    if len(body) > MAX_BODY_CHARS:
        return 21617
    callback = form.get("StatusCallback")
    if callback is not None:
        parts = urlsplit(callback)
        if parts.scheme not in ("http", "https") or not parts.hostname or "_" in parts.hostname:
            return 21609
    return None


def _error(code: int | None, status: int, message: str = "") -> tuple[int, dict[str, Any]]:
    text = message or (_MESSAGES.get(code, HTTPStatus(status).phrase) if code else HTTPStatus(status).phrase)
    body: dict[str, Any] = {"code": code, "message": text, "more_info": None, "status": status}
    if code is not None:
        body["more_info"] = f"https://www.twilio.com/docs/errors/{code}"
    return status, body


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    sink: SmsSink


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's pool expects
    # Headers and body go out in two writes: with Nagle on, the body waits for the
    # client's delayed ACK (40 ms on Linux), and a kept-alive client stalls on each answer.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, body = self.server.sink.handle(
            self.path,
            self.headers.get("Authorization"),
            self.headers.get("Content-Type", ""),
            raw,
            (self.client_address[0], self.client_address[1]),
        )
        self._answer(status, body)

    def do_GET(self) -> None:
        self._answer(*_error(20404, 404))

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        # A client that timed out has gone: nothing to tell it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line only (no body, which holds a claim code), and only at DEBUG.
        log.debug("SMS sink: " + format, *args)
