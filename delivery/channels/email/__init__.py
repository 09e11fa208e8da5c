"""The email channel: render a gift or a purchaser notice, build the message, send it.

Typical use from the order pipeline (one batch per task, one connection per process)::

    from delivery.channels.email import Envelope, GiftEmail, build_message, get_transport, render_email

    ctx = GiftEmail(..., code=claim.reveal())
    data = build_message(render_email(ctx), to_name=ctx.recipient_name,
                         to_addr=ctx.recipient_email)
    outcomes = get_transport().send_batch([Envelope.for_message(data, rcpt_to=ctx.to_addr,
                                                                 ref=delivery.id)])

Modules: :mod:`~delivery.channels.email.contexts` (what each email says),
:mod:`~delivery.channels.email.i18n` (language, money, catalogs), :mod:`~delivery.channels.email.render`
(Jinja2), :mod:`~delivery.channels.email.message` (the wire format), :mod:`~delivery.channels.email.dkim`,
:mod:`~delivery.channels.email.transport` (SMTP), :mod:`~delivery.channels.email.failures` (retry or
not), :mod:`~delivery.channels.email.sink` (a local SMTP server for the demo and benchmarks).
"""

from delivery.channels.email.contexts import (
    CHANNELS,
    ConfirmationLine,
    DeliveryFailedEmail,
    EmailContext,
    ExpiryReminderEmail,
    GiftDeliveredEmail,
    GiftEmail,
    GiftShippedEmail,
    OrderCancelledEmail,
    OrderConfirmationEmail,
    PrintableGiftEmail,
)
from delivery.channels.email.dkim import DkimConfigError
from delivery.channels.email.failures import Failure, classify_smtp_failure
from delivery.channels.email.message import Attachment, InvalidAddress, build_message
from delivery.channels.email.render import RenderedEmail, render_email
from delivery.channels.email.sink import SinkMessage, SmtpSink
from delivery.channels.email.transport import (
    Envelope,
    SendOutcome,
    SmtpTransport,
    close_transport,
    get_transport,
)

__all__ = [
    "CHANNELS",
    "Attachment",
    "ConfirmationLine",
    "DeliveryFailedEmail",
    "DkimConfigError",
    "EmailContext",
    "Envelope",
    "ExpiryReminderEmail",
    "Failure",
    "GiftDeliveredEmail",
    "GiftEmail",
    "GiftShippedEmail",
    "InvalidAddress",
    "OrderCancelledEmail",
    "OrderConfirmationEmail",
    "PrintableGiftEmail",
    "RenderedEmail",
    "SendOutcome",
    "SinkMessage",
    "SmtpSink",
    "SmtpTransport",
    "build_message",
    "classify_smtp_failure",
    "close_transport",
    "get_transport",
    "render_email",
]
