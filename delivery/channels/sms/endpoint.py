"""A status-callback endpoint for a process that runs no HTTP API (tests).

The HTTP API mounts :func:`~delivery.channels.sms.reports.apply_status_callback` at
``/sms/status``; this is the same call behind the standard library's HTTP server, on
loopback, each report in a transaction of its own. Answers: 204 applied, 403 bad
signature, 404 not one of our messages, 400 malformed.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl

from sqlalchemy.orm import Session, sessionmaker

from delivery.channels.sms.errors import InvalidSignature, MalformedCallback
from delivery.channels.sms.reports import UnknownMessage, apply_status_callback
from delivery.channels.sms.signature import SIGNATURE_HEADER


class StatusEndpoint:
    """``with StatusEndpoint(Session) as endpoint:``, then point
    ``GIFTQ_SMS_STATUS_CALLBACK_URL`` at ``endpoint.url``."""

    def __init__(self, sessions: sessionmaker[Session], host: str = "127.0.0.1", port: int = 0) -> None:
        self.sessions = sessions
        self.answers: list[int] = []
        """The status of every answer given, in order (for tests and the demo's report)."""
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = endpoint.handle(self.path, self.headers.get(SIGNATURE_HEADER), raw)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line carries nothing secret, but nothing useful either

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/sms/status"

    def handle(self, path: str, signature: str | None, raw: bytes) -> int:
        host, port = self.server.server_address[:2]
        params = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        try:
            with self.sessions.begin() as session:
                apply_status_callback(session, f"http://{host!s}:{port}{path}", params, signature)
        except InvalidSignature:
            status = 403
        except UnknownMessage:
            status = 404
        except MalformedCallback:
            status = 400
        else:
            status = 204
        self.answers.append(status)
        return status

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
