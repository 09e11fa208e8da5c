"""The pages in a real browser: headless Chromium (Debian's) against a live ``giftq api``
(uvicorn in a subprocess, on the test's PostgreSQL database). A customer handed over by
the store arrives from a QR code's link, finds the code filled in, adds it and sees the
new balance; then meets each refusal; screenshots at 375 and 1280 px go to the test's
tmp dir. The server's log is read afterwards: no code in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import sessionmaker

from giftq.db import make_engine
from ledger import CardSpec, issue_cards, redeem, void_card
from ledger.codes import text as code_text
from tests.api.live import live_api
from tests.api.pages.conftest import SECRET, handover_link

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
def live_server(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log_path = tmp_path / "server.log"
    with live_api(
        pg_url, tmp_path / "var", log_path, handover_secret=SECRET, redeem_max_failures_per_account="3"
    ) as base:
        yield base, log_path


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _unknown_code(i: int) -> str:
    body = f"7K3MQ9RTZX2BPW{i}N".replace("0", "A").replace("1", "B")
    return code_text.display(body + code_text.check_symbol(body))


def test_a_recipient_redeems_in_a_real_browser(
    live_server: tuple[str, Path], browser: Any, pg_url: str, tmp_path: Path
) -> None:
    base, log_path = live_server
    engine = make_engine(pg_url)
    Session = sessionmaker(engine, expire_on_commit=False)
    with Session.begin() as s:
        gift, spare, taken, uk = issue_cards(
            s,
            [CardSpec("US", 2500), CardSpec("US", 1000), CardSpec("US", 700), CardSpec("UK", 900)],
            idempotency_key="browser-issue",
        )
        (inactive,) = issue_cards(s, [CardSpec("US", 5000, active=False)], idempotency_key="browser-inactive")
        (voided,) = issue_cards(s, [CardSpec("US", 800)], idempotency_key="browser-voided")
        void_card(s, voided.card_id, idempotency_key="browser-void")
    with Session.begin() as s:
        redeem(
            s, taken.code.reveal(), account="someone-else", marketplace="US", idempotency_key="browser-taken"
        )
    engine.dispose()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    codes = [c.code.reveal() for c in (gift, spare, taken, uk, inactive, voided)]

    for width, height in ((375, 740), (1280, 900)):
        page = browser.new_page(viewport={"width": width, "height": height})

        def snap(name: str, page: Any = page, width: int = width) -> None:
            page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} scrolls sideways"

        page.goto(f"{base}/us/redeem")
        assert page.get_by_role("heading", name="Redeem a gift card").is_visible()
        assert page.get_by_role("link", name="Sign in at the store").count() == 0  # no store URL set
        snap("signed-out")
        page.goto(f"{base}/us/balance")
        snap("balance-form")
        if width != 375:
            page.close()
            continue

        # Arriving from a QR code: the store hands over, the fragment carries the code.
        page.goto(handover_link("browser-customer", base=base) + f"#code={codes[0]}")
        assert page.url == f"{base}/us/redeem"  # no signed link and no code in the address bar
        code_box = page.get_by_role("textbox", name="Gift card code")
        assert code_box.input_value() == codes[0]
        assert page.get_by_text("Your balance: $0.00").is_visible()
        snap("form")
        page.get_by_role("button", name="Add to my balance").click()
        assert page.get_by_text("We added $25.00 to your balance.").is_visible()
        assert page.get_by_text("Your balance is now $25.00.").is_visible()
        snap("added")

        # Each refusal, typed by keyboard: the error is announced with the field.
        mistyped = codes[1][:-1] + ("A" if codes[1][-1] != "A" else "B")
        cases = [
            (mistyped, "Check each character"),
            (codes[0], "already added to your balance"),
            (codes[2], "already redeemed on another account"),
            (codes[3], "for our United Kingdom store"),
            (codes[4], "not active yet"),
            (codes[5], "was cancelled"),
            (_unknown_code(0), "not a valid gift card code"),
            (_unknown_code(1), "not a valid gift card code"),
            (_unknown_code(2), "not a valid gift card code"),
            (codes[1], "Too many attempts. For your security, try again in 15 minutes."),
        ]
        for typed, words in cases:
            page.goto(f"{base}/us/redeem")
            box = page.get_by_role("textbox", name="Gift card code")
            box.focus()
            box.press("Control+A")
            page.keyboard.type(typed)
            page.keyboard.press("Enter")
            error = page.locator("#code-error")
            error.wait_for()
            assert words in error.inner_text(), (typed, error.inner_text())
            box = page.get_by_role("textbox", name="Gift card code")
            assert box.get_attribute("aria-invalid") == "true"
            assert "code-error" in (box.get_attribute("aria-describedby") or "")
            assert box.input_value() == typed  # kept by the browser, not sent back by the server
            assert typed not in page.content().replace(f'value="{typed}"', "")
            if "United Kingdom" in words:
                snap("wrong-marketplace")
            if "Too many" in words:
                snap("locked")

        # Keyboard only: Tab from the top reaches the field, then the button.
        page.goto(f"{base}/us/balance")
        focused = []
        for _ in range(6):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
        assert "code" in focused and "BUTTON" in focused[focused.index("code") :]
        page.close()

    log = log_path.read_text()
    assert "GET /us/redeem 200" in log and "POST /us/redeem 422" in log
    for code in codes:
        assert code not in log and code.replace("-", "") not in log
    assert len(list(shots.glob("*.png"))) >= 7
    print(f"screenshots in {shots}")
