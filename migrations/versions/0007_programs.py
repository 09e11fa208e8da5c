"""Birthday programs: a yearly gift per program, and one placement row per program and year.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Written by hand to match ``delivery/programs/models.py`` (a test compares the two on both
engines).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from giftq.db import BigId, sql_in

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PROGRAM_STATUSES = ("active", "paused", "ended")
PROGRAM_CHANNELS = ("email", "sms")
SKIP_REASONS = ("too_late", "paused", "refused")




def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "birthday_programs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(16), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("marketplace", sa.String(2), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("design", sa.String(32), nullable=False),
        sa.Column("message_template", sa.Text(), nullable=False),
        sa.Column("send_time", sa.String(5), nullable=False),
        sa.Column("purchaser_name", sa.String(100), nullable=False),
        sa.Column("purchaser_email", sa.String(320), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("next_year", sa.Integer(), nullable=False),
        _when("next_place_at"),
        sa.Column("import_key", sa.String(200), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_birthday_programs"),
        sa.UniqueConstraint("import_key", name="uq_birthday_programs_import_key"),
        sa.CheckConstraint(sql_in("status", PROGRAM_STATUSES), name="ck_birthday_programs_status"),
        sa.CheckConstraint(sql_in("channel", PROGRAM_CHANNELS), name="ck_birthday_programs_channel"),
        sa.CheckConstraint("amount > 0", name="ck_birthday_programs_amount_positive"),
    )
    op.create_index(
        "ix_birthday_programs_status_next_place_at", "birthday_programs", ["status", "next_place_at"]
    )
    op.create_table(
        "program_placements",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("program_id", BigId, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("order_id", BigId, nullable=True),
        sa.Column("skip_reason", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        _when("send_at"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_program_placements"),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["birthday_programs.id"],
            name="fk_program_placements_program_id_birthday_programs",
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_program_placements_order_id_orders"),
        sa.UniqueConstraint("program_id", "year", name="uq_program_placements_program_id_year"),
        sa.CheckConstraint(
            "(order_id IS NOT NULL AND skip_reason IS NULL)"
            " OR (order_id IS NULL AND skip_reason IS NOT NULL)",
            name="ck_program_placements_placed_or_skipped",
        ),
        sa.CheckConstraint(sql_in("skip_reason", SKIP_REASONS), name="ck_program_placements_skip_reason"),
    )
    op.create_index(
        "ix_program_placements_skip_reason_created_at", "program_placements", ["skip_reason", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_program_placements_skip_reason_created_at", table_name="program_placements")
    op.drop_table("program_placements")
    op.drop_index("ix_birthday_programs_status_next_place_at", table_name="birthday_programs")
    op.drop_table("birthday_programs")
