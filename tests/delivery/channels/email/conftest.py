"""Fixtures of the email tests: real SMTP servers (aiosmtpd) in-process, and settings.

- ``email_env``: realistic sender settings for every test here (autouse).
- ``smtp_server``: accepts and records every message (:class:`Recorder`).
- ``make_smtp_server(handler, **options)``: any handler, started and stopped for the test.
- ``make_transport(server, **kwargs)``: an :class:`SmtpTransport` to it, closed afterwards.
- ``handlers``: the handler classes below, to build servers with ``make_smtp_server``.
- ``tls_files``: a throwaway CA and a server certificate for ``localhost``/127.0.0.1.
- ``samples``: builders of sample contexts (``samples.gift("DE")``, ``samples.cancelled("JP")``,
  ``samples.every_kind``).

The handlers are small aiosmtpd handlers: :class:`Recorder` (accepts), :class:`Refuse421`
(answers 421 to the first N MAIL commands and closes, as a busy server does),
:class:`Picky` (refuses chosen recipients), :class:`DropAfterData` (takes a message,
then closes without answering or answers 421), :class:`Slow` (never answers in time).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from delivery.channels.email import (
    ConfirmationLine,
    DeliveryFailedEmail,
    EmailContext,
    GiftDeliveredEmail,
    GiftEmail,
    OrderCancelledEmail,
    OrderConfirmationEmail,
    PrintableGiftEmail,
)
from delivery.channels.email.sink import SmtpServerThread
from delivery.channels.email.transport import SmtpTransport
from delivery.reasons import CancelReason, FailureReason
from giftq.settings import reset_settings

EMAIL_FROM = "Giftq <gifts@giftq.example>"
PUBLIC_BASE_URL = "https://giftq.example"


@pytest.fixture(autouse=True)
def email_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_EMAIL_FROM", EMAIL_FROM)
    monkeypatch.setenv("GIFTQ_PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    reset_settings()


@dataclass(frozen=True)
class Received:
    peer: tuple[str, int]
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


class Recorder:
    """Accepts everything; remembers each message and each connection (by client port)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.peers: set[tuple[str, int]] = set()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.peers)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self._lock:
            self.peers.add(session.peer)
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.record(session, envelope)
        return "250 2.0.0 Ok: queued"

    def record(self, session: Any, envelope: Any) -> None:
        with self._lock:
            self.received.append(
                Received(
                    session.peer,
                    envelope.mail_from,
                    tuple(envelope.rcpt_tos),
                    envelope.original_content,
                )
            )


class Refuse421(Recorder):
    """Answers ``421`` to the first ``times`` MAIL commands and hangs up, then accepts."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.remaining = times

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self.remaining > 0:
            self.remaining -= 1
            # Close after the reply has been written, as a real server does.
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.3.2 Service not available, closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"


class Picky(Recorder):
    """Refuses the recipients it is given: ``{address: reply}``."""

    def __init__(self, refuse: dict[str, str]) -> None:
        super().__init__()
        self.refuse = refuse

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"


class DropAfterData(Recorder):
    """For the recipient ``victim``: take the message, then hang up (``mode="drop"``,
    no answer at all) or answer 421 and hang up (``mode="421"``)."""

    def __init__(self, victim: str, mode: str) -> None:
        super().__init__()
        self.victim = victim
        self.mode = mode
        self.dropped = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.victim in envelope.rcpt_tos and self.dropped == 0:
            self.dropped += 1
            if self.mode == "drop":
                self.record(session, envelope)
                server.transport.close()  # the 250 below goes nowhere
                return "250 2.0.0 Ok: queued"
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.4.2 Timeout exceeded, closing"
        return await super().handle_DATA(server, session, envelope)


class Slow(Recorder):
    """Takes ``delay`` seconds before answering DATA for ``victim``."""

    def __init__(self, victim: str, delay: float) -> None:
        super().__init__()
        self.victim = victim
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.victim in envelope.rcpt_tos:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def handlers() -> SimpleNamespace:
    """The handler classes above, for tests that build their own server."""
    return SimpleNamespace(
        Recorder=Recorder, Refuse421=Refuse421, Picky=Picky, DropAfterData=DropAfterData, Slow=Slow
    )


ServerFactory = Callable[..., SmtpServerThread]


@pytest.fixture
def make_smtp_server() -> Iterator[ServerFactory]:
    servers: list[SmtpServerThread] = []

    def make(handler: object, **options: Any) -> SmtpServerThread:
        server = SmtpServerThread(handler, "127.0.0.1", 0, **options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(make_smtp_server: ServerFactory) -> SmtpServerThread:
    return make_smtp_server(Recorder())


TransportFactory = Callable[..., SmtpTransport]


@pytest.fixture
def make_transport() -> Iterator[TransportFactory]:
    transports: list[SmtpTransport] = []

    def make(server: SmtpServerThread, **kwargs: Any) -> SmtpTransport:
        kwargs.setdefault("timeout", 5.0)
        kwargs.setdefault("local_hostname", "worker.giftq.example")
        transport = SmtpTransport(server.host, server.port, **kwargs)
        transports.append(transport)
        return transport

    yield make
    for transport in transports:
        transport.close()


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a certificate it signed for localhost and 127.0.0.1 (EC keys: fast)."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "giftq test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# --- sample contexts ----------------------------------------------------------------------

CODE = "7K3M-Q9RT-ZX2B-PW4N-H"


def gift(marketplace: str = "US", amount: int = 2500, **overrides: object) -> GiftEmail:
    fields: dict[str, object] = {
        "recipient_name": "Zoë Müller",
        "recipient_email": "zoe@example.com",
        "sender_name": "Eve Smith",
        "amount": amount,
        "marketplace": marketplace,
        "message": "Happy birthday, Zoë!\nSee you on Saturday.\nEve",
        "code": CODE,
    }
    fields.update(overrides)
    return GiftEmail(**fields)  # type: ignore[arg-type]


def confirmation(marketplace: str = "US", locale: str | None = None) -> OrderConfirmationEmail:
    return OrderConfirmationEmail(
        purchaser_name="Pat Buyer",
        purchaser_email="pat@example.com",
        order_ref="SHOP-1001",
        marketplace=marketplace,
        lines=(
            ConfirmationLine("Robin Receiver", "email", 2500, marketplace, "••••-H2PW", None),
            ConfirmationLine(
                "Sam Friend",
                "sms",
                5000,
                marketplace,
                None,
                datetime.datetime(2027, 2, 14, 9, 0),
                "Europe/Berlin",
            ),
        ),
        ordered_at=datetime.datetime(2027, 2, 1, 10, 30, tzinfo=datetime.UTC),
        locale=locale,
    )


def delivered(marketplace: str = "US", locale: str | None = None, **overrides: Any) -> GiftDeliveredEmail:
    fields: dict[str, Any] = {
        "purchaser_name": "Pat Buyer",
        "purchaser_email": "pat@example.com",
        "recipient_name": "Robin Receiver",
        "channel": "email",
        "amount": 2500,
        "marketplace": marketplace,
        "order_ref": "SHOP-1001",
        "address": "robin@example.com",
        "locale": locale,
    }
    fields.update(overrides)
    return GiftDeliveredEmail(**fields)


def failed(
    marketplace: str = "US", locale: str | None = None, reason: str | None = "refused", **overrides: Any
) -> DeliveryFailedEmail:
    fields: dict[str, Any] = {
        "purchaser_name": "Pat Buyer",
        "purchaser_email": "pat@example.com",
        "recipient_name": "Robin Receiver",
        "channel": "email",
        "amount": 2500,
        "marketplace": marketplace,
        "reason": FailureReason(reason) if reason else None,
        "order_ref": "SHOP-1001",
        "address": "robin@example.com",
        "attempts": 1,
        "locale": locale,
    }
    fields.update(overrides)
    return DeliveryFailedEmail(**fields)


DOWNLOAD_URL = (
    f"{PUBLIC_BASE_URL}/printables/AQAAAAAAAAAHAAAAAAAAACoAAAAAZ_ObgA"
    ".q1Vj8Ue0Jd2oRk9mYzv5p0kQ3c8hT2xLw7sNaF6uB1E"
)


def printable(marketplace: str = "US", locale: str | None = None, **overrides: Any) -> PrintableGiftEmail:
    fields: dict[str, Any] = {
        "purchaser_name": "Pat Buyer",
        "purchaser_email": "pat@example.com",
        "recipient_name": "Robin Receiver",
        "amount": 2500,
        "marketplace": marketplace,
        "download_url": DOWNLOAD_URL,
        "link_expires_at": datetime.datetime(2027, 2, 8, 10, 30, tzinfo=datetime.UTC),
        "link_max_uses": 5,
        "order_ref": "SHOP-1001",
        "locale": locale,
    }
    fields.update(overrides)
    return PrintableGiftEmail(**fields)


def cancelled(
    marketplace: str = "US", locale: str | None = None, reason: str = "payment_overdue", **overrides: Any
) -> OrderCancelledEmail:
    fields: dict[str, Any] = {
        "purchaser_name": "Pat Buyer",
        "purchaser_email": "pat@example.com",
        "order_ref": "SHOP-1001",
        "marketplace": marketplace,
        "lines": (
            ConfirmationLine("Robin Receiver", "email", 2500, marketplace),
            ConfirmationLine("Sam Friend", "sms", 5000, marketplace),
        ),
        "reason": CancelReason(reason),
        "deadline_hours": 24,
        "locale": locale,
    }
    fields.update(overrides)
    return OrderCancelledEmail(**fields)


def every_kind(marketplace: str, locale: str | None = None) -> list[EmailContext]:
    return [
        gift(marketplace, locale=locale),
        confirmation(marketplace, locale),
        delivered(marketplace, locale),
        failed(marketplace, locale),
        printable(marketplace, locale),
        cancelled(marketplace, locale),
    ]


@pytest.fixture
def samples() -> SimpleNamespace:
    return SimpleNamespace(
        CODE=CODE,
        gift=gift,
        confirmation=confirmation,
        delivered=delivered,
        failed=failed,
        printable=printable,
        cancelled=cancelled,
        every_kind=every_kind,
        DOWNLOAD_URL=DOWNLOAD_URL,
    )
