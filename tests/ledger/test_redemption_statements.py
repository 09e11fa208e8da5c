"""What a redemption sends to the database: one statement on PostgreSQL, and keys kept
from before that change still replay."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from giftq.db import utcnow
from ledger import ClaimCode, redeem, redeem_code
from ledger.errors import CodeNotValid, IdempotencyConflict
from ledger.idempotency import digest
from ledger.models import Account, Card, IdempotencyRecord

postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@contextmanager
def wire(engine: Any) -> Iterator[list[str]]:
    """The statements each pooled connection sends between checkout and checkin, as libpq traces them.

    Tracing starts after the pool's liveness ping, so only the work itself is counted.
    """
    sent: list[str] = []
    traces: dict[int, Any] = {}
    files = ExitStack()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        trace = files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - the stack closes it
        dbapi_connection.pgconn.trace(trace.fileno())
        traces[id(dbapi_connection)] = trace

    def checkin(dbapi_connection: Any, record: Any) -> None:
        trace = traces.pop(id(dbapi_connection), None)
        if trace is None:
            return
        dbapi_connection.pgconn.untrace()
        trace.seek(0)
        for line in trace.read().decode(errors="replace").splitlines():
            fields = line.split("\t")
            if len(fields) > 3 and fields[1] == "F" and fields[3] in ("Query", "Parse"):
                sent.append(fields[4].strip())

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    try:
        with files:
            yield sent
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)


@postgresql_only
def test_a_redemption_is_one_statement_on_postgresql(books) -> None:
    card, other = books.issue(1500, 700)
    engine = books.Session.kw["bind"]
    with wire(engine) as sent:
        result = redeem_code(
            books.Session, card.code.reveal(), account="ada", marketplace="US", idempotency_key="r-1"
        )
    assert result.balance_after == 1500
    assert len(sent) == 1 and "giftq_redeem" in sent[0], sent  # no BEGIN, no COMMIT, no ORM statements
    # A refusal is one statement too, and its failure record is kept (committed with it).
    with wire(engine) as sent, pytest.raises(CodeNotValid):
        redeem_code(
            books.Session,
            ClaimCode.generate().reveal(),
            account="ada",
            marketplace="US",
            idempotency_key="r-2",
        )
    assert len(sent) == 1 and "giftq_redeem" in sent[0], sent
    assert books.counts()["failures"] == 1
    assert books.redeem(other.code.reveal(), "ada").balance_after == 2200
    books.reconciled()


def test_a_key_stored_by_card_id_still_replays(books) -> None:
    """Keys stored before redemption keys named the code's lookup hash named the card id."""
    card = books.issue_one(900)
    first = books.redeem(card.code.reveal(), "ada", key="r-old")
    earlier = {"card_id": card.card_id, "account": "ada", "marketplace": "US"}
    books.sql("DELETE FROM ledger_idempotency_keys WHERE key = 'r-old'")
    with books.Session.begin() as session:
        session.execute(
            insert(IdempotencyRecord).values(
                key="r-old",
                operation="redeem",
                request_digest=digest("redeem", earlier),
                result={
                    "card_id": first.card_id,
                    "account": first.account,
                    "marketplace": first.marketplace,
                    "amount": first.amount,
                    "currency": first.currency,
                    "balance_after": first.balance_after,
                    "transaction_id": first.transaction_id,
                    "redeemed_at": first.redeemed_at,
                },
                created_at=utcnow(),
            )
        )
    assert books.redeem(card.code.reveal(), "ada", key="r-old") == first
    with pytest.raises(IdempotencyConflict):
        books.redeem(card.code.reveal(), "bob", key="r-old")


def test_the_callers_copy_of_the_card_and_wallet_is_current_after_a_redemption(books) -> None:
    card = books.issue_one(500)
    books.fund("ada", 100)
    with books.Session.begin() as session:
        row = session.get(Card, card.card_id)
        wallet = session.scalars(select(Account).where(Account.owner == "ada")).one()
        assert (row.status, wallet.balance) == ("active", 100)
        redeem(session, card.code.reveal(), account="ada", marketplace="US", idempotency_key="r-ada")
        assert (row.status, wallet.balance) == ("redeemed", 600)
