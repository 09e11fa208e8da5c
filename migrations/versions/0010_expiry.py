"""Card expiry: each card's origin, expiry and terms; breakage accounts; the expired status;
reinstatement links; the reminder delivery kind and the record of reminders sent.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

- ``ledger_accounts``: kind ``breakage`` (no balance column, like funding).
- ``ledger_cards``: status ``expired``, final like redeemed and voided (the status trigger
  holds it on both engines); ``origin`` (purchased | promotional, default purchased: every
  card issued before this revision was sold), ``expires_at`` (NULL: does not expire, which
  is what every earlier card was promised), ``terms_url``, ``expired_at`` and
  ``replaces_card_id`` (unique: one reinstatement per card).
- ``order_lines.origin``; ``deliveries.kind`` ``expiry_reminder``; ``expiry_reminders``
  (one row per card reminded, so that a reminder is never sent twice).

SQLite cannot alter a CHECK constraint, and rebuilding these tables would drop the
ledger's triggers and trip its foreign keys. Widening a CHECK only allows more, so the
constraint text is edited in place in ``sqlite_schema`` (the procedure SQLite documents
for changing constraints that existing rows satisfy: ``writable_schema`` and a new
``schema_version``, in the migration's transaction). Downgrading narrows them again and
is refused while any row uses what this revision added.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from giftq.db import BigId, sql_in
from migrations.checks import replace_check

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ORIGINS = "origin IN ('purchased', 'promotional')"

# (table, constraint, the CHECK before, the CHECK after): every CHECK this revision widens.
WIDENED = (
    (
        "ledger_accounts",
        "ck_ledger_accounts_kind",
        "kind IN ('funding', 'card', 'wallet', 'hold', 'revenue')",
        "kind IN ('funding', 'card', 'wallet', 'hold', 'revenue', 'breakage')",
    ),
    (
        "ledger_accounts",
        "ck_ledger_accounts_balance_floor",
        "(kind IN ('card', 'hold', 'wallet') AND balance IS NOT NULL AND balance >= 0)"
        " OR (kind IN ('funding', 'revenue') AND balance IS NULL)",
        "(kind IN ('card', 'hold', 'wallet') AND balance IS NOT NULL AND balance >= 0)"
        " OR (kind IN ('breakage', 'funding', 'revenue') AND balance IS NULL)",
    ),
    (
        "ledger_cards",
        "ck_ledger_cards_status",
        "status IN ('inactive', 'active', 'redeemed', 'voided')",
        "status IN ('inactive', 'active', 'redeemed', 'voided', 'expired')",
    ),
)
# Delivery kinds before and after this revision (deliveries has no triggers: a batch copy
# may rebuild it, whatever name an earlier revision left on its CHECK).
DELIVERY_KINDS = ("gift", "confirmation", "delivered_notice", "failed_notice", "cancelled_notice")
EXPIRY_REMINDER = "expiry_reminder"

GUARD_MESSAGE = "a redeemed, voided or expired card, and any card''s code and amount, never change"
POSTGRESQL_GUARD = [
    "DROP TRIGGER IF EXISTS ledger_cards_status_guard ON ledger_cards",
    f"""
    CREATE OR REPLACE FUNCTION ledger_card_status_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'card %: {GUARD_MESSAGE}', OLD.id USING ERRCODE = 'restrict_violation';
    END $$
    """,
    """
    CREATE TRIGGER ledger_cards_status_guard BEFORE UPDATE ON ledger_cards
    FOR EACH ROW WHEN (
        (OLD.status IN ('redeemed', 'voided', 'expired') AND NEW.status <> OLD.status)
        OR NEW.code_hash <> OLD.code_hash OR NEW.amount <> OLD.amount
        OR NEW.replaces_card_id IS DISTINCT FROM OLD.replaces_card_id
    )
    EXECUTE FUNCTION ledger_card_status_guard()
    """,
]
POSTGRESQL_OLD_GUARD = [
    "DROP TRIGGER IF EXISTS ledger_cards_status_guard ON ledger_cards",
    """
    CREATE OR REPLACE FUNCTION ledger_card_status_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
SQLITE_GUARD = [
    "DROP TRIGGER IF EXISTS ledger_cards_status_guard",
    f"""
    CREATE TRIGGER ledger_cards_status_guard BEFORE UPDATE ON ledger_cards
    WHEN (OLD.status IN ('redeemed', 'voided', 'expired') AND NEW.status <> OLD.status)
        OR NEW.code_hash <> OLD.code_hash OR NEW.amount <> OLD.amount
        OR NEW.replaces_card_id IS NOT OLD.replaces_card_id
    BEGIN SELECT RAISE(ABORT, '{GUARD_MESSAGE}'); END
    """,
]
SQLITE_OLD_GUARD = [
    "DROP TRIGGER IF EXISTS ledger_cards_status_guard",
    """
    CREATE TRIGGER ledger_cards_status_guard BEFORE UPDATE ON ledger_cards
    WHEN (OLD.status IN ('redeemed', 'voided') AND NEW.status <> OLD.status)
        OR NEW.code_hash <> OLD.code_hash OR NEW.amount <> OLD.amount
    BEGIN SELECT RAISE(ABORT, 'a redeemed or voided card, and any card''s code and amount, never change'); END
    """,
]

SQLITE_FK_CLAUSE = " CONSTRAINT fk_ledger_cards_replaces_card_id_ledger_cards REFERENCES ledger_cards (id)"
CARD_COLUMNS_SQLITE = [
    "ALTER TABLE ledger_cards ADD COLUMN origin VARCHAR(16) DEFAULT 'purchased' NOT NULL"
    f" CONSTRAINT ck_ledger_cards_origin CHECK ({ORIGINS})",
    "ALTER TABLE ledger_cards ADD COLUMN expires_at DATETIME",
    "ALTER TABLE ledger_cards ADD COLUMN terms_url VARCHAR(500)",
    "ALTER TABLE ledger_cards ADD COLUMN expired_at DATETIME",
    "ALTER TABLE ledger_cards ADD COLUMN replaces_card_id INTEGER" + SQLITE_FK_CLAUSE,
]


def _dialect() -> str:
    return str(op.get_bind().dialect.name)


def _widen(table: str, name: str, old: str, new: str) -> None:
    """Make ``table``'s CHECK ``name`` read ``new`` where it read ``old``."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        op.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" CHECK ({new})')
        return
    _sqlite_rewrite(table, f"CONSTRAINT {name} CHECK ({old})", f"CONSTRAINT {name} CHECK ({new})")


def _sqlite_rewrite(table: str, old: str, new: str) -> None:
    """Replace ``old`` with ``new`` in ``table``'s CREATE statement (see the docstring)."""
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    if sql.count(old) != 1:
        raise RuntimeError(f"{table}: expected {old!r} once in its schema")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (sql.replace(old, new), table)
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    dialect = _dialect()
    for table, name, old, new in WIDENED:
        _widen(table, name, old, new)
    replace_check("deliveries", "kind", sql_in("kind", (*DELIVERY_KINDS, EXPIRY_REMINDER)))
    if dialect == "postgresql":
        op.add_column(
            "ledger_cards", sa.Column("origin", sa.String(16), nullable=False, server_default="purchased")
        )
        op.create_check_constraint("ck_ledger_cards_origin", "ledger_cards", ORIGINS)
        op.add_column("ledger_cards", _when("expires_at", nullable=True))
        op.add_column("ledger_cards", sa.Column("terms_url", sa.String(500), nullable=True))
        op.add_column("ledger_cards", _when("expired_at", nullable=True))
        op.add_column("ledger_cards", sa.Column("replaces_card_id", BigId, nullable=True))
        op.create_foreign_key(
            "fk_ledger_cards_replaces_card_id_ledger_cards",
            "ledger_cards",
            "ledger_cards",
            ["replaces_card_id"],
            ["id"],
        )
        guard = POSTGRESQL_GUARD
    else:
        for statement in CARD_COLUMNS_SQLITE:
            op.execute(statement)
        guard = SQLITE_GUARD
    op.create_index("uq_ledger_cards_replaces_card_id", "ledger_cards", ["replaces_card_id"], unique=True)
    op.create_index("ix_ledger_cards_status_expires_at", "ledger_cards", ["status", "expires_at"])
    for statement in guard:
        op.execute(statement)

    op.add_column(
        "order_lines", sa.Column("origin", sa.String(16), nullable=False, server_default="purchased")
    )
    op.create_table(
        "expiry_reminders",
        sa.Column("card_id", BigId, autoincrement=False, nullable=False),
        sa.Column("delivery_id", BigId, nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("card_id", name="pk_expiry_reminders"),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name="fk_expiry_reminders_delivery_id_deliveries"
        ),
    )


def downgrade() -> None:
    bind = op.get_bind()
    in_use = {
        "expired cards": "SELECT count(*) FROM ledger_cards WHERE status = 'expired'",
        "breakage accounts": "SELECT count(*) FROM ledger_accounts WHERE kind = 'breakage'",
        "expiry reminders": "SELECT count(*) FROM deliveries WHERE kind = 'expiry_reminder'",
    }
    used = [what for what, query in in_use.items() if bind.exec_driver_sql(query).scalar_one()]
    if used:
        raise RuntimeError(f"cannot downgrade below 0010: the database holds {', '.join(used)}")
    op.drop_table("expiry_reminders")
    dialect = _dialect()
    if dialect == "postgresql":
        op.drop_column("order_lines", "origin")
    else:
        op.execute("ALTER TABLE order_lines DROP COLUMN origin")
    op.drop_index("ix_ledger_cards_status_expires_at", table_name="ledger_cards")
    op.drop_index("uq_ledger_cards_replaces_card_id", table_name="ledger_cards")
    for statement in POSTGRESQL_OLD_GUARD if dialect == "postgresql" else SQLITE_OLD_GUARD:
        op.execute(statement)
    if dialect == "postgresql":
        op.drop_constraint("fk_ledger_cards_replaces_card_id_ledger_cards", "ledger_cards", type_="foreignkey")
    else:
        # SQLite drops no column that a foreign key names: take the reference off first.
        _sqlite_rewrite("ledger_cards", SQLITE_FK_CLAUSE, "")
    for column in ("replaces_card_id", "expired_at", "terms_url", "expires_at", "origin"):
        if dialect == "postgresql":
            op.drop_column("ledger_cards", column)
        else:
            op.execute(f"ALTER TABLE ledger_cards DROP COLUMN {column}")
    replace_check("deliveries", "kind", sql_in("kind", DELIVERY_KINDS))
    for table, name, old, new in reversed(WIDENED):
        _widen(table, name, new, old)
