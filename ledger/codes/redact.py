"""A last line of defence: mask anything shaped like a claim code in log records.

Code never logs a claim code on purpose (tasks carry ids, errors say "ending
ABCD"). :class:`RedactClaimCodes`, installed on every handler by the processes'
logging set-up, also masks anything that is a valid code (shape and check
character) in any record, from any library, before it is written.
"""

from __future__ import annotations

import logging
import re

from ledger.codes import text as code_text
from ledger.errors import LedgerError

_WORD = re.compile(r"[0-9A-Za-z-]+")
_SPACED_CODE = re.compile(
    r"(?<![0-9A-Za-z-])" + r" +".join(rf"[0-9A-Za-z]{{{n}}}" for n in code_text.GROUPS) + r"(?![0-9A-Za-z-])"
)
"""A code typed with spaces between its groups (4 4 4 5)."""


def _mask(match: re.Match[str]) -> str:
    try:
        normalized = code_text.normalize(match.group(0))
    except LedgerError:
        return match.group(0)  # wrong shape or check character: a long number, a word, not a code
    return code_text.mask(normalized[-4:])


def redact(message: str) -> str:
    """Mask every valid claim code in ``message``: dashed, compact, spaced, any case."""
    return _WORD.sub(_mask, _SPACED_CODE.sub(_mask, message))


class RedactClaimCodes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted tracebacks are cached in exc_text; redact that text.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True
