"""SMTP sending: batches of envelopes over one kept-open connection per worker process.

- :class:`Envelope`: one message for one recipient (``ref`` is the caller's id, e.g.
  the delivery row id, and comes back on the outcome).
- :class:`SendOutcome`: what happened to one envelope.
- :class:`SmtpTransport`: the connection and the sending; :func:`get_transport` gives
  the process-wide one built from settings, :func:`close_transport` ends it.

How it runs. Celery tasks are synchronous; aiosmtplib is not. Each transport owns an
event loop on a daemon thread, started on first use in the process that uses it, and
:meth:`SmtpTransport.send_batch` hands the batch to that loop and waits. The SMTP
connection lives on that loop and is reused by every batch, from any thread (batches
take turns). Before a batch the connection is checked with NOOP and silently replaced
when the server has closed it (idle timeout, 421, restart).

After ``fork()`` (Celery's prefork pool) a child must never touch the parent's socket
or loop: a QUIT from the child would end the parent's session, and closing the
inherited objects would close file descriptors the child may reuse. An at-fork hook
(and a pid check) make the child forget them, keeping references so that garbage
collection cannot close them either, and start its own loop and connection lazily.

One envelope's failure never fails the others. Each gets an outcome; a refusal
(4xx/5xx on MAIL, RCPT or DATA) is followed by RSET and the batch goes on. If the
connection drops mid-batch the transport reconnects once and continues: the envelope
in flight is sent again on the new connection when it was lost before DATA (the server
cannot have accepted it), and marked retryable otherwise (it may have been accepted;
resending now could deliver it twice). If the connection is lost again, or cannot be
re-opened, everything not yet sent is marked retryable with the reason.

Message bodies hold claim codes: they never reach a log line, an outcome or a repr.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import ssl
import threading
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import aiosmtplib

from delivery.channels.email.failures import Failure, classify_smtp_failure
from delivery.channels.email.message import normalize_address, sender_address
from giftq.settings import Settings, get_settings

log = logging.getLogger(__name__)

Security = Literal["none", "starttls", "tls"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message to one recipient. ``data`` (the message, with its code) is not in repr."""

    mail_from: str
    rcpt_to: str
    data: bytes = field(repr=False)
    ref: int

    def __post_init__(self) -> None:
        # Checked here so that nothing can smuggle CR/LF or ">" into an SMTP command.
        object.__setattr__(self, "mail_from", normalize_address(self.mail_from))
        object.__setattr__(self, "rcpt_to", normalize_address(self.rcpt_to))
        if not isinstance(self.data, bytes):
            raise TypeError("Envelope.data is the built message as bytes")

    @classmethod
    def for_message(cls, data: bytes, *, rcpt_to: str, ref: int) -> Envelope:
        """An envelope from our ``email_from`` address (where bounces go) to ``rcpt_to``."""
        return cls(sender_address(), rcpt_to, data, ref)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """The fate of one envelope: accepted by the server, or why not (``failure``)."""

    ref: int
    accepted: bool
    code: int | None
    response: str
    failure: Failure | None


class SmtpTransport:
    """Sends batches of envelopes over one reused SMTP connection (see the module doc)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = "none",
        username: str = "",
        password: str | None = None,
        timeout: float = 30.0,
        batch_size: int = 100,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if security not in ("none", "starttls", "tls"):
            raise ValueError(f"security must be none, starttls or tls, not {security!r}")
        if username and not password:
            raise ValueError("an SMTP username needs a password")
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.batch_size = batch_size
        """How many envelopes a caller should put in one :meth:`send_batch` call."""
        self.tls_context = tls_context
        self.local_hostname = local_hostname
        self.connections_opened = 0
        """Connections opened in this process so far (observability, tests)."""

        self._guard = threading.Lock()
        self._worker: _LoopThread | None = None
        # Only ever touched on the worker loop's thread.
        self._client: aiosmtplib.SMTP | None = None
        _live_transports.add(self)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SmtpTransport:
        settings = settings or get_settings()
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout_seconds,
            batch_size=settings.smtp_batch_size,
        )

    def __repr__(self) -> str:
        return (
            f"SmtpTransport(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r})"
        )

    # --- public, synchronous ----------------------------------------------------------

    def send_batch(
        self, envelopes: Iterable[Envelope], on_outcome: Callable[[SendOutcome], None] | None = None
    ) -> list[SendOutcome]:
        """Send every envelope over the kept-open connection; one outcome each, in order.

        Blocks until the batch is done. Never raises for an SMTP or network failure:
        those are outcomes. Call it from synchronous code (a Celery task, a CLI).
        ``on_outcome`` is called with each outcome as soon as it is known, before the
        next envelope is sent, so that the caller can record an acceptance durably and a
        crash mid-batch leaves at most the envelope in flight unrecorded. It runs on the
        transport's loop thread and must not raise.
        """
        batch = list(envelopes)
        if not batch:
            return []
        worker = self._worker_thread()
        return worker.run(self._send_batch(batch, worker.batch_lock, on_outcome or _ignore))

    def close(self) -> None:
        """Say QUIT, close the connection and stop the loop thread (shutdown; idempotent).

        A batch in flight on another thread is given ``timeout`` seconds to finish.
        Sending again afterwards opens a new loop and connection.
        """
        with self._guard:
            worker, self._worker = self._worker, None
        if worker is None:
            return
        if worker.pid != os.getpid():
            _abandon(worker, self._client)
            self._client = None
            return
        try:
            worker.run(self._disconnect(worker.batch_lock), timeout=self.timeout + 1)
        except Exception as exc:  # shutting down: report and carry on
            log.warning("SMTP close did not finish cleanly: %s", classify_smtp_failure(exc).detail)
        worker.stop()

    # --- the loop thread ----------------------------------------------------------------

    def _worker_thread(self) -> _LoopThread:
        with self._guard:
            worker = self._worker
            if worker is not None and worker.pid != os.getpid():
                # Belt and braces for the at-fork hook: never reuse a parent's loop.
                self._forget_inherited()
                worker = None
            if worker is None:
                worker = self._worker = _LoopThread(f"giftq-smtp-{self.host}:{self.port}")
            return worker

    def _forget_inherited(self) -> None:
        """In a forked child: drop (but keep alive) the parent's loop and connection."""
        self._guard = threading.Lock()
        if self._worker is not None:
            _abandon(self._worker, self._client)
        self._worker = None
        self._client = None

    # --- on the loop ------------------------------------------------------------------

    async def _send_batch(
        self, batch: list[Envelope], lock: asyncio.Lock, on_outcome: Callable[[SendOutcome], None]
    ) -> list[SendOutcome]:
        outcomes = _Reported(on_outcome)
        async with lock:
            try:
                client = await self._ready_client()
            except Exception as exc:  # any failure to connect leaves all unsent
                failure = classify_smtp_failure(exc)
                log.warning(
                    "SMTP %s:%s unavailable, %d messages left for retry: %s",
                    self.host,
                    self.port,
                    len(batch),
                    failure.detail,
                )
                outcomes.extend(_unsent(envelope, failure) for envelope in batch)
                return outcomes

            pending = deque(batch)
            reconnected = False
            while pending:
                envelope = pending.popleft()
                outcome, lost, before_data = await self._send_one(client, envelope)
                if not lost:
                    outcomes.append(outcome)
                    continue
                self._client = None
                failure = outcome.failure or classify_smtp_failure((None, "connection lost"))
                if reconnected:
                    outcomes.append(outcome)
                    outcomes.extend(_unsent(e, failure) for e in pending)
                    log.warning(
                        "SMTP connection lost twice in one batch; %d messages left for retry: %s",
                        len(pending) + 1,
                        failure.detail,
                    )
                    break
                reconnected = True
                try:
                    client = await self._connect()
                except Exception as exc:  # cannot reconnect: the rest waits
                    failure = classify_smtp_failure(exc)
                    outcomes.append(outcome)
                    outcomes.extend(_unsent(e, failure) for e in pending)
                    log.warning(
                        "SMTP reconnect failed; %d messages left for retry: %s",
                        len(pending) + 1,
                        failure.detail,
                    )
                    break
                if before_data:
                    # Nothing of this message reached the server: send it on the new connection.
                    pending.appendleft(envelope)
                else:
                    outcomes.append(outcome)
            _log_batch(outcomes)
            return outcomes

    async def _send_one(self, client: aiosmtplib.SMTP, envelope: Envelope) -> tuple[SendOutcome, bool, bool]:
        """``(outcome, connection lost, lost before DATA)`` for one envelope."""
        before_data = True
        try:
            await client.mail(envelope.mail_from)
            await client.rcpt(envelope.rcpt_to)
            before_data = False
            response = await client.data(envelope.data)
        except aiosmtplib.SMTPResponseException as exc:
            outcome = SendOutcome(
                envelope.ref, False, exc.code, _reply_text(exc.message), classify_smtp_failure(exc)
            )
            # aiosmtplib closes the connection itself on 421 ("closing channel").
            lost = not client.is_connected or not await _reset(client)
            return outcome, lost, before_data
        except Exception as exc:  # network errors, timeouts, the unexpected
            # The session state is unknown: this connection is done.
            _close_now(client)
            return _unsent(envelope, classify_smtp_failure(exc)), True, before_data
        accepted = SendOutcome(envelope.ref, True, response.code, _reply_text(response.message), None)
        return accepted, False, False

    async def _ready_client(self) -> aiosmtplib.SMTP:
        client = self._client
        if client is not None:
            if client.is_connected:
                try:
                    await client.noop()
                    return client
                except Exception as exc:  # a stale connection: replace it
                    log.info(
                        "SMTP connection went stale (%s); reconnecting", classify_smtp_failure(exc).detail
                    )
            _close_now(client)
            self._client = None
        return await self._connect()

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username or None,
            password=self._password if self.username else None,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            tls_context=self.tls_context,
            timeout=self.timeout,
            local_hostname=self.local_hostname,
        )
        await client.connect()
        self._client = client
        self.connections_opened += 1
        log.info("SMTP connected to %s:%s (%s)", self.host, self.port, self.security)
        return client

    async def _disconnect(self, lock: asyncio.Lock) -> None:
        # Let a batch in flight on another thread finish first (close() bounds the wait).
        async with lock:
            client, self._client = self._client, None
            if client is None:
                return
            transport = client.transport
            try:
                if client.is_connected:
                    await client.quit()
            except Exception:  # noqa: S110 - QUIT is a courtesy; closing is what matters
                pass
            finally:
                _close_now(client, transport)


def _unsent(envelope: Envelope, failure: Failure) -> SendOutcome:
    return SendOutcome(envelope.ref, False, failure.code, "", failure)


async def _reset(client: aiosmtplib.SMTP) -> bool:
    """RSET after a refusal so that the next envelope starts clean; False if that failed."""
    try:
        await client.rset()
    except Exception:  # a session that cannot reset is a session to drop
        _close_now(client)
        return False
    return True


def _close_now(client: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None = None) -> None:
    """Close ``client`` without the TLS close_notify exchange.

    A graceful TLS close waits for the peer; if the loop stops first (shutdown), the
    socket would be left open. Once SMTP is done (QUIT, or an error), the session has
    nothing left to protect, so the socket goes at once.
    """
    transport = transport or client.transport
    client.close()
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()


def _reply_text(text: str) -> str:
    # Server replies go into rows and logs: one line, bounded.
    return " ".join(text.split())[:300]


def _log_batch(outcomes: list[SendOutcome]) -> None:
    accepted = sum(o.accepted for o in outcomes)
    if accepted == len(outcomes):
        log.debug("SMTP batch: %d accepted", accepted)
        return
    for outcome in outcomes:
        if outcome.failure is not None:
            log.info(
                "SMTP envelope ref=%s not accepted (%s, %s): %s",
                outcome.ref,
                outcome.failure.kind,
                outcome.code,
                outcome.failure.detail,
            )
    log.info("SMTP batch: %d of %d accepted", accepted, len(outcomes))


class _LoopThread:
    """An event loop running on a daemon thread, owned by the process that made it."""

    def __init__(self, name: str) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.batch_lock = asyncio.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("send_batch cannot be called from the SMTP loop thread itself")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            # The caller gave up waiting (a task's soft time limit, a timeout): stop the
            # batch too. Left running, the loop would go on sending messages whose answers
            # nobody records, and every one of them would be sent again.
            future.cancel()
            raise

    def stop(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_default_executor()
            # One more turn: transports closed above release their sockets in callbacks.
            await asyncio.sleep(0)

        try:
            self.run(drain(), timeout=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self.loop.close()


# --- process-wide state and fork safety -------------------------------------------------

# A parent's loops and connections inherited through fork(): referenced forever, never
# closed, so that neither this process nor its garbage collector touches their sockets.
_inherited: list[object] = []
_live_transports: weakref.WeakSet[SmtpTransport] = weakref.WeakSet()


class _ProcessTransport:
    """The process-wide transport behind get_transport(), and the lock that guards it."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.transport: SmtpTransport | None = None


_process = _ProcessTransport()


def _abandon(worker: _LoopThread, client: aiosmtplib.SMTP | None) -> None:
    _inherited.append((worker, worker.loop, client))


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time would stay locked forever in the child.
    _process.guard = threading.Lock()
    for transport in list(_live_transports):
        transport._forget_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)


def get_transport() -> SmtpTransport:
    """The process-wide transport, built from settings on first use.

    Safe to call before a fork: the child gets a fresh loop and connection of its own.
    """
    with _process.guard:
        if _process.transport is None:
            _process.transport = SmtpTransport.from_settings()
        return _process.transport


def close_transport() -> None:
    """Close the process-wide transport (worker shutdown); the next use builds a new one."""
    with _process.guard:
        transport, _process.transport = _process.transport, None
    if transport is not None:
        transport.close()


# A clean QUIT when the interpreter exits normally. Forked pool children end with
# os._exit and skip this: they close through Celery's worker_process_shutdown signal.
atexit.register(close_transport)


def _ignore(_: SendOutcome) -> None:
    return None


class _Reported(list[SendOutcome]):
    """The batch's outcomes, each handed to the caller's callback as it is added."""

    def __init__(self, report: Callable[[SendOutcome], None]) -> None:
        super().__init__()
        self._report = report

    def append(self, outcome: SendOutcome) -> None:
        super().append(outcome)
        self._report(outcome)

    def extend(self, outcomes: Iterable[SendOutcome]) -> None:
        for outcome in outcomes:
            self.append(outcome)
