"""Claim-code format: Crockford base32, a check character, grouping and normalisation.

A code is 16 random symbols (80 bits from the OS CSPRNG) and one check symbol,
shown as ``XXXX-XXXX-XXXX-XXXXX``. The alphabet has no I, L, O or U, so that what
a person reads is what they type. :func:`normalize` folds what a person types or
pastes (look-alike characters from other scripts and Unicode forms included) into
that alphabet; its docstring lists the rules.

The check symbol makes the weighted sum ``sum(a**i * c[i])`` zero in GF(32), with
``a`` a primitive element (polynomial x^5 + x^2 + 1). Distinct non-zero weights
catch every single wrong symbol; ``a**i != a**(i+1)`` catches every swap of two
different neighbours. These are "looks mistyped", answered without a lookup.
"""

from __future__ import annotations

import base64
import secrets
import unicodedata

from ledger.errors import CodeMistyped

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_SYMBOLS = 16
LENGTH = RANDOM_SYMBOLS + 1
GROUPS = (4, 4, 4, 5)

_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}

SEPARATORS = (
    # Spaces, line ends and tabs that survive NFKC (it already turns no-break, figure,
    # thin and ideographic spaces into " ").
    " \t\n\r\v\f\x85\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
    # Invisible: zero-width space, non-joiner, joiner, word joiner, BOM, soft hyphen.
    "\u200b\u200c\u200d\u2060\ufeff\u00ad"
    # Hyphens and dashes: hyphen-minus, hyphen, non-breaking hyphen, figure dash, en dash,
    # em dash, horizontal bar, minus sign, hyphen bullet, small em dash, small and
    # full-width hyphen-minus, modifier minus, and the katakana prolonged sound mark that a
    # Japanese input method types for "-".
    "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d\u02d7\u30fc"
)
"""Characters a person puts between groups, or that come along when a code is pasted."""

# Cyrillic and Greek letters drawn like a Latin letter or a digit of the alphabet (after
# case folding) in common fonts. Only true look-alikes: the small Cyrillic ka, em, en, te and
# ve are drawn as small capitals, not as Latin lower case, and the small Greek alpha, iota,
# kappa, upsilon and chi are told apart by readers; those stay errors. A look-alike of U
# stays an error too: U is never in a code.
LOOKALIKES = {
    # Cyrillic capitals
    "\N{CYRILLIC CAPITAL LETTER A}": "A",
    "\N{CYRILLIC CAPITAL LETTER VE}": "B",
    "\N{CYRILLIC CAPITAL LETTER IE}": "E",
    "\N{CYRILLIC CAPITAL LETTER KA}": "K",
    "\N{CYRILLIC CAPITAL LETTER EM}": "M",
    "\N{CYRILLIC CAPITAL LETTER EN}": "H",
    "\N{CYRILLIC CAPITAL LETTER O}": "O",
    "\N{CYRILLIC CAPITAL LETTER ER}": "P",
    "\N{CYRILLIC CAPITAL LETTER ES}": "C",
    "\N{CYRILLIC CAPITAL LETTER TE}": "T",
    "\N{CYRILLIC CAPITAL LETTER HA}": "X",
    "\N{CYRILLIC CAPITAL LETTER U}": "Y",
    "\N{CYRILLIC CAPITAL LETTER STRAIGHT U}": "Y",
    "\N{CYRILLIC CAPITAL LETTER DZE}": "S",
    "\N{CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I}": "I",
    "\N{CYRILLIC CAPITAL LETTER JE}": "J",
    "\N{CYRILLIC CAPITAL LETTER QA}": "Q",
    "\N{CYRILLIC CAPITAL LETTER WE}": "W",
    "\N{CYRILLIC CAPITAL LETTER ZE}": "3",
    "\N{CYRILLIC LETTER PALOCHKA}": "I",
    # Cyrillic small letters
    "\N{CYRILLIC SMALL LETTER A}": "a",
    "\N{CYRILLIC SMALL LETTER IE}": "e",
    "\N{CYRILLIC SMALL LETTER O}": "o",
    "\N{CYRILLIC SMALL LETTER ER}": "p",
    "\N{CYRILLIC SMALL LETTER ES}": "c",
    "\N{CYRILLIC SMALL LETTER U}": "y",
    "\N{CYRILLIC SMALL LETTER HA}": "x",
    "\N{CYRILLIC SMALL LETTER DZE}": "s",
    "\N{CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I}": "i",
    "\N{CYRILLIC SMALL LETTER PALOCHKA}": "l",
    "\N{CYRILLIC SMALL LETTER JE}": "j",
    "\N{CYRILLIC SMALL LETTER KOMI DE}": "d",
    "\N{CYRILLIC SMALL LETTER SHHA}": "h",
    "\N{CYRILLIC SMALL LETTER QA}": "q",
    "\N{CYRILLIC SMALL LETTER WE}": "w",
    # Greek capitals
    "\N{GREEK CAPITAL LETTER ALPHA}": "A",
    "\N{GREEK CAPITAL LETTER BETA}": "B",
    "\N{GREEK CAPITAL LETTER EPSILON}": "E",
    "\N{GREEK CAPITAL LETTER ZETA}": "Z",
    "\N{GREEK CAPITAL LETTER ETA}": "H",
    "\N{GREEK CAPITAL LETTER IOTA}": "I",
    "\N{GREEK CAPITAL LETTER KAPPA}": "K",
    "\N{GREEK CAPITAL LETTER MU}": "M",
    "\N{GREEK CAPITAL LETTER NU}": "N",
    "\N{GREEK CAPITAL LETTER OMICRON}": "O",
    "\N{GREEK CAPITAL LETTER RHO}": "P",
    "\N{GREEK CAPITAL LETTER TAU}": "T",
    "\N{GREEK CAPITAL LETTER UPSILON}": "Y",
    "\N{GREEK CAPITAL LETTER CHI}": "X",
    "\N{GREEK CAPITAL LETTER YOT}": "J",
    # Greek small letters
    "\N{GREEK SMALL LETTER OMICRON}": "o",
    "\N{GREEK SMALL LETTER NU}": "v",
    "\N{GREEK SMALL LETTER RHO}": "p",
}
"""Look-alike character -> the Latin letter or digit it is read as."""


def _fold_latin(symbol: str) -> str:
    upper = symbol.upper()
    return {"O": "0", "I": "1", "L": "1"}.get(upper, upper)


_FOLD = str.maketrans(
    {letter: _fold_latin(letter) for letter in "abcdefghijklmnopqrstuvwxyzOIL"}
    | {lookalike: _fold_latin(latin) for lookalike, latin in LOOKALIKES.items()}
    | dict.fromkeys(SEPARATORS)
)

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


def could_be_issued(normalized: str) -> bool:
    """Whether :func:`generate` can produce this normalised code: its random symbols are not all digits.

    Redaction relies on it to leave long numbers (a float's digits, a timestamp) alone
    without ever leaving a code unmasked.
    """
    return not normalized[:RANDOM_SYMBOLS].isdigit()


def generate() -> str:
    """A new normalised code (17 symbols, no dashes) from the OS CSPRNG."""
    # One draw of 80 bits, cut into 5-bit symbols: each is uniform over the 32-symbol
    # alphabet. (A secrets.choice per symbol reads the OS CSPRNG 16 times per code,
    # which was a fifth of the time of a bulk issuance.)
    while True:
        bits = secrets.randbits(5 * RANDOM_SYMBOLS)
        body = "".join(ALPHABET[(bits >> shift) & 0b11111] for shift in range(0, 5 * RANDOM_SYMBOLS, 5))
        # (10/32)**16: one draw in 1.2e8 is all digits and drawn again, a loss of 1e-8 bits.
        if could_be_issued(body):
            return body + check_symbol(body)


# For generate_many: RFC 4648 base32 symbols -> the symbol of the same value here, and the
# weighted-sum terms indexed by a symbol's ASCII byte (no dict lookup per symbol).
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode("ascii"))
_TERMS_BY_BYTE = [
    [terms[_VALUE[chr(byte)]] if chr(byte) in _VALUE else 0 for byte in range(128)] for terms in _TERMS
]
_CHECK_FOR_PARTIAL = [ALPHABET[_mul(partial, _EXP[(31 - RANDOM_SYMBOLS) % 31])] for partial in range(32)]


def generate_many(count: int) -> list[str]:
    """``count`` new normalised codes, as :func:`generate` makes them, from one CSPRNG read.

    Bulk issuance spends most of its Python time here otherwise: one read of 10 bytes
    per code from the OS and base32 in C cost about 1 us a code, against 10 us for a
    code built symbol by symbol. Each code's 80 bits are its own 10 bytes of the read,
    each 5-bit group a uniform symbol; the rare all-digit draw is drawn again alone.
    """
    raw = base64.b32encode(secrets.token_bytes(10 * count)).translate(_FROM_RFC4648)
    codes = []
    for start in range(0, RANDOM_SYMBOLS * count, RANDOM_SYMBOLS):
        body = raw[start : start + RANDOM_SYMBOLS]
        if body.isdigit():
            codes.append(generate())
            continue
        partial = 0
        for terms, byte in zip(_TERMS_BY_BYTE, body, strict=False):
            partial ^= terms[byte]
        codes.append(body.decode("ascii") + _CHECK_FOR_PARTIAL[partial])
    return codes


def normalize(typed: str) -> str:
    """Fold what a person typed or pasted into the canonical form, or raise :class:`CodeMistyped`.

    In this order:

    1. Unicode NFKC: full-width and other compatibility forms of digits and letters
       become ASCII (full-width zero -> 0, full-width A -> A), Unicode spaces (no-break,
       figure, thin, ideographic, ...) become a space, the small and full-width
       hyphen-minus become "-".
    2. :data:`LOOKALIKES`: Cyrillic and Greek letters drawn like a Latin letter or a digit
       of the alphabet are read as that letter: the Cyrillic capitals that look like
       A B C E H K M O P T X Y, S I J Q W and 3 (ze), the Greek capitals that look like
       A B E H I K M N O P T X Y Z J, the small Cyrillic letters that look like
       a c e o p x y, s i j d h q w and l (palochka), and the small Greek o (omicron),
       v (nu) and p (rho).
    3. Case is ignored; O is read as 0, I and L as 1.
    4. :data:`SEPARATORS` are dropped: spaces, tabs and line ends anywhere (a trailing
       newline included), zero-width space, joiners, word joiner, BOM and soft hyphen,
       and every hyphen and dash (hyphen-minus, hyphen, en and em dash, minus sign, ...).

    Anything else (a Cyrillic Д, a Greek Ω, a U in any form) is a character a code never
    has. The error message describes the problem without repeating the input.
    """
    if not isinstance(typed, str):
        raise CodeMistyped("a claim code is text")
    folded = unicodedata.normalize("NFKC", typed).translate(_FOLD)
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
