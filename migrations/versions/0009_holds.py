"""Held orders (awaiting payment, in a fraud review) and the per-purchaser count of cards.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Written by hand to match ``delivery/models.py`` (a test compares the two on both engines):
two order statuses, the payment and review states with the payment's deadline, the
purchaser's lower-cased address (indexed with the time, for the cards-per-day limit), and
the notice that tells a purchaser their held order was cancelled. Orders placed before
this revision get their purchaser key from their address.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from giftq.db import sql_in
from migrations.checks import check_of

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ORDER_STATUSES = ("received", "issuing", "issued", "failed", "cancelled")
HELD_STATUSES = ("awaiting_payment", "in_review")
PAYMENT_STATES = ("pending", "confirmed", "declined", "overdue")
REVIEW_STATES = ("pending", "released", "rejected")
DELIVERY_KINDS = ("gift", "confirmation", "delivered_notice", "failed_notice")
CANCELLED_NOTICE = "cancelled_notice"


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f(check_of("orders", "status")), type_="check")
        batch.create_check_constraint("status", sql_in("status", ORDER_STATUSES + HELD_STATUSES))
        batch.add_column(sa.Column("purchaser_key", sa.String(320), nullable=True))
        batch.add_column(sa.Column("payment", sa.String(16), nullable=True))
        batch.add_column(sa.Column("payment_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("review", sa.String(16), nullable=True))
        batch.create_check_constraint("payment", sql_in("payment", PAYMENT_STATES))
        batch.create_check_constraint("review", sql_in("review", REVIEW_STATES))
        batch.create_index("ix_orders_purchaser_key_created_at", ["purchaser_key", "created_at"])
    op.execute(sa.text("UPDATE orders SET purchaser_key = lower(purchaser_email)"))
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint(op.f(check_of("deliveries", "kind")), type_="check")
        batch.create_check_constraint("kind", sql_in("kind", (*DELIVERY_KINDS, CANCELLED_NOTICE)))


def downgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE kind = :kind)"
        ).bindparams(kind=CANCELLED_NOTICE)
    )
    op.execute(sa.text("DELETE FROM deliveries WHERE kind = :kind").bindparams(kind=CANCELLED_NOTICE))
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint(op.f(check_of("deliveries", "kind")), type_="check")
        batch.create_check_constraint("kind", sql_in("kind", DELIVERY_KINDS))
    # A held order has nothing issued: going back, it is one that was cancelled.
    op.execute(
        sa.text("UPDATE orders SET status = 'cancelled' WHERE status IN ('awaiting_payment', 'in_review')")
    )
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_purchaser_key_created_at")
        batch.drop_constraint(op.f(check_of("orders", "review")), type_="check")
        batch.drop_constraint(op.f(check_of("orders", "payment")), type_="check")
        batch.drop_column("review")
        batch.drop_column("payment_due_at")
        batch.drop_column("payment")
        batch.drop_column("purchaser_key")
        batch.drop_constraint(op.f(check_of("orders", "status")), type_="check")
        batch.create_check_constraint("status", sql_in("status", ORDER_STATUSES))
