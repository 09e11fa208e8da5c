"""Download links of printable cards.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Written by hand to match ``delivery/channels/printable/models.py`` (a test compares the
two on both engines): one row per link, naming the delivery it fetches, when it expires,
how many downloads it allows and how many were made. No claim code, no token.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from giftq.db import BigId

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None



def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "printable_links",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("delivery_id", BigId, nullable=False),
        _when("expires_at"),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_printable_links"),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name="fk_printable_links_delivery_id_deliveries"
        ),
        sa.CheckConstraint("max_uses > 0", name="ck_printable_links_max_uses_positive"),
        sa.CheckConstraint("uses >= 0 AND uses <= max_uses", name="ck_printable_links_uses_in_range"),
    )
    op.create_index("ix_printable_links_delivery_id", "printable_links", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_printable_links_delivery_id", table_name="printable_links")
    op.drop_table("printable_links")
