"""A last line of defence: mask claim codes, and only claim codes, in log records.

Code never logs a claim code on purpose (tasks carry ids, errors say "ending
ABCD"). :class:`RedactClaimCodes`, installed on every handler by the processes'
logging set-up, masks any claim code in any record, from any library, before it
is written; :func:`redact` does the same for other text kept for ops (SMTP
replies, provider answers).

A token is a claim code when both hold:

- its shape: the grouped form (4, 4, 4 and 5 letters or digits with one separator
  between groups: a dash, a space, or any look-alike of them that
  :func:`ledger.codes.text.normalize` drops) or a run of exactly 17 letters or digits,
  in any case, standing alone (no letter or digit touching either end);
- it folds (:func:`~ledger.codes.text.normalize`: case, O/I/L, full-width forms and
  Cyrillic or Greek look-alikes) to a code whose check character matches and that
  the ledger could have issued (:func:`~ledger.codes.text.could_be_issued`: its 16
  random symbols are not all digits).

So a float's digits with its unit (``0.0123456789012345s``), task ids and UUIDs,
hex digests, long numbers and order references stay as they are; a run of 17
symbols that is not a code still passes the check one time in 32 and is masked.

Cost per record: one scan of the formatted message by one compiled regular
expression (30 to 80 ns per character), plus one normalisation (about 2 µs) per
17-symbol candidate, which ordinary log lines rarely hold. Measured on a shared
2-core machine: 4 to 8 µs for a 100-character record (the filter this replaced
called Python for every word: 30 to 45 µs). A record with a traceback also pays
for formatting it and scanning that text.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from ledger.codes import text as code_text
from ledger.errors import LedgerError

_SYMBOL = r"[^\W_]"  # a letter or digit of any script: look-alikes are folded afterwards
_SEPARATOR = "[" + re.escape(code_text.SEPARATORS) + "]"
_CANDIDATE = re.compile(
    rf"(?<!{_SYMBOL})"
    rf"(?:{_SEPARATOR.join(f'{_SYMBOL}{{{n}}}' for n in code_text.GROUPS)}|{_SYMBOL}{{{code_text.LENGTH}}})"
    rf"(?!{_SYMBOL})"
)


def _mask(match: re.Match[str]) -> str:
    token = match.group(0)
    try:
        normalized = code_text.normalize(token)
    except LedgerError:
        return token  # wrong characters or check character: a word, a hex id, not a code
    if not code_text.could_be_issued(normalized):
        return token  # a number (a float's digits and unit, a timestamp), never a code
    return code_text.mask(normalized[-4:])


def redact(message: str) -> str:
    """``message`` with every claim code in it masked to its last four characters."""
    return _CANDIDATE.sub(_mask, message)


def redact_value(value: Any) -> Any:
    """``value`` with claim codes masked in every string it holds (a structured event's
    values: strings, and the lists, tuples and dicts around them); other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item) for item in value)
    return value


class RedactClaimCodes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):
            # A structured event (structlog hands its formatter the event dict as msg):
            # keep it a dict, masked value by value, so that it still renders as one.
            record.msg = redact_value(record.msg)
            return True
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
