"""Every job priced, budgets enforced before spending: ``videos.estimated_cost_usd``, the budget ledger.

``budget_reservations`` holds one reservation per workflow (``held`` or ``released``);
``budget_days`` the reserved total per account and UTC day, the counter a conditional update guards
(``sora_temporal/budget.py``). Jobs from before this revision have no estimate and no reservation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("estimated_cost_usd", sa.Float(), nullable=True))
    op.create_table(
        "budget_reservations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id"),
    )
    op.create_index("ix_budget_reservations_day", "budget_reservations", ["day"], unique=False)
    op.create_table(
        "budget_days",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("spent_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "day"),
    )


def downgrade() -> None:
    op.drop_table("budget_days")
    op.drop_index("ix_budget_reservations_day", table_name="budget_reservations")
    op.drop_table("budget_reservations")
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("estimated_cost_usd")
