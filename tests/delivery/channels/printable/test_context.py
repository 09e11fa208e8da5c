"""The card's context: a frozen value that checks its fields and never shows its code."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from delivery.channels.printable import InvalidCard, PrintableCard
from ledger.codes.text import normalize


def test_repr_and_str_hide_the_code(new_card: Any) -> None:
    card = new_card()
    assert card.code not in repr(card)
    assert card.grouped_code not in repr(card)
    assert card.code not in str(card)
    assert "Robin Receiver" in repr(card)


def test_is_frozen(new_card: Any) -> None:
    card = new_card()
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.amount = 1  # type: ignore[misc]


def test_code_is_kept_normalised_and_shown_grouped(new_card: Any) -> None:
    typed = new_card().grouped_code.lower().replace("-", " ")
    card = new_card(code=typed)
    assert card.code == normalize(typed)
    assert card.grouped_code.count("-") == 3
    assert [len(g) for g in card.grouped_code.split("-")] == [4, 4, 4, 5]


def test_marketplace_is_canonical(new_card: Any) -> None:
    assert new_card(marketplace="de").marketplace == "DE"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"recipient_name": "  "}, "recipient_name"),
        ({"sender_name": "x" * 101}, "sender_name"),
        ({"message": "m" * 501}, "message"),
        ({"amount": 0}, "amount"),
        ({"marketplace": "XX"}, "marketplace"),
        ({"design": ""}, "design"),
        ({"locale": "not a locale!"}, "locale"),
    ],
)
def test_bad_fields_are_named(new_card: Any, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCard, match=field):
        new_card(**changes)


def test_a_mistyped_code_is_refused_without_echoing_it(new_card: Any) -> None:
    good = new_card().grouped_code
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    with pytest.raises(InvalidCard) as caught:
        new_card(code=bad)
    assert "code" in str(caught.value)
    assert bad not in str(caught.value)
    assert bad.replace("-", "") not in str(caught.value)


@pytest.mark.parametrize("amount", [25.0, True, "2500"])
def test_amount_must_be_int_minor_units(new_card: Any, amount: Any) -> None:
    with pytest.raises(TypeError, match="int count of minor units"):
        new_card(amount=amount)


def test_message_may_be_absent(new_card: Any) -> None:
    assert new_card(message=None).message is None


def test_cards_are_values(new_card: Any) -> None:
    card = new_card()
    same = PrintableCard(**{f.name: getattr(card, f.name) for f in dataclasses.fields(card)})
    assert same == card
