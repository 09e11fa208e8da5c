"""Delivery tables: orders (the outbox), order lines, deliveries, the attempts log and
suppressed addresses.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Written by hand to match ``delivery/models.py`` (a test compares the two on both
engines). Status columns are strings with CHECK constraints rather than native enums,
so that adding a state later is one constraint swap on either engine.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ORDER_STATUSES = ("received", "issuing", "issued", "failed", "cancelled")
CHANNELS = ("email", "sms", "printable", "physical")
DELIVERY_STATUSES = (
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "failed_retryable",
    "failed_permanent",
    "cancelled",
    "bounced",
)
DELIVERY_KINDS = ("gift", "confirmation", "delivered_notice", "failed_notice")
ATTEMPT_OUTCOMES = ("accepted", "retryable", "permanent", "suppressed", "interrupted")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _id() -> sa.types.TypeEngine[int]:
    # SQLite auto-increments only INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("purchaser_name", sa.String(100), nullable=False),
        sa.Column("purchaser_email", sa.String(320), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("idempotency_key", name="uq_orders_idempotency_key"),
        sa.CheckConstraint(_in("status", ORDER_STATUSES), name="ck_orders_status"),
    )
    op.create_index("ix_orders_status_updated_at", "orders", ["status", "updated_at"])

    op.create_table(
        "order_lines",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("order_id", _id(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("marketplace", sa.String(2), nullable=False),
        sa.Column("design", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("recipient_name", sa.String(100), nullable=False),
        sa.Column("recipient_email", sa.String(320), nullable=True),
        sa.Column("recipient_phone", sa.String(16), nullable=True),
        sa.Column("recipient_address", sa.JSON(), nullable=True),
        sa.Column("send_at_local", sa.String(19), nullable=True),
        sa.Column("send_at_zone", sa.String(64), nullable=True),
        _when("due_at"),
        sa.Column("card_id", _id(), nullable=True),
        sa.Column("card_last4", sa.String(4), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_order_lines"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_lines_order_id_orders"),
        sa.UniqueConstraint("order_id", "position", name="uq_order_lines_order_id_position"),
        sa.CheckConstraint(_in("channel", CHANNELS), name="ck_order_lines_channel"),
        sa.CheckConstraint("amount > 0", name="ck_order_lines_amount_positive"),
    )
    op.create_index("ix_order_lines_card_id", "order_lines", ["card_id"])

    op.create_table(
        "deliveries",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("order_id", _id(), nullable=False),
        sa.Column("line_id", _id(), nullable=True),
        sa.Column("card_id", _id(), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("to_name", sa.String(100), nullable=False),
        sa.Column("to_address", sa.String(320), nullable=True),
        _when("due_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("parent_id", _id(), nullable=True),
        _when("sent_at", nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_deliveries_order_id_orders"),
        sa.ForeignKeyConstraint(["line_id"], ["order_lines.id"], name="fk_deliveries_line_id_order_lines"),
        sa.ForeignKeyConstraint(["parent_id"], ["deliveries.id"], name="fk_deliveries_parent_id_deliveries"),
        sa.CheckConstraint(_in("status", DELIVERY_STATUSES), name="ck_deliveries_status"),
        sa.CheckConstraint(_in("kind", DELIVERY_KINDS), name="ck_deliveries_kind"),
        sa.CheckConstraint(_in("channel", CHANNELS), name="ck_deliveries_channel"),
    )
    op.create_index("ix_deliveries_order_id", "deliveries", ["order_id"])
    op.create_index("ix_deliveries_line_id", "deliveries", ["line_id"])
    op.create_index("ix_deliveries_card_id", "deliveries", ["card_id"])
    op.create_index("ix_deliveries_status_due_at", "deliveries", ["status", "due_at"])
    op.create_index("ix_deliveries_status_updated_at", "deliveries", ["status", "updated_at"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", _id(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=False),
        _when("started_at"),
        _when("finished_at"),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name="fk_delivery_attempts_delivery_id_deliveries"
        ),
        sa.CheckConstraint(_in("outcome", ATTEMPT_OUTCOMES), name="ck_delivery_attempts_outcome"),
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])

    op.create_table(
        "suppressed_addresses",
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("delivery_id", _id(), nullable=True),
        _when("created_at"),
        sa.PrimaryKeyConstraint("address", name="pk_suppressed_addresses"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name="fk_suppressed_addresses_delivery_id_deliveries",
        ),
    )


def downgrade() -> None:
    op.drop_table("suppressed_addresses")
    op.drop_index("ix_delivery_attempts_delivery_id", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    for index in (
        "ix_deliveries_status_updated_at",
        "ix_deliveries_status_due_at",
        "ix_deliveries_card_id",
        "ix_deliveries_line_id",
        "ix_deliveries_order_id",
    ):
        op.drop_index(index, table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_order_lines_card_id", table_name="order_lines")
    op.drop_table("order_lines")
    op.drop_index("ix_orders_status_updated_at", table_name="orders")
    op.drop_table("orders")
