"""Claim-code format: Crockford base32, a check character, grouping and normalisation.

A code is 16 random symbols (80 bits from the OS CSPRNG) and one check symbol,
shown as ``XXXX-XXXX-XXXX-XXXXX``. The alphabet has no I, L, O or U, so that what
a person reads is what they type; normalisation folds O->0 and I/L->1, ignores
case, spaces and dashes.

The check symbol makes the weighted sum ``sum(a**i * c[i])`` zero in GF(32), with
``a`` a primitive element (polynomial x^5 + x^2 + 1). Distinct non-zero weights
catch every single wrong symbol; ``a**i != a**(i+1)`` catches every swap of two
different neighbours. These are "looks mistyped", answered without a lookup.
"""

from __future__ import annotations

import secrets

from ledger.errors import CodeMistyped

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_SYMBOLS = 16
LENGTH = RANDOM_SYMBOLS + 1
GROUPS = (4, 4, 4, 5)

_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
_FOLD = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None, "\t": None})

# GF(32) log/antilog tables for the primitive polynomial x^5 + x^2 + 1.
_EXP = [0] * 62
_LOG = [0] * 32
_x = 1
for _i in range(31):
    _EXP[_i] = _EXP[_i + 31] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0b100000:
        _x ^= 0b100101


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


# _TERMS[position][value] = a**position * value: the sum below is then 17 lookups.
_TERMS = [[_mul(_EXP[position % 31], value) for value in range(32)] for position in range(LENGTH)]


def _weighted_sum(values: list[int]) -> int:
    total = 0
    # values: the 16 random symbols (computing the check) or all 17 (verifying it).
    for terms, value in zip(_TERMS, values, strict=False):
        total ^= terms[value]
    return total


def check_symbol(body: str) -> str:
    """The symbol that, appended to the 16 random symbols ``body``, zeroes the sum."""
    partial = _weighted_sum([_VALUE[s] for s in body])
    # Solve a**16 * c = partial (addition is XOR, so -partial == partial).
    inverse_weight = _EXP[(31 - RANDOM_SYMBOLS) % 31]
    return ALPHABET[_mul(partial, inverse_weight)]


def generate() -> str:
    """A new normalised code (17 symbols, no dashes) from the OS CSPRNG."""
    # One draw of 80 bits, cut into 5-bit symbols: each is uniform over the 32-symbol
    # alphabet. (A secrets.choice per symbol reads the OS CSPRNG 16 times per code,
    # which was a fifth of the time of a bulk issuance.)
    bits = secrets.randbits(5 * RANDOM_SYMBOLS)
    body = "".join(ALPHABET[(bits >> shift) & 0b11111] for shift in range(0, 5 * RANDOM_SYMBOLS, 5))
    return body + check_symbol(body)


def normalize(typed: str) -> str:
    """Fold what a person typed into the canonical form, or raise :class:`CodeMistyped`.

    The error message describes the problem without repeating the input.
    """
    if not isinstance(typed, str):
        raise CodeMistyped("a claim code is text")
    folded = typed.upper().translate(_FOLD)
    bad = sorted({s for s in folded if s not in _VALUE})
    if bad:
        shown = "U" if bad == ["U"] else f"{len(bad)} kind(s) of character"
        raise CodeMistyped(f"the code contains characters a code never has ({shown})")
    if len(folded) != LENGTH:
        raise CodeMistyped(f"a code has {LENGTH} characters; this one has {len(folded)}")
    if _weighted_sum([_VALUE[s] for s in folded]) != 0:
        raise CodeMistyped("the code looks mistyped: its check character does not match")
    return folded


def display(normalized: str) -> str:
    """``XXXX-XXXX-XXXX-XXXXX``."""
    parts, start = [], 0
    for size in GROUPS:
        parts.append(normalized[start : start + size])
        start += size
    return "-".join(parts)


def mask(last4: str) -> str:
    """What ops see: the shape of a code with only its last four characters."""
    return "••••-••••-••••-•" + last4
