"""The email channel behind the seam: compose from rows, render, build, send over SMTP.

:class:`EmailSender` implements :class:`delivery.channels.base.Sender`. Its back end is
the process's :class:`~delivery.channels.email.transport.SmtpTransport` (a relay in
production, ``giftq smtp-sink`` locally); tests hand it a transport pointed at an
in-process SMTP server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import ClassVar, Protocol

from sqlalchemy.orm import Session

from delivery.channels.base import Composed, Outcome, Report
from delivery.channels.email import compose
from delivery.channels.email.failures import classify_smtp_failure
from delivery.channels.email.message import InvalidAddress, build_message, sender_address
from delivery.channels.email.render import render_email
from delivery.channels.email.transport import Envelope, SendOutcome, close_transport, get_transport
from delivery.models import Channel, Delivery, Order
from delivery.reasons import FailureReason
from delivery.retry import FailureKind
from ledger.codes.redact import redact
from ledger.errors import LedgerError

log = logging.getLogger(__name__)


class Transport(Protocol):
    """What the sender needs from an SMTP transport."""

    def send_batch(
        self, envelopes: list[Envelope], on_outcome: Callable[[SendOutcome], None] | None = None
    ) -> list[SendOutcome]: ...

    def close(self) -> None: ...


def _describe(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")[:1000]


class EmailSender:
    channel: ClassVar[Channel] = Channel.EMAIL
    reports_delivery: ClassVar[bool] = False
    """``sent`` means the relay took it (250); nothing reports delivery to the inbox."""

    def __init__(self, transport: Transport | None = None) -> None:
        self.transport = transport
        """None: the process's transport from settings, looked up at each send."""

    def compose(self, session: Session, rows: Sequence[tuple[Delivery, Order]]) -> list[Composed | Outcome]:
        loaded = compose.load(session, [d for d, _ in rows])
        items: list[Composed | Outcome] = []
        for delivery, order in rows:
            try:
                context = compose.context(delivery, order, loaded)
            except (LedgerError, LookupError, TypeError, ValueError) as exc:
                items.append(
                    Outcome.failed(
                        delivery.id, FailureKind.PERMANENT, _describe(exc), reason=FailureReason.UNRENDERABLE
                    )
                )
                continue
            items.append(Composed(delivery.id, delivery.to_address or "", delivery.to_name, context))
        return items

    def build(self, item: Composed) -> bytes:
        """The wire message for one composed item (a channel that sends email, such as
        the printable one, builds its own and keeps the rest of this sender)."""
        return build_message(render_email(item.message), to_name=item.to_name, to_addr=item.address)

    def send(self, batch: Sequence[Composed], report: Report) -> None:
        mail_from = sender_address()
        envelopes: list[Envelope] = []
        for item in batch:
            try:
                data = self.build(item)
            except InvalidAddress as exc:
                report(
                    Outcome.failed(
                        item.delivery_id,
                        FailureKind.PERMANENT,
                        _describe(exc),
                        reason=FailureReason.UNDELIVERABLE,
                    )
                )
                continue
            except Exception as exc:  # a bad row must not sink its batch
                log.exception("delivery %d: could not build the email", item.delivery_id)
                report(
                    Outcome.failed(
                        item.delivery_id,
                        FailureKind.PERMANENT,
                        _describe(exc),
                        reason=FailureReason.UNRENDERABLE,
                    )
                )
                continue
            envelopes.append(
                Envelope(mail_from=mail_from, rcpt_to=item.address, data=data, ref=item.delivery_id)
            )
        if envelopes:
            transport = self.transport or get_transport()
            transport.send_batch(envelopes, lambda answer: report(_outcome(answer)))

    def classify(self, error: BaseException) -> FailureKind:
        return FailureKind(classify_smtp_failure(error).kind)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        else:
            close_transport()


def _outcome(answer: SendOutcome) -> Outcome:
    if answer.accepted:
        return Outcome(answer.ref, True, None, answer.code, answer.response)
    failure = answer.failure or classify_smtp_failure(answer.code or 0)
    kind = FailureKind(failure.kind)
    # A 5xx refusal names the address: suppress it, so later gifts do not bounce there too.
    refused = kind is FailureKind.PERMANENT and answer.code is not None and 500 <= answer.code < 600
    return Outcome(
        answer.ref,
        False,
        kind,
        answer.code,
        answer.response or failure.detail,
        reason=FailureReason.REFUSED if refused else None,
        suppress=refused,
    )


def from_settings() -> EmailSender:
    return EmailSender()
