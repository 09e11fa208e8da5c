"""Email contexts: validated data, and a claim code that never shows in a repr."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest

from delivery.channels.email import ConfirmationLine, GiftDeliveredEmail, OrderConfirmationEmail
from ledger.errors import UnknownMarketplace


def test_repr_and_str_never_show_the_claim_code(samples: SimpleNamespace) -> None:
    ctx = samples.gift()
    assert samples.CODE not in repr(ctx)
    assert samples.CODE not in str(ctx)
    assert samples.CODE not in f"{ctx}"
    assert "Eve Smith" in repr(ctx)


@pytest.mark.parametrize("amount", [25.0, "2500", True, None])
def test_amount_must_be_int_minor_units(samples: SimpleNamespace, amount: object) -> None:
    with pytest.raises(TypeError, match="int count of minor units"):
        samples.gift(amount=amount)


def test_negative_amount_is_refused(samples: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="negative"):
        samples.gift(amount=-1)


def test_marketplace_is_checked_and_normalised(samples: SimpleNamespace) -> None:
    assert samples.gift("de").marketplace == "DE"
    with pytest.raises(UnknownMarketplace):
        samples.gift("XX")


def test_channel_is_checked() -> None:
    with pytest.raises(ValueError, match="channel"):
        GiftDeliveredEmail("Pat", "pat@example.com", "Robin", "pigeon", 100, "US")


def test_gift_needs_its_code(samples: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="claim code"):
        samples.gift(code="  ")


def test_confirmation_lines_become_a_tuple_and_cannot_be_empty() -> None:
    line = ConfirmationLine("Robin", "email", 100, "US")
    ctx = OrderConfirmationEmail("Pat", "pat@example.com", "R-1", "US", [line])  # type: ignore[arg-type]
    assert ctx.lines == (line,)
    with pytest.raises(ValueError, match="at least one"):
        OrderConfirmationEmail("Pat", "pat@example.com", "R-1", "US", ())


def test_ordered_at_must_be_aware(samples: SimpleNamespace) -> None:
    lines = samples.confirmation().lines
    with pytest.raises(ValueError, match="timezone-aware"):
        OrderConfirmationEmail("Pat", "pat@example.com", "R-1", "US", lines, datetime(2027, 1, 1))


def test_contexts_are_frozen(samples: SimpleNamespace) -> None:
    ctx = samples.gift()
    with pytest.raises(AttributeError):
        ctx.amount = 1


def test_addressee_properties(samples: SimpleNamespace) -> None:
    assert (samples.gift().to_name, samples.gift().to_addr) == ("Zoë Müller", "zoe@example.com")
    assert (samples.confirmation().to_name, samples.confirmation().to_addr) == (
        "Pat Buyer",
        "pat@example.com",
    )
