"""A redemption on PostgreSQL: one call of the server-side function ``giftq_redeem``.

The function (migration 0012) does the steps of :mod:`ledger.redemption` in one
round trip and answers with a row of facts; :mod:`ledger.redemption` turns the row
into the same result or typed error as its Python path on SQLite. Through the ORM the
same work was about a dozen statements and 4-7 ms of Python per redemption.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from ledger.sqlutil import database_errors, driver_connection

_CALL = "SELECT * FROM giftq_redeem(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


class Answer(NamedTuple):
    """The function's answer (its OUT parameters, in order)."""

    outcome: str
    """``redeemed``, ``seen`` (the key is stored), ``locked``, ``not_valid`` or ``refused``."""
    card_id: int | None
    wallet_id: int | None
    status: str | None
    card_marketplace: str | None
    last4: str | None
    owner: str | None
    amount: int | None
    currency: str | None
    balance_after: int | None
    transaction_id: int | None
    locked_scope: str | None
    locked_since: dt.datetime | None
    stored_operation: str | None
    stored_digest: str | None
    stored_result: dict[str, Any] | None
    expires_at: dt.datetime | None
    """The card's expiry, with a refusal (a card past it is refused, expired or not yet)."""


def call_redeem(
    session: Session,
    *,
    code_hash: bytes,
    account: str,
    marketplace: str,
    currency: str,
    key: str,
    digest: str,
    scopes: list[tuple[str, int]],
    failure_reason: str,
    now: dt.datetime,
    window: dt.timedelta,
) -> Answer:
    """Run ``giftq_redeem`` in the session's transaction (its writes commit with the caller's)."""
    session.flush()  # anything the caller added goes in before the function reads
    # The driver's own cursor: SQLAlchemy's result wrapping of the 17 columns cost more
    # client CPU than the rest of the call (the statement is prepared by psycopg after
    # its fifth run on a connection).
    # Scalars only: lists go through the driver's slower array dumping.
    (account_scope, account_limit), (client_scope, client_limit) = [*scopes, (None, 0)][:2]
    with database_errors(session, _CALL):
        row = (
            driver_connection(session)
            .execute(
                _CALL,
                (
                    code_hash,
                    account,
                    marketplace,
                    currency,
                    key,
                    digest,
                    account_scope,
                    account_limit,
                    client_scope,
                    client_limit,
                    failure_reason,
                    now,
                    now - window,
                    now.isoformat(),
                ),
            )
            .fetchone()
        )
    assert row is not None
    return Answer(*row)
