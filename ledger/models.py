"""Ledger tables.

Accounts hold money; a transaction moves it as entries that sum to zero per
currency. Card, wallet and hold accounts keep a ``balance`` column that only the
database changes (a trigger applies each inserted entry) and that a CHECK keeps
at or above zero. Funding and revenue accounts, which every issuance or capture
touches, keep no balance column (NULL): their balance is the sum of their
entries, so concurrent issuers never queue on one hot row.

The database also enforces (see ``ledger/ddl.py``): entries and transactions are
append-only; every transaction sums to zero per currency; an entry's currency is
its account's; a redeemed, voided or expired card never changes status again; one
redemption per card.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from giftq.db import Base, BigId, UTCDateTime, bigid_pk, minor_units, sql_in, utc_datetime, utcnow


class AccountKind(StrEnum):
    FUNDING = "funding"
    CARD = "card"
    WALLET = "wallet"
    HOLD = "hold"
    REVENUE = "revenue"
    BREAKAGE = "breakage"
    """Value of cards that expired (one per marketplace, like funding): kept, never deleted,
    and what a reinstatement takes back."""


BOUNDED_KINDS = frozenset({AccountKind.CARD, AccountKind.WALLET, AccountKind.HOLD})


class CardStatus(StrEnum):
    INACTIVE = "inactive"
    ACTIVE = "active"
    REDEEMED = "redeemed"
    VOIDED = "voided"
    EXPIRED = "expired"


FINAL_CARD_STATUSES = frozenset({CardStatus.REDEEMED, CardStatus.VOIDED, CardStatus.EXPIRED})
"""A card in one of these never changes status again (a database trigger holds it)."""


class CardOrigin(StrEnum):
    """Why the card exists: bought (consumer rules protect its value) or given by the store."""

    PURCHASED = "purchased"
    PROMOTIONAL = "promotional"


class Account(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("kind", "marketplace", "owner"),
        CheckConstraint(sql_in("kind", list(AccountKind)), name="kind"),
        CheckConstraint(
            f"({sql_in('kind', sorted(BOUNDED_KINDS))} AND balance IS NOT NULL AND balance >= 0)"
            f" OR ({sql_in('kind', sorted(set(AccountKind) - BOUNDED_KINDS))} AND balance IS NULL)",
            name="balance_floor",
        ),
    )

    id: Mapped[bigid_pk]
    kind: Mapped[str] = mapped_column(String(16))
    marketplace: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    owner: Mapped[str | None] = mapped_column(String(200))
    """Wallets: the storefront's customer reference. Funding/revenue: ''. Cards/holds: NULL."""
    balance: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[utc_datetime] = mapped_column(default=utcnow)


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"

    id: Mapped[bigid_pk]
    kind: Mapped[str] = mapped_column(String(16))
    posted_at: Mapped[utc_datetime]


class Entry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="nonzero"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
        Index("ix_ledger_entries_transaction_id", "transaction_id"),
    )

    id: Mapped[bigid_pk]
    transaction_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("ledger_transactions.id", deferrable=True, initially="DEFERRED")
    )
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[minor_units]
    posted_at: Mapped[utc_datetime]


class Card(Base):
    __tablename__ = "ledger_cards"
    __table_args__ = (
        CheckConstraint(sql_in("status", list(CardStatus)), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(sql_in("origin", list(CardOrigin)), name="origin"),
        Index("ix_ledger_cards_status_expires_at", "status", "expires_at"),
        Index("uq_ledger_cards_replaces_card_id", "replaces_card_id", unique=True),
    )

    id: Mapped[bigid_pk]
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"), unique=True)
    marketplace: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[minor_units]
    status: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    code_key_id: Mapped[str] = mapped_column(String(32))
    code_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    code_last4: Mapped[str] = mapped_column(String(4))
    reference: Mapped[str | None] = mapped_column(String(200))
    issued_at: Mapped[utc_datetime]
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(
        String(16), default=CardOrigin.PURCHASED.value, server_default=CardOrigin.PURCHASED.value
    )
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """The instant the card stops being redeemable (UTC); None: it does not expire."""
    terms_url: Mapped[str | None] = mapped_column(String(500))
    """Where the card's terms are published, as disclosed to its recipient."""
    expired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """When the expiry job moved its value to breakage."""
    replaces_card_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("ledger_cards.id"))
    """A reinstatement: the expired card whose value this card carries (once per card)."""

    def __repr__(self) -> str:
        return f"Card(id={self.id}, status={self.status}, last4={self.code_last4})"


class Redemption(Base):
    __tablename__ = "ledger_redemptions"

    id: Mapped[bigid_pk]
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_cards.id"), unique=True)
    wallet_account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"))
    transaction_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_transactions.id"))
    redeemed_at: Mapped[utc_datetime]


class Checkout(Base):
    """Balance applied to one storefront order: held, then captured, released, refunded."""

    __tablename__ = "ledger_checkouts"
    __table_args__ = (
        CheckConstraint(
            "held >= 0 AND captured >= 0 AND released >= 0 AND refunded >= 0", name="non_negative"
        ),
        CheckConstraint("captured + released <= held", name="settled_within_held"),
        CheckConstraint("refunded <= captured", name="refund_within_captured"),
    )

    id: Mapped[bigid_pk]
    wallet_account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"), index=True)
    hold_account_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_accounts.id"), unique=True)
    marketplace: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    order_ref: Mapped[str] = mapped_column(String(200))
    order_total: Mapped[minor_units]
    held: Mapped[minor_units]
    captured: Mapped[minor_units] = mapped_column(default=0)
    released: Mapped[minor_units] = mapped_column(default=0)
    refunded: Mapped[minor_units] = mapped_column(default=0)
    created_at: Mapped[utc_datetime]


class IdempotencyRecord(Base):
    """Every write's key, kept forever with a keyed digest of its request and its result."""

    __tablename__ = "ledger_idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    operation: Mapped[str] = mapped_column(String(40))
    request_digest: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, object] | None] = mapped_column(JSON)
    created_at: Mapped[utc_datetime]


class RedemptionFailure(Base):
    """A lookup of a well-formed code that found no card, counted for the lockout.

    ``scope`` is ``account:<owner>`` (across marketplaces) or ``client:<client>``.
    """

    __tablename__ = "ledger_redemption_failures"
    __table_args__ = (Index("ix_ledger_redemption_failures_scope_failed_at", "scope", "failed_at"),)

    id: Mapped[bigid_pk]
    scope: Mapped[str] = mapped_column(String(250))
    reason: Mapped[str] = mapped_column(String(32))
    failed_at: Mapped[utc_datetime]
