"""Ledger tables, and the invariants the database enforces itself.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

PostgreSQL
- ``ledger_entries`` and ``ledger_transactions`` refuse UPDATE, DELETE and TRUNCATE.
- A statement-level trigger (one run per INSERT statement, however many rows)
  refuses entries whose currency is not their account's, refuses entries added to
  a transaction posted by an earlier database transaction, and applies the
  entries to the bounded accounts' ``balance`` (whose CHECK keeps it >= 0).
- A deferred constraint trigger on each new transaction checks, at COMMIT, that
  its entries sum to zero per currency and that it has at least two.
- ``balance`` changes only from inside that trigger (never by a direct UPDATE).
- A redeemed or voided card's status never changes again.

SQLite (no deferred triggers)
- Entries are written first and their transaction row last; inserting the
  transaction row checks the sum (a BEFORE INSERT trigger), and entries for a
  transaction row that already exists are refused. The entry -> transaction
  foreign key is deferred, so entries without a transaction row fail at COMMIT.
- Same append-only, currency, balance and card-status rules, with row triggers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import giftq.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


POSTGRESQL_UP = [
    # The transaction that posts a ledger transaction is the only one that may add its entries.
    "ALTER TABLE ledger_transactions ADD COLUMN created_xid BIGINT NOT NULL DEFAULT txid_current()",
    """
    CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'restrict_violation';
    END $$
    """,
    *[
        f"""
        CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()
        """
        for table in ("ledger_entries", "ledger_transactions")
    ],
    *[
        f"""
        CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()
        """
        for table in ("ledger_entries", "ledger_transactions")
    ],
    """
    CREATE FUNCTION ledger_apply_entries() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (
            SELECT 1 FROM new_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
            WHERE t.created_xid <> txid_current()
        ) THEN
            RAISE EXCEPTION 'ledger entries can only join a transaction posted in the same database transaction'
                USING ERRCODE = 'restrict_violation';
        END IF;
        IF EXISTS (
            SELECT 1 FROM new_entries e JOIN ledger_accounts a ON a.id = e.account_id
            WHERE a.currency <> e.currency
        ) THEN
            RAISE EXCEPTION 'ledger entry currency differs from its account currency'
                USING ERRCODE = 'check_violation';
        END IF;
        UPDATE ledger_accounts a SET balance = a.balance + d.delta
        FROM (SELECT account_id, SUM(amount) AS delta FROM new_entries GROUP BY account_id) d
        WHERE a.id = d.account_id AND a.balance IS NOT NULL;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_apply_entries()
    """,
    """
    CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        entry_count integer;
        bad_currency text;
    BEGIN
        SELECT count(*) INTO entry_count FROM ledger_entries WHERE transaction_id = NEW.id;
        IF entry_count < 2 THEN
            RAISE EXCEPTION 'ledger transaction % has % entries; at least two are required',
                NEW.id, entry_count USING ERRCODE = 'check_violation';
        END IF;
        SELECT currency INTO bad_currency FROM ledger_entries WHERE transaction_id = NEW.id
        GROUP BY currency HAVING SUM(amount) <> 0 LIMIT 1;
        IF bad_currency IS NOT NULL THEN
            RAISE EXCEPTION 'ledger transaction % does not sum to zero in %', NEW.id, bad_currency
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_transactions_balanced AFTER INSERT ON ledger_transactions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()
    """,
    """
    CREATE FUNCTION ledger_balance_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger_accounts.balance changes only by posting entries'
            USING ERRCODE = 'restrict_violation';
    END $$
    """,
    # The WHEN clause, not the function, decides: the entries trigger's own updates (depth 1)
    # then cost no function call at all.
    """
    CREATE TRIGGER ledger_accounts_balance_guard BEFORE UPDATE ON ledger_accounts
    FOR EACH ROW WHEN (pg_trigger_depth() = 0 AND NEW.balance IS DISTINCT FROM OLD.balance)
    EXECUTE FUNCTION ledger_balance_guard()
    """,
    """
    CREATE FUNCTION ledger_card_status_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'card %: a redeemed or voided card, and any card''s code and amount, never change',
            OLD.id USING ERRCODE = 'restrict_violation';
    END $$
    """,
    """
    CREATE TRIGGER ledger_cards_status_guard BEFORE UPDATE ON ledger_cards
    FOR EACH ROW WHEN (
        (OLD.status IN ('redeemed', 'voided') AND NEW.status <> OLD.status)
        OR NEW.code_hash <> OLD.code_hash OR NEW.amount <> OLD.amount
    )
    EXECUTE FUNCTION ledger_card_status_guard()
    """,
]

POSTGRESQL_DOWN = [
    "DROP TRIGGER IF EXISTS ledger_cards_status_guard ON ledger_cards",
    "DROP FUNCTION IF EXISTS ledger_card_status_guard()",
    "DROP TRIGGER IF EXISTS ledger_accounts_balance_guard ON ledger_accounts",
    "DROP FUNCTION IF EXISTS ledger_balance_guard()",
    "DROP TRIGGER IF EXISTS ledger_transactions_balanced ON ledger_transactions",
    "DROP FUNCTION IF EXISTS ledger_check_balanced()",
    "DROP TRIGGER IF EXISTS ledger_entries_apply ON ledger_entries",
    "DROP FUNCTION IF EXISTS ledger_apply_entries()",
    *[
        f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}"
        for table in ("ledger_entries", "ledger_transactions")
        for name in ("append_only", "no_truncate")
    ],
    "DROP FUNCTION IF EXISTS ledger_refuse_change()",
]

SQLITE_UP = [
    *[
        f"""
        CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END
        """
        for table in ("ledger_entries", "ledger_transactions")
        for op in ("UPDATE", "DELETE")
    ],
    """
    CREATE TRIGGER ledger_entries_check BEFORE INSERT ON ledger_entries
    BEGIN
        SELECT RAISE(ABORT, 'ledger entries cannot join a transaction already posted')
        WHERE EXISTS (SELECT 1 FROM ledger_transactions WHERE id = NEW.transaction_id);
        SELECT RAISE(ABORT, 'ledger entry currency differs from its account currency')
        WHERE (SELECT currency FROM ledger_accounts WHERE id = NEW.account_id) IS NOT NEW.currency;
    END
    """,
    """
    CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
    BEGIN
        UPDATE ledger_accounts SET balance = balance + NEW.amount
        WHERE id = NEW.account_id AND balance IS NOT NULL;
    END
    """,
    """
    CREATE TRIGGER ledger_transactions_balanced BEFORE INSERT ON ledger_transactions
    BEGIN
        SELECT RAISE(ABORT, 'ledger transaction needs at least two entries')
        WHERE (SELECT count(*) FROM ledger_entries WHERE transaction_id = NEW.id) < 2;
        SELECT RAISE(ABORT, 'ledger transaction does not sum to zero')
        WHERE EXISTS (
            SELECT 1 FROM ledger_entries WHERE transaction_id = NEW.id
            GROUP BY currency HAVING SUM(amount) <> 0
        );
    END
    """,
    # No trigger depth on SQLite: a balance may only become what its entries sum to.
    """
    CREATE TRIGGER ledger_accounts_balance_guard BEFORE UPDATE OF balance ON ledger_accounts
    WHEN NEW.balance IS NOT (
        SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account_id = NEW.id
    )
    BEGIN SELECT RAISE(ABORT, 'ledger_accounts.balance changes only by posting entries'); END
    """,
    """
    CREATE TRIGGER ledger_cards_status_guard BEFORE UPDATE ON ledger_cards
    WHEN (OLD.status IN ('redeemed', 'voided') AND NEW.status <> OLD.status)
        OR NEW.code_hash <> OLD.code_hash OR NEW.amount <> OLD.amount
    BEGIN SELECT RAISE(ABORT, 'a redeemed or voided card, and any card''s code and amount, never change'); END
    """,
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS ledger_accounts_balance_guard",
    "DROP TRIGGER IF EXISTS ledger_cards_status_guard",
    "DROP TRIGGER IF EXISTS ledger_transactions_balanced",
    "DROP TRIGGER IF EXISTS ledger_entries_apply",
    "DROP TRIGGER IF EXISTS ledger_entries_check",
    *[
        f"DROP TRIGGER IF EXISTS {table}_no_{op}"
        for table in ("ledger_entries", "ledger_transactions")
        for op in ("update", "delete")
    ],
]


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("marketplace", sa.String(length=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("balance", sa.BigInteger(), nullable=True),
        sa.Column("created_at", giftq.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind IN ('card', 'hold', 'wallet') AND balance IS NOT NULL AND balance >= 0) OR (kind IN ('funding', 'revenue') AND balance IS NULL)",
            name=op.f("ck_ledger_accounts_balance_floor"),
        ),
        sa.CheckConstraint(
            "kind IN ('funding', 'card', 'wallet', 'hold', 'revenue')",
            name=op.f("ck_ledger_accounts_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint(
            "kind", "marketplace", "owner", name=op.f("uq_ledger_accounts_kind_marketplace_owner")
        ),
    )
    op.create_table(
        "ledger_idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", giftq.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ledger_idempotency_keys")),
    )
    op.create_table(
        "ledger_redemption_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("scope", sa.String(length=250), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("failed_at", giftq.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_redemption_failures")),
    )
    with op.batch_alter_table("ledger_redemption_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_redemption_failures_scope_failed_at", ["scope", "failed_at"], unique=False
        )

    op.create_table(
        "ledger_transactions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("posted_at", giftq.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
    )
    op.create_table(
        "ledger_cards",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("marketplace", sa.String(length=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("code_key_id", sa.String(length=32), nullable=False),
        sa.Column("code_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("code_last4", sa.String(length=4), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("issued_at", giftq.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", giftq.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("redeemed_at", giftq.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("voided_at", giftq.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('inactive', 'active', 'redeemed', 'voided')",
            name=op.f("ck_ledger_cards_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_cards_amount_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_cards_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_cards")),
        sa.UniqueConstraint("account_id", name=op.f("uq_ledger_cards_account_id")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_ledger_cards_code_hash")),
    )
    op.create_table(
        "ledger_checkouts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "wallet_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("hold_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("marketplace", sa.String(length=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("order_ref", sa.String(length=200), nullable=False),
        sa.Column("order_total", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("captured", sa.BigInteger(), nullable=False),
        sa.Column("released", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("created_at", giftq.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "captured + released <= held", name=op.f("ck_ledger_checkouts_settled_within_held")
        ),
        sa.CheckConstraint(
            "held >= 0 AND captured >= 0 AND released >= 0 AND refunded >= 0",
            name=op.f("ck_ledger_checkouts_non_negative"),
        ),
        sa.CheckConstraint("refunded <= captured", name=op.f("ck_ledger_checkouts_refund_within_captured")),
        sa.ForeignKeyConstraint(
            ["hold_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_checkouts_hold_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["wallet_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_checkouts_wallet_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_checkouts")),
        sa.UniqueConstraint("hold_account_id", name=op.f("uq_ledger_checkouts_hold_account_id")),
    )
    with op.batch_alter_table("ledger_checkouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_checkouts_wallet_account_id"), ["wallet_account_id"], unique=False
        )

    op.create_table(
        "ledger_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("posted_at", giftq.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_entries_nonzero")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_entries_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entries_account_id_id", ["account_id", "id"], unique=False)
        batch_op.create_index("ix_ledger_entries_transaction_id", ["transaction_id"], unique=False)

    op.create_table(
        "ledger_redemptions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "wallet_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("redeemed_at", giftq.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["ledger_cards.id"],
            name=op.f("fk_ledger_redemptions_card_id_ledger_cards"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_redemptions_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["wallet_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_redemptions_wallet_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_redemptions")),
        sa.UniqueConstraint("card_id", name=op.f("uq_ledger_redemptions_card_id")),
    )
    for statement in _invariants("up"):
        op.execute(statement)


def downgrade() -> None:
    for statement in _invariants("down"):
        op.execute(statement)
    op.drop_table("ledger_redemptions")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_transaction_id")
        batch_op.drop_index("ix_ledger_entries_account_id_id")

    op.drop_table("ledger_entries")
    with op.batch_alter_table("ledger_checkouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_checkouts_wallet_account_id"))

    op.drop_table("ledger_checkouts")
    op.drop_table("ledger_cards")
    op.drop_table("ledger_transactions")
    with op.batch_alter_table("ledger_redemption_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_redemption_failures_scope_failed_at")

    op.drop_table("ledger_redemption_failures")
    op.drop_table("ledger_idempotency_keys")
    op.drop_table("ledger_accounts")


def _invariants(direction: str) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"giftq's ledger runs on PostgreSQL and SQLite, not {dialect}")
    return {
        ("postgresql", "up"): POSTGRESQL_UP,
        ("postgresql", "down"): POSTGRESQL_DOWN,
        ("sqlite", "up"): SQLITE_UP,
        ("sqlite", "down"): SQLITE_DOWN,
    }[(dialect, direction)]
