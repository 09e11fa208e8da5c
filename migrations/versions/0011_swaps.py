"""Card swaps between marketplaces: exchange rates as data, one row per swap; and the
purchaser's country on an order (for unclaimed-property reporting).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Written by hand to match ``ledger/swaps/models.py`` and ``delivery/models.py`` (a test
compares them on both engines). The money of a swap moves through the ledger's own
tables (one transaction, zero-sum in each of its two currencies), under the triggers of
migration 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import giftq.db
from giftq.db import BigId

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_exchange_rates",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("from_currency", sa.String(3), nullable=False),
        sa.Column("to_currency", sa.String(3), nullable=False),
        sa.Column("rate", sa.String(40), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("created_at", giftq.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_exchange_rates"),
        sa.UniqueConstraint(
            "from_currency",
            "to_currency",
            "effective_from",
            name="uq_ledger_exchange_rates_pair_day",
        ),
        sa.CheckConstraint("from_currency <> to_currency", name="ck_ledger_exchange_rates_two_currencies"),
    )
    op.create_table(
        "ledger_swaps",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("old_card_id", BigId, nullable=False),
        sa.Column("new_card_id", BigId, nullable=False),
        sa.Column("transaction_id", BigId, nullable=False),
        sa.Column("from_marketplace", sa.String(2), nullable=False),
        sa.Column("to_marketplace", sa.String(2), nullable=False),
        sa.Column("from_currency", sa.String(3), nullable=False),
        sa.Column("to_currency", sa.String(3), nullable=False),
        sa.Column("from_amount", sa.BigInteger(), nullable=False),
        sa.Column("to_amount", sa.BigInteger(), nullable=False),
        sa.Column("rate", sa.String(40), nullable=False),
        sa.Column("rate_date", sa.Date(), nullable=True),
        sa.Column("swapped_at", giftq.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_swaps"),
        sa.ForeignKeyConstraint(
            ["old_card_id"], ["ledger_cards.id"], name="fk_ledger_swaps_old_card_id_ledger_cards"
        ),
        sa.ForeignKeyConstraint(
            ["new_card_id"], ["ledger_cards.id"], name="fk_ledger_swaps_new_card_id_ledger_cards"
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name="fk_ledger_swaps_transaction_id_ledger_transactions",
        ),
        sa.UniqueConstraint("old_card_id", name="uq_ledger_swaps_old_card_id"),
        sa.UniqueConstraint("new_card_id", name="uq_ledger_swaps_new_card_id"),
    )
    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(sa.Column("purchaser_country", sa.String(2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("purchaser_country")
    op.drop_table("ledger_swaps")
    op.drop_table("ledger_exchange_rates")
