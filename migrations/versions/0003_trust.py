"""Readers' languages: the purchaser's on the order, the recipient's on each line; and
a count of possible duplicate sends per delivery.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Both nullable: None means "the marketplace's language", which is what every order
placed before this revision got.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("purchaser_locale", sa.String(20), nullable=True))
    with op.batch_alter_table("order_lines") as batch:
        batch.add_column(sa.Column("recipient_locale", sa.String(20), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("possible_duplicates", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("possible_duplicates")
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("recipient_locale")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("purchaser_locale")
