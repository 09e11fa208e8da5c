"""Logging set-up for giftq processes (CLI, workers): one format, codes redacted."""

from __future__ import annotations

import logging

from ledger.codes.redact import RedactClaimCodes

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int | str = logging.INFO) -> None:
    """Root handler with the redaction filter; safe to call more than once."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RedactClaimCodes) for f in handler.filters):
            handler.addFilter(RedactClaimCodes())
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(RedactClaimCodes())
        root.addHandler(handler)
