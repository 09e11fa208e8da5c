"""Claim codes as people type them, generated (hypothesis): any mix of case, look-alike
letters from other scripts, full-width forms and separators folds to the issued code; any
other text is "mistyped" or "not valid", never a crash, never echoed; and a redemption of
junk writes nothing but the guess it counts.

The example-based rules are in tests/ledger/test_codes.py; these hold them over many inputs.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import redeem_code
from ledger.codes import ClaimCode
from ledger.codes import text as code_text
from ledger.errors import CodeMistyped, CodeNotValid

SETTINGS = settings(max_examples=200, deadline=None, database=None)
DB_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# What each symbol of the alphabet may be typed as.
SPELLINGS: dict[str, list[str]] = {symbol: [symbol, symbol.lower()] for symbol in code_text.ALPHABET}
SPELLINGS["0"] += ["O", "o", "\uff10"]
SPELLINGS["1"] += ["I", "i", "L", "l", "\uff11"]
for lookalike, latin in code_text.LOOKALIKES.items():
    folded = {"O": "0", "I": "1", "L": "1"}.get(latin.upper(), latin.upper())
    if folded in SPELLINGS:
        SPELLINGS[folded].append(lookalike)
for symbol in code_text.ALPHABET:
    if symbol.isalpha():  # full-width capital and small letters
        SPELLINGS[symbol] += [chr(0xFF21 + ord(symbol) - ord("A")), chr(0xFF41 + ord(symbol) - ord("A"))]
SEPARATOR = st.text(alphabet=code_text.SEPARATORS, max_size=2)

_guessers = (f"guesser-{i}" for i in itertools.count())
codes = (
    st.text(alphabet=code_text.ALPHABET, min_size=code_text.RANDOM_SYMBOLS, max_size=code_text.RANDOM_SYMBOLS)
    .filter(code_text.could_be_issued)
    .map(lambda body: body + code_text.check_symbol(body))
)
"""Codes as :func:`ledger.codes.text.generate` makes them (drawn by hypothesis, so it can shrink)."""


@st.composite
def typed(draw: Any, code: str) -> str:
    """``code`` as someone might type or paste it."""
    out = [draw(SEPARATOR)]
    for symbol in code:
        out.append(draw(st.sampled_from(SPELLINGS[symbol])))
        out.append(draw(SEPARATOR))
    return "".join(out)


@SETTINGS
@given(data=st.data())
def test_any_spelling_of_an_issued_code_folds_to_it(data: Any) -> None:
    code = data.draw(codes)
    spelled = data.draw(typed(code))
    assert ClaimCode.parse(spelled).normalized == code
    assert code_text.normalize(spelled) == code


@SETTINGS
@given(data=st.data(), position=st.integers(0, code_text.LENGTH - 1))
def test_one_wrong_symbol_in_any_spelling_is_mistyped(data: Any, position: int) -> None:
    code = data.draw(codes)
    wrong = data.draw(st.sampled_from([s for s in code_text.ALPHABET if s != code[position]]))
    spelled = data.draw(typed(code[:position] + wrong + code[position + 1 :]))
    with pytest.raises(CodeMistyped):
        ClaimCode.parse(spelled)


@SETTINGS
@given(junk=st.text(max_size=60))
def test_any_text_is_a_code_or_mistyped_and_the_error_never_repeats_it(junk: str) -> None:
    try:
        parsed = ClaimCode.parse(junk)
    except CodeMistyped as refused:
        if len(junk) >= 6:  # shorter input may be a word of the message itself
            assert junk not in str(refused)
    else:
        assert len(parsed.normalized) == code_text.LENGTH


@DB_SETTINGS
@given(junk=st.one_of(st.text(max_size=40), codes.map(code_text.display)))
def test_redeeming_junk_is_mistyped_or_not_valid_and_writes_only_the_counted_guess(
    books: Any, junk: str
) -> None:
    before = books.counts()
    guesser = next(_guessers)  # a fresh account and client each time: clear of the lockout
    with pytest.raises((CodeMistyped, CodeNotValid)) as refused:
        redeem_code(
            books.Session,
            junk,
            account=guesser,
            marketplace="US",
            idempotency_key=books.key("junk"),
            client=guesser,
        )
    counted = 2 if isinstance(refused.value, CodeNotValid) else 0  # the account's and the client's
    assert books.counts() == before | {"failures": before["failures"] + counted}
