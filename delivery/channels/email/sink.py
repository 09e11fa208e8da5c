"""A local SMTP server that accepts everything: the mail server of the demo and benchmarks.

- :class:`SmtpServerThread`: any aiosmtpd handler served on its own event loop thread,
  on a given or an ephemeral port (``port=0``), started and stopped from sync code.
- :class:`SmtpSink`: a server whose handler keeps every accepted message, as a file
  in a Maildir (``<maildir>/new/``) when ``maildir`` is given, otherwise in memory as
  ``(mail_from, rcpt_tos, data)`` tuples; ``keep=False`` only counts.

``giftq smtp-sink`` (:mod:`delivery.cli.sink`) runs a sink in the foreground.

Nothing is fsynced: the sink is for development and benchmarks, where thousands of
messages a second matter more than surviving a power cut.

aiosmtpd logs every line of every message at DEBUG; importing this module filters those
records out of its ``mail.log`` logger, since a gift email's body holds its claim code.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

from aiosmtpd.smtp import SMTP

log = logging.getLogger(__name__)


class _NoMessageLines(logging.Filter):
    """Drops aiosmtpd's DEBUG record of each DATA line: message bodies hold claim codes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("DATA readline"))


_aiosmtpd_log = logging.getLogger("mail.log")
if not any(isinstance(f, _NoMessageLines) for f in _aiosmtpd_log.filters):
    _aiosmtpd_log.addFilter(_NoMessageLines())

SINK_HOSTNAME = "giftq-sink.localhost"

# "<local@domain> [params]" as a sender sends it; anything fancier takes aiosmtpd's path.
_SIMPLE_PATH = re.compile(r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+)>(.*)", re.DOTALL)


class SinkMessage(NamedTuple):
    """One accepted message: envelope sender, envelope recipients, the raw bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


class _TrackedSMTP(SMTP):
    """aiosmtpd's protocol, registering its connections so that stop() can close them."""

    def __init__(self, server: SmtpServerThread, handler: object, **options: Any) -> None:
        super().__init__(handler, **options)
        self._server = server

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every MAIL/RCPT path with the email package's full RFC 5322
        # parser, two thirds of its time per message; plain paths need only this regex.
        match = _SIMPLE_PATH.fullmatch(arg)
        if match is None:
            address: str | None
            rest: str | None
            address, rest = super()._getaddr(arg)
            return address, rest
        return match.group(1), match.group(2)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._server._protocols.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._server._protocols.discard(self)
        super().connection_lost(error)


class SmtpServerThread:
    """Serve an aiosmtpd ``handler`` on ``host:port`` from a background thread.

    ``ssl_context`` makes it an implicit-TLS server (SMTPS, port 465 style); ``options``
    go to ``aiosmtpd.smtp.SMTP`` (``tls_context`` for STARTTLS, ``authenticator``, ...).
    """

    def __init__(
        self,
        handler: object,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        hostname: str = SINK_HOSTNAME,
        ssl_context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.host = host
        self._requested_port = port
        # An explicit hostname: aiosmtpd would otherwise call getfqdn() per connection.
        self._options: dict[str, Any] = {"hostname": hostname, **options}
        self._protocols: set[_TrackedSMTP] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self.port = port

    def start(self) -> None:
        if self._loop is not None:
            raise RuntimeError("server already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._run, args=(loop,), name=f"smtp-server-{self.host}", daemon=True
        )
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._server = asyncio.run_coroutine_threadsafe(self._listen(), loop).result(10)
        except BaseException:
            self._halt()
            raise
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close the listening socket and every open connection, then end the thread."""
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        finally:
            self._halt()

    def disconnect_all(self) -> None:
        """Drop every open client connection (as a server's idle timeout would)."""
        if self._loop is None:
            return

        async def drop() -> None:
            for protocol in list(self._protocols):
                if protocol.transport is not None:
                    protocol.transport.close()
            # Let connection_lost run before returning, so the drop is complete.
            await asyncio.sleep(0.01)

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    async def _listen(self) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: _TrackedSMTP(self, self.handler, loop=loop, **self._options),
            self.host,
            self._requested_port,
            reuse_address=True,
            ssl=self.ssl_context,
        )

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for protocol in list(self._protocols):
            if isinstance(protocol.transport, asyncio.WriteTransport):
                # abort, not close: a graceful TLS close would wait on a client that may
                # never answer, and the loop is about to stop.
                protocol.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        # One more turn: aborted transports release their sockets in callbacks.
        await asyncio.sleep(0)

    def _halt(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = self._server = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()


class SmtpSink:
    """An SMTP server that accepts every message and keeps it (see the module doc).

    Use it as a context manager in-process, or ``start()``/``stop()``. ``port=0`` picks a
    free port; read the real one from :attr:`port`. ``on_message`` is called on the
    server thread for each accepted message.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8025,
        maildir: Path | None = None,
        *,
        keep: bool = True,
        on_message: Callable[[SinkMessage], None] | None = None,
    ) -> None:
        self.maildir = maildir
        self.keep = keep
        self.on_message = on_message
        self._messages: list[SinkMessage] = []
        self._count = 0
        self._changed = threading.Condition()
        self._sequence = itertools.count()
        self._host_tag = socket.gethostname().replace("/", "_").replace(":", "_")
        self._server = SmtpServerThread(
            _SinkHandler(self),
            host,
            port,
            ident="giftq smtp-sink",
            enable_SMTPUTF8=True,
            decode_data=False,
        )

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> None:
        if self.maildir is not None:
            for sub in ("tmp", "new", "cur"):
                (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def messages(self) -> list[SinkMessage]:
        """A copy of the messages kept in memory so far (empty in Maildir mode)."""
        with self._changed:
            return list(self._messages)

    @property
    def count(self) -> int:
        """Messages accepted so far, in every mode."""
        with self._changed:
            return self._count

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` messages were accepted; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count >= count, timeout)

    def clear(self) -> None:
        with self._changed:
            self._messages.clear()
            self._count = 0

    def disconnect_all(self) -> None:
        self._server.disconnect_all()

    def _accept(self, message: SinkMessage) -> None:
        if self.maildir is not None:
            self._deliver_to_maildir(message)
        with self._changed:
            if self.keep and self.maildir is None:
                self._messages.append(message)
            self._count += 1
            self._changed.notify_all()
        if self.on_message is not None:
            try:
                self.on_message(message)
            except Exception:  # a display callback must not turn into an SMTP error
                log.exception("smtp-sink on_message callback failed")

    def _deliver_to_maildir(self, message: SinkMessage) -> None:
        assert self.maildir is not None
        now = time.time()
        name = f"{int(now)}.M{int(now % 1 * 1_000_000)}P{os.getpid()}Q{next(self._sequence)}.{self._host_tag}"
        # What a local delivery agent adds: where bounces go and whom it was for.
        trace = f"Return-Path: <{message.mail_from}>\r\n" + "".join(
            f"X-Original-To: {rcpt}\r\n" for rcpt in message.rcpt_tos
        )
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(trace.encode("utf-8", "replace") + message.data)
        # Maildir: written in tmp/, renamed into new/, so readers never see half a file.
        tmp.rename(self.maildir / "new" / name)


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        data: bytes = envelope.original_content or b""
        self._sink._accept(SinkMessage(envelope.mail_from, tuple(envelope.rcpt_tos), data))
        return "250 2.0.0 OK: message accepted"
