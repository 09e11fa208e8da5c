"""The ops audit log: who did what to which order, delivery or card, when, and what came
of it (done, refused, failed).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Written by hand to match ``delivery/ops/models.py`` (a test compares the two on both
engines). No claim code is stored: a card is its ledger id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OUTCOMES = ("done", "refused", "failed")


def upgrade() -> None:
    op.create_table(
        "ops_audit",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ops_audit"),
        sa.CheckConstraint(
            f"outcome IN ({', '.join(repr(o) for o in OUTCOMES)})", name="ck_ops_audit_outcome"
        ),
    )
    op.create_index("ix_ops_audit_at", "ops_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ops_audit_at", table_name="ops_audit")
    op.drop_table("ops_audit")
