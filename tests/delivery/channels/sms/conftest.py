"""Fixtures of the text-message tests: the sink (a local Twilio), a client pointed at it,
and a receiver of status callbacks that verifies them as the real endpoint will.

Everything talks real HTTP over loopback; nothing is patched.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from delivery.channels.sms import (
    InvalidSignature,
    MalformedCallback,
    StatusReport,
    TwilioClient,
    parse_status_callback,
)
from delivery.channels.sms.sink import SmsSink
from giftq.settings import reset_settings

CONTRACT = Path(__file__).parent / "contract" / "twilio_messages.json"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
FROM_NUMBER = "+15005550006"
PUBLIC_BASE_URL = "https://gifts.example.com"


@pytest.fixture(autouse=True)
def sms_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    monkeypatch.setenv("GIFTQ_EMAIL_FROM", "giftq <gifts@giftq.example>")
    reset_settings()


@pytest.fixture
def contract() -> dict[str, Any]:
    """The excerpt of Twilio's OpenAPI description for the Messages endpoint."""
    loaded: dict[str, Any] = json.loads(CONTRACT.read_text())
    return loaded


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmsSink]:
    """A started sink for ACCOUNT_SID / AUTH_TOKEN that keeps texts in ``tmp_path/sms``.

    It posts no status callbacks unless a test sets ``sink.report`` (and points the
    callbacks at a ``receiver``): tests send traffic to loopback only.
    """
    with SmsSink(
        tmp_path / "sms", account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, report=None, seed=7
    ) as running:
        yield running


@pytest.fixture
def client(sink: SmsSink) -> Iterator[TwilioClient]:
    made = TwilioClient(ACCOUNT_SID, AUTH_TOKEN, base_url=sink.base_url, from_number=FROM_NUMBER, timeout=2.0)
    yield made
    made.close()


@dataclass
class Received:
    """One callback the receiver got: its report, or the error that refused it."""

    report: StatusReport | None
    error: str | None


@dataclass
class CallbackReceiver:
    """An HTTP endpoint that verifies status callbacks with ``auth_token`` (204, else 403/400)."""

    auth_token: str
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/sms/status"

    def handle(self, path: str, signature: str | None, raw: bytes) -> int:
        url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"  # type: ignore[union-attr]
        params = parse_qsl(raw.decode(), keep_blank_values=True)
        try:
            report = parse_status_callback(url, params, signature, self.auth_token, account_sid=ACCOUNT_SID)
        except InvalidSignature as exc:
            self.received.append(Received(None, f"signature: {exc}"))
            return 403
        except MalformedCallback as exc:
            self.received.append(Received(None, f"malformed: {exc}"))
            return 400
        self.received.append(Received(report, None))
        return 204

    @property
    def reports(self) -> list[StatusReport]:
        return [r.report for r in self.received if r.report is not None]


@pytest.fixture
def receiver() -> Iterator[Any]:
    """``receiver(auth_token=AUTH_TOKEN)``: a started callback endpoint."""
    started: list[ThreadingHTTPServer] = []

    def make(auth_token: str = AUTH_TOKEN) -> CallbackReceiver:
        endpoint = CallbackReceiver(auth_token)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = endpoint.handle(self.path, self.headers.get("X-Twilio-Signature"), raw)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        endpoint.server = server
        started.append(server)
        return endpoint

    yield make
    for server in started:
        server.shutdown()
        server.server_close()
