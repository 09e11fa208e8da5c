"""Page fixtures: the app with a hand-over secret, and links a storefront would make."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from api.pages import handover
from giftq.settings import reset_settings

SECRET = "correct-horse-battery-staple-0123456789"


@pytest.fixture(autouse=True)
def _handover_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_HANDOVER_SECRET", SECRET)
    monkeypatch.setenv("GIFTQ_STOREFRONT_SIGNIN_URL", "https://shop.example/{marketplace}/account/gift-cards")
    reset_settings()


def handover_link(account: str, marketplace: str = "US", ttl: int = 300, base: str = "") -> str:
    return handover.link(base, SECRET.encode(), marketplace, account, int(time.time()) + ttl)


def field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} in the page"
    return found.group(1)


@pytest.fixture
def signed_in(api: Any) -> Any:
    """``signed_in(account, marketplace="US")``: follow a hand-over link; returns the form page."""

    def go(account: str, marketplace: str = "US") -> Any:
        answer = api.client.get(handover_link(account, marketplace), follow_redirects=False)
        assert answer.status_code == 303, answer.text
        return api.client.get(answer.headers["location"])

    return go
