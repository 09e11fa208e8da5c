"""The text-message channel: render a gift text, send it through Twilio, read its reports.

Typical use from the order pipeline (one batch per task, one HTTP pool per process)::

    from delivery.channels.sms import GiftText, TextEnvelope, get_transport, render_text

    text = render_text(GiftText(sender_name, amount, marketplace, claim.reveal(), locale))
    outcomes = get_transport().send_batch([TextEnvelope(delivery.id, phone, text.body)])

and from the HTTP endpoint that receives status callbacks::

    report = parse_status_callback(url, form, headers.get(SIGNATURE_HEADER), auth_token)
    report.delivery_ref, report.status, report.final, report.failure

Modules: :mod:`~delivery.channels.sms.segments` (GSM-7/UCS-2 segment counting),
:mod:`~delivery.channels.sms.render` (templates in ``templates/sms``),
:mod:`~delivery.channels.sms.twilio` (the Messages API client),
:mod:`~delivery.channels.sms.failures` (retry, give up, suppress),
:mod:`~delivery.channels.sms.signature` (``X-Twilio-Signature``),
:mod:`~delivery.channels.sms.callbacks` (status reports),
:mod:`~delivery.channels.sms.ratelimit` (per-sender pacing in Redis),
:mod:`~delivery.channels.sms.transport` (paced batches),
:mod:`~delivery.channels.sms.sink` and :mod:`~delivery.channels.sms.cli` (a local
stand-in for the provider), :mod:`~delivery.channels.sms.errors`.
"""

from delivery.channels.sms.callbacks import (
    MessageStatus,
    StatusReport,
    parse_status_callback,
    status_callback_url,
)
from delivery.channels.sms.errors import (
    InvalidSignature,
    MalformedCallback,
    ProviderUnreachable,
    SmsConfigError,
    SmsError,
    TooManySegments,
)
from delivery.channels.sms.failures import (
    SmsFailure,
    classify_answer,
    classify_report,
    classify_unreachable,
)
from delivery.channels.sms.render import ExpiryReminderText, GiftText, RenderedText, render_text
from delivery.channels.sms.segments import Encoding, SegmentCount, count_segments
from delivery.channels.sms.signature import SIGNATURE_HEADER, compute_signature, verify_signature
from delivery.channels.sms.transport import (
    SmsTransport,
    TextEnvelope,
    TextOutcome,
    close_transport,
    get_transport,
)
from delivery.channels.sms.twilio import MessageAnswer, TwilioClient

__all__ = [
    "SIGNATURE_HEADER",
    "Encoding",
    "ExpiryReminderText",
    "GiftText",
    "InvalidSignature",
    "MalformedCallback",
    "MessageAnswer",
    "MessageStatus",
    "ProviderUnreachable",
    "RenderedText",
    "SegmentCount",
    "SmsConfigError",
    "SmsError",
    "SmsFailure",
    "SmsTransport",
    "StatusReport",
    "TextEnvelope",
    "TextOutcome",
    "TooManySegments",
    "TwilioClient",
    "classify_answer",
    "classify_report",
    "classify_unreachable",
    "close_transport",
    "compute_signature",
    "count_segments",
    "get_transport",
    "parse_status_callback",
    "render_text",
    "status_callback_url",
    "verify_signature",
]
