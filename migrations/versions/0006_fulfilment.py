"""Physical cards: batches handed to the fulfilment vendor, the cards in each, and the
vendor's reports (shipped with a tracking number, lost, damaged).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Written by hand to match ``delivery/channels/physical/models.py`` (a test compares the
two on both engines). No claim code is stored: a card is its ledger id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from giftq.db import BigId, sql_in

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH_STATUSES = ("open", "accepted", "failed")
REPORT_EVENTS = ("shipped", "lost", "damaged")




def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "fulfilment_batches",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("ref", sa.String(40), nullable=False),
        sa.Column("backend", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cards", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("resends", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_fulfilment_batches"),
        sa.UniqueConstraint("ref", name="uq_fulfilment_batches_ref"),
        sa.CheckConstraint(sql_in("status", BATCH_STATUSES), name="ck_fulfilment_batches_status"),
    )
    op.create_table(
        "fulfilment_items",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("batch_id", BigId, nullable=False),
        sa.Column("delivery_id", BigId, nullable=False),
        sa.Column("card_id", BigId, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fulfilment_items"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["fulfilment_batches.id"], name="fk_fulfilment_items_batch_id_fulfilment_batches"
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name="fk_fulfilment_items_delivery_id_deliveries"
        ),
        sa.UniqueConstraint("batch_id", "delivery_id", name="uq_fulfilment_items_batch_id_delivery_id"),
    )
    op.create_index("ix_fulfilment_items_delivery_id", "fulfilment_items", ["delivery_id"])
    op.create_table(
        "fulfilment_reports",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("delivery_id", BigId, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("carrier", sa.String(40), nullable=True),
        sa.Column("tracking_number", sa.String(64), nullable=True),
        sa.Column("tracking_url", sa.String(500), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_fulfilment_reports"),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name="fk_fulfilment_reports_delivery_id_deliveries"
        ),
        sa.CheckConstraint(sql_in("event", REPORT_EVENTS), name="ck_fulfilment_reports_event"),
    )
    op.create_index(
        "ix_fulfilment_reports_delivery_id_event", "fulfilment_reports", ["delivery_id", "event"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_fulfilment_reports_delivery_id_event", table_name="fulfilment_reports")
    op.drop_table("fulfilment_reports")
    op.drop_index("ix_fulfilment_items_delivery_id", table_name="fulfilment_items")
    op.drop_table("fulfilment_items")
    op.drop_table("fulfilment_batches")
