"""Everything this package raises derives from :class:`PrintableError`.

    PrintableError
    ├── InvalidCard            the card's context cannot be printed (the message names the field)
    └── LinkRefused            a download link was not honoured
        ├── LinkBadSignature   not a token we signed: malformed, altered, or another key's
        ├── LinkUnknown        signed by us, but no such link (deleted, or another database)
        ├── LinkExpired        past its expiry time
        └── LinkUsedUp         downloaded as many times as it allows

Messages never contain a claim code or a token.
"""

from __future__ import annotations


class PrintableError(Exception):
    """Base class of every error of the printable channel."""


class InvalidCard(PrintableError, ValueError):
    """A field of the card's context is unusable: the message names it, never its value."""


class LinkRefused(PrintableError):
    """A download link was not honoured; ``reason`` is a stable key for the HTTP answer."""

    reason = "refused"


class LinkBadSignature(LinkRefused):
    """The token is malformed or its signature does not match (altered, or another key)."""

    reason = "bad_signature"


class LinkUnknown(LinkRefused):
    """The token is ours but names no link in this database."""

    reason = "unknown"


class LinkExpired(LinkRefused):
    """The link's time is over."""

    reason = "expired"


class LinkUsedUp(LinkRefused):
    """The link was used as many times as it allows."""

    reason = "used_up"
