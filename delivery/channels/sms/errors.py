"""Everything the text-message channel raises derives from :class:`SmsError`.

    DeliveryError                      (delivery.errors)
    └── SmsError
        ├── SmsConfigError             the SMS settings cannot work (backend off, no credentials)
        ├── TooManySegments            a rendered text would travel as more segments than allowed
        ├── ProviderUnreachable        no HTTP answer from the provider (timeout, connection)
        ├── InvalidSignature           a status callback's X-Twilio-Signature does not verify
        └── MalformedCallback          a signed status callback lacks or garbles a field

A provider's refusal (an HTTP 4xx/5xx answer) is not an exception: it is a typed answer
(:class:`delivery.channels.sms.twilio.MessageAnswer`). Messages name fields, codes and
counts; never a message body, which holds a claim code.
"""

from __future__ import annotations

from delivery.errors import DeliveryError


class SmsError(DeliveryError):
    """Base class of every error of the text-message channel."""


class SmsConfigError(SmsError):
    """The SMS settings cannot work as they are; the message names the setting."""


class TooManySegments(SmsError, ValueError):
    """The text would be split into more segments than ``GIFTQ_SMS_MAX_SEGMENTS`` allows.

    Raised instead of cutting the text: a shortened gift text could lose its claim code.
    """

    def __init__(self, segments: int, limit: int, encoding: str, units: int) -> None:
        self.segments = segments
        self.limit = limit
        self.encoding = encoding
        self.units = units
        super().__init__(
            f"the text needs {segments} segments ({units} {encoding} units) and at most {limit} "
            "are allowed (GIFTQ_SMS_MAX_SEGMENTS); it was not sent rather than cut"
        )


class ProviderUnreachable(SmsError):
    """The provider gave no HTTP answer: a timeout, a refused or dropped connection.

    ``timeout`` tells a timeout apart (the message may or may not have been created).
    The text is the exception type and the provider host; the cause is chained.
    """

    def __init__(self, detail: str, *, timeout: bool) -> None:
        self.detail = detail
        self.timeout = timeout
        super().__init__(detail)


class InvalidSignature(SmsError):
    """A status callback is not signed by our auth token (or was changed on the way)."""


class MalformedCallback(SmsError, ValueError):
    """A status callback verified but its fields are missing or malformed; the message names them."""
