"""Claim codes: format, entropy source, normalisation, typo detection, secrecy, the vault."""

from __future__ import annotations

import base64
import copy
import logging
import pickle
import re
import secrets
import unicodedata

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from giftq.settings import get_settings
from ledger import (
    ClaimCode,
    apply_balance,
    capture,
    find_card,
    get_card,
    redeem_code,
    refund,
    reveal_code,
    void_card,
)
from ledger.codes import CodeVault, Sealed, code_text, get_vault
from ledger.codes.vault import UnknownCodeKey
from ledger.errors import CodeMistyped, LedgerError
from ledger.models import Card

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SYMBOL = "[0-9A-HJKMNP-TV-Z]"
DISPLAY = re.compile(rf"^{SYMBOL}{{4}}-{SYMBOL}{{4}}-{SYMBOL}{{4}}-{SYMBOL}{{5}}$")
KEY_1 = "t1:" + base64.b64encode(b"k" * 32).decode()
KEY_2 = "t2:" + base64.b64encode(b"n" * 32).decode()


def codes(n: int) -> list[str]:
    return [code_text.generate() for _ in range(n)]


# --- format and entropy ----------------------------------------------------------------


def test_format_is_17_crockford_symbols_grouped_4_4_4_5() -> None:
    assert code_text.ALPHABET == ALPHABET
    assert code_text.RANDOM_SYMBOLS * 5 >= 80, "at least 80 bits of randomness"
    for normalized in codes(300):
        assert len(normalized) == 17
        assert set(normalized) <= set(ALPHABET)
        shown = ClaimCode(normalized).reveal()
        assert DISPLAY.match(shown), shown
        assert shown.replace("-", "") == normalized
        assert code_text.normalize(shown) == normalized


def test_random_symbols_are_never_all_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    # Log redaction leaves long numbers alone on the strength of this.
    all_nines = sum(9 << (5 * i) for i in range(16))
    draws = [all_nines, 0, all_nines + (6 << 75)]  # 9999...9, 0000...0, 9999...9F
    monkeypatch.setattr(code_text.secrets, "randbits", lambda k: draws.pop(0))
    assert code_text.generate()[:16] == "9" * 15 + "F"
    assert draws == []
    monkeypatch.undo()
    assert not code_text.could_be_issued("0" * 16 + code_text.check_symbol("0" * 16))
    assert code_text.could_be_issued("0" * 15 + "A" + code_text.check_symbol("0" * 15 + "A"))
    assert all(code_text.could_be_issued(c) for c in codes(300))


def test_codes_are_distinct_and_use_every_symbol() -> None:
    batch = codes(2000)
    assert len(set(batch)) == len(batch)
    assert set("".join(batch)) == set(ALPHABET)


def test_randomness_comes_from_the_secrets_module(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    def randbits(k: int) -> int:
        asked.append(k)
        # Symbol i is bits 5i..5i+4: 0, 1, 2, ... 15 in order.
        return sum(i << (5 * i) for i in range(16))

    monkeypatch.setattr(code_text.secrets, "randbits", randbits)
    generated = code_text.generate()
    assert asked == [80], "one draw of 80 bits per code"
    assert generated[:16] == ALPHABET[:16]
    assert code_text.secrets is secrets


def test_codes_made_in_bulk_have_the_same_form_and_check(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    token_bytes = secrets.token_bytes

    def drawn(n: int) -> bytes:
        asked.append(n)
        # The first code's 10 bytes are zero: its symbols would all be 0, a code never issued.
        return bytes(10) + token_bytes(n - 10)

    monkeypatch.setattr(code_text.secrets, "token_bytes", drawn)
    batch = code_text.generate_many(2000)
    assert asked == [20_000], "one read of 80 bits per code"
    assert len(batch) == 2000 and len(set(batch)) == 2000
    assert set("".join(batch)) == set(ALPHABET)
    for normalized in batch:
        assert code_text.could_be_issued(normalized)
        assert normalized[16] == code_text.check_symbol(normalized[:16])
        assert code_text.normalize(ClaimCode(normalized).reveal()) == normalized
    monkeypatch.undo()
    assert code_text.generate_many(0) == []


# --- normalisation ----------------------------------------------------------------------


@pytest.fixture
def code() -> str:
    """A code whose display form exercises folding: it contains 0 and 1 on purpose."""
    body = "0123" + code_text.generate()[4:16]
    return body + code_text.check_symbol(body)


def test_normalisation_folds_case_lookalikes_spaces_and_dashes(code: str) -> None:
    shown = code_text.display(code)
    typed_forms = [
        shown,
        shown.lower(),
        code.lower(),
        shown.replace("-", " "),
        f"  {shown}  ",
        shown.replace("-", ""),
        "\t".join(shown.split("-")),
        shown.replace("0", "O").replace("1", "I"),
        shown.replace("0", "o").replace("1", "l"),
        shown.replace("1", "L"),
        "-".join(code),
    ]
    for typed in typed_forms:
        assert ClaimCode.parse(typed).normalized == code, typed


def code_holding(symbols: str) -> str:
    """A valid normalised code whose random part starts with ``symbols`` (at most 16)."""
    body = (symbols + code_text.generate())[:16]
    return body + code_text.check_symbol(body)


def retyped(shown: str, table: dict[str, str]) -> str:
    """``shown`` with each symbol written as ``table`` says."""
    return "".join(table.get(symbol, symbol) for symbol in shown)


def by_name(prefix: str, pairs: str) -> dict[str, str]:
    """``"A=A, B=VE"`` -> {"A": the character named "<prefix> A", "B": "<prefix> VE"}."""
    table = {}
    for pair in pairs.split(", "):
        symbol, name = pair.split("=")
        table[symbol] = unicodedata.lookup(f"{prefix} {name}")
    return table


FULL_WIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
CYRILLIC_CAPITALS = by_name(
    "CYRILLIC CAPITAL LETTER",
    "A=A, B=VE, E=IE, K=KA, M=EM, H=EN, 0=O, P=ER, C=ES, T=TE, X=HA, Y=U, S=DZE, J=JE, Q=QA, W=WE, "
    "3=ZE, 1=BYELORUSSIAN-UKRAINIAN I",
)
CYRILLIC_SMALL = by_name(
    "CYRILLIC SMALL LETTER",
    "A=A, E=IE, P=ER, C=ES, X=HA, Y=U, S=DZE, J=JE, D=KOMI DE, H=SHHA, Q=QA, W=WE, 0=O, "
    "1=BYELORUSSIAN-UKRAINIAN I",
)
GREEK_CAPITALS = by_name(
    "GREEK CAPITAL LETTER",
    "A=ALPHA, B=BETA, E=EPSILON, Z=ZETA, H=ETA, 1=IOTA, K=KAPPA, M=MU, N=NU, 0=OMICRON, P=RHO, T=TAU, "
    "Y=UPSILON, X=CHI, J=YOT",
)
GREEK_SMALL = by_name("GREEK SMALL LETTER", "0=OMICRON, V=NU, P=RHO")


@pytest.mark.parametrize(
    "table",
    [
        FULL_WIDTH,
        {symbol: FULL_WIDTH[symbol].lower() for symbol in ALPHABET},  # full-width small letters
        dict(list(CYRILLIC_CAPITALS.items())[:16]),
        dict(list(CYRILLIC_CAPITALS.items())[16:]),
        CYRILLIC_SMALL,
        {"1": "\N{CYRILLIC LETTER PALOCHKA}"},
        {"1": "\N{CYRILLIC SMALL LETTER PALOCHKA}"},
        {"Y": "\N{CYRILLIC CAPITAL LETTER STRAIGHT U}"},
        GREEK_CAPITALS,
        GREEK_SMALL,
    ],
    ids=[
        "full-width",
        "full-width-small",
        "cyrillic-capitals",
        "cyrillic-capitals-2",
        "cyrillic-small",
        "palochka",
        "palochka-small",
        "straight-u",
        "greek-capitals",
        "greek-small",
    ],
)
def test_look_alike_letters_and_digits_are_read_as_the_symbol(table: dict[str, str]) -> None:
    code = code_holding("".join(symbol for symbol in table if symbol in ALPHABET)[:16])
    typed = retyped(code_text.display(code), table)
    assert sum(1 for ch in typed if not ch.isascii()) >= min(len(table), 16)
    assert ClaimCode.parse(typed).normalized == code


@pytest.mark.parametrize(
    "separator",
    [
        "\u00a0",  # no-break space
        "\u2007",  # figure space
        "\u2009",  # thin space
        "\u202f",  # narrow no-break space
        "\u3000",  # ideographic space
        "\u200b",  # zero-width space
        "\u200c",  # zero-width non-joiner
        "\u200d",  # zero-width joiner
        "\u2060",  # word joiner
        "\ufeff",  # BOM
        "\u00ad",  # soft hyphen
        "\u2010",  # hyphen
        "\u2011",  # non-breaking hyphen
        "\u2012",  # figure dash
        "\u2013",  # en dash
        "\u2014",  # em dash
        "\u2015",  # horizontal bar
        "\u2212",  # minus sign
        "\ufe63",  # small hyphen-minus
        "\uff0d",  # full-width hyphen-minus
        "\u30fc",  # katakana prolonged sound mark, what a Japanese input method types for "-"
        " - ",
        "\t",
    ],
)
def test_unicode_spaces_invisible_characters_and_dashes_are_ignored(code: str, separator: str) -> None:
    typed = code_text.display(code).replace("-", separator)
    assert ClaimCode.parse(typed).normalized == code
    assert ClaimCode.parse(separator + typed + separator).normalized == code


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\t", " \n", "\n\n", "\u2028", "\x85"])
def test_a_trailing_line_end_or_tab_from_a_paste_is_ignored(code: str, ending: str) -> None:
    assert ClaimCode.parse(code_text.display(code) + ending).normalized == code
    assert ClaimCode.parse(code + ending).normalized == code


def test_a_code_pasted_with_every_kind_of_look_alike_at_once_parses() -> None:
    code = code_holding("ABE0" + "PCX1" + "HKMN" + "T3")
    groups = code_text.display(code).split("-")
    typed = (
        "\ufeff\u200b "
        + retyped(groups[0], FULL_WIDTH)
        + "\u2013"
        + retyped(groups[1], CYRILLIC_SMALL | {"X": "\N{CYRILLIC CAPITAL LETTER HA}"})
        + "\u00a0\u2014\u00a0"
        + retyped(groups[2], GREEK_CAPITALS)
        + "\u2212\u200d"
        + retyped(groups[3].lower(), {"3": "\N{CYRILLIC CAPITAL LETTER ZE}"})
        + "\u3000\t\r\n"
    )
    assert not typed.isascii()
    assert ClaimCode.parse(typed).normalized == code


def test_the_look_alike_table_maps_only_onto_the_alphabet() -> None:
    for lookalike, latin in code_text.LOOKALIKES.items():
        assert not lookalike.isascii()
        folded = {"O": "0", "I": "1", "L": "1"}.get(latin.upper(), latin.upper())
        assert folded in ALPHABET, (lookalike, latin)
    assert not set(code_text.SEPARATORS) & set(ALPHABET.lower() + ALPHABET)


@pytest.mark.parametrize(
    "replacement, problem",
    [
        ("\N{CYRILLIC CAPITAL LETTER DE}", "characters a code never has (1 kind"),
        ("\N{CYRILLIC SMALL LETTER KA}", "characters a code never has (1 kind"),  # a small capital
        ("\N{GREEK CAPITAL LETTER OMEGA}", "characters a code never has (1 kind"),
        ("\N{GREEK SMALL LETTER ALPHA}", "characters a code never has (1 kind"),  # told apart from a
        ("\N{CYRILLIC CAPITAL LETTER U WITH MACRON}", "characters a code never has (1 kind"),
        ("\N{FULLWIDTH LATIN CAPITAL LETTER U}", "characters a code never has (U)"),  # still a U
        ("*", "characters a code never has (1 kind"),
        ("", "a code has 17 characters; this one has 16"),
        ("\u200bX", "check character"),  # a zero-width space, and a wrong symbol
    ],
)
def test_what_is_not_a_look_alike_still_gets_the_right_error(
    code: str, replacement: str, problem: str
) -> None:
    shown = code_text.display(code)
    # The last symbol replaced; "X" is wrong there unless it was the check symbol already.
    if replacement == "\u200bX" and shown[-1] == "X":
        replacement = "\u200bY"
    typed = retyped(shown[:-1], CYRILLIC_CAPITALS) + replacement
    with pytest.raises(CodeMistyped, match=re.escape(problem)):
        ClaimCode.parse(typed)


@pytest.mark.parametrize(
    "typed, problem",
    [
        ("", "17 characters"),
        ("ABCD", "17 characters"),
        ("U" * 17, "characters a code never has (U)"),
        ("ABCD-EFGH-JKMN-PQR*T", "characters a code never has"),
    ],
)
def test_malformed_input_is_mistyped_and_never_echoed(typed: str, problem: str) -> None:
    with pytest.raises(CodeMistyped, match=re.escape(problem)) as caught:
        ClaimCode.parse(typed)
    if typed:
        assert typed not in str(caught.value)


def test_non_text_is_mistyped() -> None:
    with pytest.raises(CodeMistyped):
        ClaimCode.parse(12345678901234567)  # type: ignore[arg-type]


def caught_as_typo(typed: str) -> bool:
    try:
        code_text.normalize(typed)
    except CodeMistyped as refusal:
        return "check character" in str(refusal)
    return False


def test_every_single_substitution_is_caught() -> None:
    # The check is linear over GF(32), so detection does not depend on the code; trying it
    # on a few hundred random codes is still cheap and guards the implementation.
    missed = [
        typo
        for normalized in codes(300)
        for position, original in enumerate(normalized)
        for symbol in ALPHABET
        if symbol != original
        and not caught_as_typo(typo := normalized[:position] + symbol + normalized[position + 1 :])
    ]
    assert missed == []


def test_every_adjacent_swap_is_caught() -> None:
    swaps = [
        normalized[:position] + normalized[position + 1] + normalized[position] + normalized[position + 2 :]
        for normalized in codes(400)
        for position in range(len(normalized) - 1)
        if normalized[position] != normalized[position + 1]
    ]
    assert len(swaps) > 5000
    assert [swap for swap in swaps if not caught_as_typo(swap)] == []


# --- secrecy in memory ------------------------------------------------------------------


def test_str_repr_and_format_show_only_the_last_four(code: str) -> None:
    claim = ClaimCode(code)
    shown = claim.reveal()
    renderings = [
        str(claim),
        repr(claim),
        f"{claim}",
        f"{claim!r}",
        f"{claim:>40}",
        "%s" % claim,  # noqa: UP031 - old-style formatting must mask too
        "%r" % claim,  # noqa: UP031
        str([claim]),
        repr({"code": claim}),
    ]
    for rendered in renderings:
        assert code not in rendered
        assert shown not in rendered
        assert code[:8] not in rendered
        assert claim.last4 in rendered
    assert claim.masked.endswith(code[-4:])
    assert claim.last4 == code[-4:]


def test_claim_codes_cannot_be_pickled_or_copied(code: str) -> None:
    claim = ClaimCode(code)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="not serialisable"):
            pickle.dumps(claim, protocol=protocol)
    with pytest.raises(TypeError):
        copy.copy(claim)


def test_equality_is_by_normalised_code(code: str) -> None:
    assert ClaimCode.parse(code.lower()) == ClaimCode(code)
    assert hash(ClaimCode.parse(code_text.display(code))) == hash(ClaimCode(code))
    assert ClaimCode(code) != ClaimCode(code_text.generate())
    assert ClaimCode(code) != code


# --- the vault ----------------------------------------------------------------------------


def make_vault(keys: str, pepper: bytes = b"p" * 32) -> CodeVault:
    keyring = {}
    for item in keys.split(","):
        kid, _, b64 = item.partition(":")
        keyring[kid] = base64.b64decode(b64)
    return CodeVault(pepper, keyring)


def test_lookup_hash_is_a_stable_hmac_under_the_pepper(code: str) -> None:
    import hashlib
    import hmac

    vault = make_vault(KEY_1)
    expected = hmac.new(b"p" * 32, code.encode(), hashlib.sha256).digest()
    assert vault.lookup_hash(code) == expected
    assert make_vault(KEY_2).lookup_hash(code) == expected, "rotating encryption keys keeps lookups"
    assert make_vault(KEY_1, pepper=b"q" * 32).lookup_hash(code) != expected
    assert get_vault().lookup_hash(code) == expected, "the test settings' pepper is b'p' * 32"


def test_seal_and_open_round_trip_with_a_fresh_nonce(code: str) -> None:
    vault = make_vault(KEY_1)
    lookup = vault.lookup_hash(code)
    first, second = vault.seal(code, lookup), vault.seal(code, lookup)
    assert first.key_id == "t1"
    assert first.blob != second.blob
    assert code.encode() not in first.blob
    assert vault.open(first, lookup) == code
    assert vault.open(second, lookup) == code
    assert "k" * 10 not in repr(vault)


def test_sealing_in_bulk_opens_like_one_at_a_time() -> None:
    vault = make_vault(KEY_1)
    codes = code_text.generate_many(50)
    lookups = [vault.lookup_hash(c) for c in codes]
    key_id, blobs = vault.seal_many(codes, lookups)
    assert key_id == "t1"
    assert len({blob[:12] for blob in blobs}) == 50, "a nonce of its own for each code"
    for normalized, lookup, blob in zip(codes, lookups, blobs, strict=True):
        assert normalized.encode() not in blob
        assert vault.open(Sealed(key_id, blob), lookup) == normalized
    with pytest.raises(InvalidTag):
        vault.open(Sealed(key_id, blobs[0]), lookups[1])


def test_tampered_ciphertext_or_another_cards_hash_fails(code: str) -> None:
    vault = make_vault(KEY_1)
    lookup = vault.lookup_hash(code)
    sealed = vault.seal(code, lookup)
    for index in (0, 12, len(sealed.blob) - 1):
        blob = bytearray(sealed.blob)
        blob[index] ^= 0x01
        with pytest.raises(InvalidTag):
            vault.open(Sealed(sealed.key_id, bytes(blob)), lookup)
    other = vault.lookup_hash(code_text.generate())
    with pytest.raises(InvalidTag):
        vault.open(sealed, other)


def test_rotation_old_keys_open_the_first_key_seals(code: str) -> None:
    old = make_vault(KEY_1)
    lookup = old.lookup_hash(code)
    sealed_old = old.seal(code, lookup)
    rotated = make_vault(f"{KEY_2},{KEY_1}")
    assert rotated.open(sealed_old, lookup) == code
    sealed_new = rotated.seal(code, lookup)
    assert sealed_new.key_id == "t2"
    with pytest.raises(UnknownCodeKey, match="'t2' is not configured"):
        old.open(sealed_new, lookup)
    with pytest.raises(UnknownCodeKey):
        make_vault(KEY_2).open(sealed_old, lookup)


def test_card_sealed_under_an_old_key_opens_after_rotation(books, set_env) -> None:
    old_card = books.issue_one(2500)
    assert get_settings().code_keyring().keys() == {"t1"}

    set_env(code_keys=f"{KEY_2},{KEY_1}")
    assert books.run(reveal_code, old_card.card_id) == old_card.code
    new_card = books.issue_one(1500)
    with books.Session() as session:
        key_ids = dict(session.execute(select(Card.id, Card.code_key_id)).all())
    assert key_ids == {old_card.card_id: "t1", new_card.card_id: "t2"}
    # Lookups depend on the pepper only: the old card still redeems after rotation.
    assert books.redeem(old_card.code.reveal(), "alice").amount == 2500

    set_env(code_keys=KEY_2)
    assert books.run(reveal_code, new_card.card_id) == new_card.code
    with pytest.raises(UnknownCodeKey, match="'t1'"):
        books.run(reveal_code, old_card.card_id)


def test_database_holds_no_plaintext_code(books) -> None:
    issued = books.issue(1000, 2000, 3000)
    with books.Session() as session:
        rows = session.execute(select(Card)).scalars().all()
        dumped = [repr({c.name: getattr(card, c.key) for c in Card.__table__.columns}) for card in rows]
    for card in issued:
        for row in dumped:
            assert card.code.normalized not in row
            assert card.code.reveal() not in row
            assert card.code.normalized.encode() not in row.encode()
    assert {c.code_last4 for c in rows} == {card.last4 for card in issued}


# --- never in logs or exceptions ----------------------------------------------------------


def test_a_claim_code_never_reaches_logs_or_exception_text(
    books, set_env, caplog: pytest.LogCaptureFixture
) -> None:
    set_env(redeem_max_failures_per_account=3)
    caplog.set_level(logging.DEBUG)
    # DEBUG is echo="debug": every statement, its parameters and every result row.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
    errors: list[BaseException] = []

    def expect_error(fn, *args, **kwargs) -> None:
        with pytest.raises(LedgerError) as caught:
            fn(*args, **kwargs)
        errors.append(caught.value)

    card, inactive, doomed = books.issue_one(5000), books.issue_one(700, active=False), books.issue_one(300)
    secrets_ = [c.code for c in (card, inactive, doomed)]
    shown = card.code.reveal()
    typo = shown[:-1] + ("0" if shown[-1] != "0" else "1")

    books.run(find_card, shown.lower())
    books.run(get_card, card.card_id)
    assert books.run(reveal_code, card.card_id) == card.code
    books.run(void_card, doomed.card_id, idempotency_key="void")
    expect_error(books.redeem, typo, "alice")
    expect_error(books.redeem, inactive.code.reveal(), "alice")
    expect_error(books.redeem, doomed.code.reveal(), "alice")
    expect_error(books.redeem, shown, "alice", marketplace="CA")
    books.redeem(shown, "alice", key="redeem-1")
    expect_error(books.redeem, shown, "alice")
    expect_error(books.redeem, shown, "bob")
    expect_error(books.redeem, doomed.code.reveal(), "alice", key="redeem-1")
    for attempt in range(4):  # committed failures, then the lockout
        expect_error(
            redeem_code,
            books.Session,
            code_text.generate(),
            account="mallory",
            marketplace="US",
            idempotency_key=f"guess-{attempt}",
        )
    state = books.run(
        apply_balance,
        account="alice",
        marketplace="US",
        order_ref="o-1",
        order_total=4000,
        idempotency_key="apply",
    )
    books.run(capture, state.checkout_id, idempotency_key="capture")
    books.run(refund, state.checkout_id, amount=100, idempotency_key="refund")
    expect_error(books.run, refund, state.checkout_id, amount=10_000, idempotency_key="refund-2")

    assert {type(e).__name__ for e in errors} >= {
        "CodeMistyped",
        "CardNotActive",
        "CardVoided",
        "WrongMarketplace",
        "AlreadyRedeemed",
        "IdempotencyConflict",
        "CodeNotValid",
        "TooManyAttempts",
        "InsufficientFunds",
    }
    assert any("ledger_cards" in r.getMessage() for r in caplog.records), "engine logging was captured"
    texts = [record.getMessage() for record in caplog.records]
    texts += [f"{record.args!r} {record.exc_text or ''}" for record in caplog.records]
    texts += [f"{e} {e!r} {e.args!r}" for e in errors]
    for claim in secrets_:
        forms = {claim.normalized, claim.reveal(), claim.normalized.lower(), claim.reveal().lower()}
        for text_ in texts:
            for form in forms:
                assert form not in text_
    assert typo not in " ".join(texts)
