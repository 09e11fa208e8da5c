"""Races through the HTTP door: many clients at once against a live ``giftq api`` (uvicorn in
a subprocess, two worker processes) on PostgreSQL, each client a thread with its own
httpx connection, all let loose together by a barrier.

- a redemption storm: every client tries every code; each code has exactly one winner;
- a checkout storm on one wallet: holds never exceed the balance, and the wallet never goes
  below zero;
- replays of one Idempotency-Key from many clients at once: one effect, the same answer.

The Python door's races are in tests/ledger/test_races.py; these add the API's own key
table and answers on top. No retries anywhere: a deadlock or a 500 fails the test.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from delivery import place_order
from giftq import db as giftq_db
from giftq.settings import reset_settings
from ledger import reconcile
from ledger.models import Account
from tests.api.conftest import BASE_ORDER, ApiDriver
from tests.api.live import live_api
from tests.conftest import pg_database
from tests.ledger.conftest import all_at_once

pytestmark = pytest.mark.timeout(240)
URN = "urn:giftq:problem:"


class LiveApi(ApiDriver):
    """The test's view of the database, and many HTTP clients of the live server."""

    def __init__(self, session_maker: sessionmaker[Any], base: str) -> None:
        super().__init__(session_maker)
        self.base = base

    def storm(self, clients: int, work: Callable[[httpx.Client, int], Any]) -> list[Any]:
        """``work(client, i)`` for ``clients`` threads at once, each with its own connection."""
        http = [httpx.Client(base_url=self.base, timeout=60) for _ in range(clients)]
        try:
            return all_at_once(clients, lambda i: work(http[i], i))
        finally:
            for client in http:
                client.close()

    def check_books(self) -> None:
        with self.Session() as session:
            report = reconcile(session)
            negative = session.scalar(select(func.count()).where(Account.balance < 0))
        assert report.ok, report.problems
        assert negative == 0


@pytest.fixture(scope="module")
def _server(
    _pg_admin: Any, _pg_template: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """One database and one server for the module (a start costs seconds); each test uses
    accounts, codes and keys of its own, and counts what it added."""
    tmp = tmp_path_factory.mktemp("live")
    with (
        pg_database(_pg_admin, _pg_template) as url,
        # The PostgreSQL server is shared: at most 2 workers x 2 x 8 connections here.
        live_api(url, tmp / "var", tmp / "server.log", api_workers="2", database_pool_size="8") as base,
    ):
        yield url, base


@pytest.fixture
def live(_server: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveApi]:
    url, base = _server
    monkeypatch.setenv("GIFTQ_DATABASE_URL", url)
    reset_settings()
    giftq_db.reset_engine()
    engine = giftq_db.make_engine(url, pool_size=2)
    yield LiveApi(sessionmaker(engine, expire_on_commit=False), base)
    engine.dispose()
    giftq_db.reset_engine()


def _redeem_body(code: str, account: str, client: int) -> dict[str, Any]:
    return {
        "code": code,
        "account": account,
        "marketplace": "US",
        "client_address": f"198.51.100.{client % 250 + 1}",
    }


def test_40_clients_storm_5_codes_and_each_code_has_one_winner(live: LiveApi) -> None:
    cards = live.issue(1000, 1100, 1200, 1300, 1400)
    token = live.key("redeem")
    before = live.counts()

    def work(http: httpx.Client, client: int) -> list[tuple[int, int, dict[str, Any]]]:
        order = list(cards)
        random.Random(client).shuffle(order)
        answers = []
        for card in order:
            answer = http.post(
                "/v1/redemptions",
                json=_redeem_body(card.code.reveal(), f"customer-{client}", client),
                headers=live.headers(token, f"storm-{client}-{card.card_id}"),
            )
            answers.append((card.card_id, answer.status_code, answer.json()))
        return answers

    results = live.storm(40, work)
    answers = [a for client in results for a in client]
    winners = {card_id: body["account"] for card_id, status, body in answers if status == 200}
    assert Counter(card_id for card_id, status, _ in answers if status == 200) == {
        c.card_id: 1 for c in cards
    }
    refused = [
        (status, body["type"], body["to_this_account"]) for _, status, body in answers if status != 200
    ]
    assert refused == [(409, URN + "already-redeemed", False)] * (40 * 5 - 5)
    with live.Session() as s:
        wallets = dict(
            s.execute(
                select(Account.owner, Account.balance).where(
                    Account.kind == "wallet", Account.owner.startswith("customer-")
                )
            ).all()
        )
    expected: Counter[str] = Counter()
    for card in cards:
        expected[winners[card.card_id]] += card.amount
    assert {owner: bal for owner, bal in wallets.items() if bal} == dict(expected)
    after = live.counts()
    assert after["redemptions"] - before["redemptions"] == 5
    assert after["failures"] == before["failures"]  # "already redeemed" is no guess
    live.check_books()


def test_30_checkouts_storm_one_wallet_and_never_overdraw_it(live: LiveApi) -> None:
    order_total, remainder = 300, 120
    balance = 7 * order_total + remainder
    card = live.issue(balance)[0]
    token = live.key("redeem", "checkout")
    before = live.counts()
    funded = httpx.post(
        f"{live.base}/v1/redemptions",
        json=_redeem_body(card.code.reveal(), "shared", 0),
        headers=live.headers(token),
    )
    assert funded.status_code == 200

    def work(http: httpx.Client, client: int) -> tuple[int, int, int]:
        applied = http.post(
            "/v1/checkouts",
            json={
                "account": "shared",
                "marketplace": "US",
                "order_ref": f"o-{client}",
                "order_total": order_total,
            },
            headers=live.headers(token),
        )
        body = applied.json()
        assert body["held"] + body["remaining_to_pay"] == order_total
        if body["checkout_id"] is not None:
            captured = http.post(
                f"/v1/checkouts/{body['checkout_id']}/capture", json={}, headers=live.headers(token)
            )
            assert captured.status_code == 200, captured.text
            assert captured.json()["captured"] == body["held"]
        return applied.status_code, body["held"], body["remaining_to_pay"]

    results = live.storm(30, work)
    assert Counter(held for _, held, _ in results) == {
        order_total: balance // order_total,
        remainder: 1,
        0: 22,
    }
    assert {status for status, held, _ in results if held} == {201}
    assert {status for status, held, _ in results if not held} == {200}
    assert sum(held for _, held, _ in results) == balance
    answer = httpx.get(
        f"{live.base}/v1/balance",
        params={"account": "shared", "marketplace": "US"},
        headers=live.headers(token),
    )
    assert answer.json()["amount"] == 0
    assert live.counts()["checkouts"] - before["checkouts"] == 8
    live.check_books()


def test_one_order_key_replayed_by_24_threads_over_http_and_python_places_one_order(live: LiveApi) -> None:
    token = live.key("orders")
    before = live.counts()

    def over_http(http: httpx.Client, client: int) -> tuple[int, dict[str, Any], bool]:
        answer = http.post("/v1/orders", json=BASE_ORDER, headers=live.headers(token, "order-storm"))
        return answer.status_code, answer.json(), answer.headers.get("idempotent-replayed") == "true"

    answers = live.storm(24, over_http)
    assert {(status, body["order_id"]) for status, body, _ in answers} == {(201, answers[0][1]["order_id"])}
    assert sum(replayed for _, _, replayed in answers) == 23

    # The Python door: the same race on intake's own key (the API's keys are namespaced
    # per API key, so this is a second order, placed once).
    placed = all_at_once(24, lambda i: place_order(BASE_ORDER, idempotency_key="python-order-storm"))
    assert len({p.order_id for p in placed}) == 1
    assert sum(p.created for p in placed) == 1
    assert live.counts()["orders"] - before["orders"] == 2


def test_one_redemption_key_replayed_by_20_clients_redeems_once_with_one_answer(live: LiveApi) -> None:
    card = live.issue(2500)[0]
    token = live.key("redeem")
    before = live.counts()

    def work(http: httpx.Client, client: int) -> tuple[int, dict[str, Any]]:
        # A retry sends the same body: the key's fingerprint is of the request as sent (the
        # ledger's own key, under it, folds the code's typing; tests/ledger/test_races.py).
        body = _redeem_body(card.code.reveal(), "alice", 7)
        answer = http.post("/v1/redemptions", json=body, headers=live.headers(token, "redeem-storm"))
        return answer.status_code, answer.json()

    answers = live.storm(20, work)
    assert {status for status, _ in answers} == {200}, answers
    assert all(body == answers[0][1] for _, body in answers)
    assert answers[0][1]["balance_after"] == 2500
    assert live.counts()["redemptions"] - before["redemptions"] == 1
    live.check_books()


def test_one_checkout_key_and_one_capture_key_replayed_by_20_clients_hold_and_capture_once(
    live: LiveApi,
) -> None:
    card = live.issue(1000)[0]
    token = live.key("redeem", "checkout")
    before = live.counts()
    assert (
        httpx.post(
            f"{live.base}/v1/redemptions",
            json=_redeem_body(card.code.reveal(), "bob", 1),
            headers=live.headers(token),
        ).status_code
        == 200
    )
    body = {"account": "bob", "marketplace": "US", "order_ref": "o-1", "order_total": 400}

    def apply(http: httpx.Client, client: int) -> tuple[int, dict[str, Any]]:
        answer = http.post("/v1/checkouts", json=body, headers=live.headers(token, "checkout-storm"))
        return answer.status_code, answer.json()

    applied = live.storm(20, apply)
    assert {status for status, _ in applied} == {201}, applied
    assert all(answer == applied[0][1] for _, answer in applied)
    checkout_id = applied[0][1]["checkout_id"]

    def capture(http: httpx.Client, client: int) -> tuple[int, dict[str, Any]]:
        answer = http.post(
            f"/v1/checkouts/{checkout_id}/capture",
            json={"amount": 250},
            headers=live.headers(token, "capture-storm"),
        )
        return answer.status_code, answer.json()

    captured = live.storm(20, capture)
    assert {status for status, _ in captured} == {200}, captured
    assert all(answer == captured[0][1] for _, answer in captured)
    assert (captured[0][1]["captured"], captured[0][1]["outstanding"]) == (250, 150)
    with live.Session() as s:
        wallet = s.scalar(select(Account.balance).where(Account.kind == "wallet", Account.owner == "bob"))
    assert wallet == 600
    assert live.counts()["checkouts"] - before["checkouts"] == 1
    live.check_books()
