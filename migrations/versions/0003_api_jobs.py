"""The ``api`` process's jobs: ``api_jobs`` (its own video ids, their owners and idempotency keys).

Exactly the model in ``api/store.py``. Before this revision the ``api`` process made the table
itself (``create_all``) on first start; such a table is the same one, and is kept with its rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if "api_jobs" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "api_jobs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("size", sa.String(length=32), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("has_reference", sa.Boolean(), nullable=False),
        sa.Column("content_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("workflow_id"),
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_api_jobs_owner_idempotency_key"),
    )
    op.create_index("ix_api_jobs_owner_seq", "api_jobs", ["owner", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_jobs_owner_seq", table_name="api_jobs")
    op.drop_table("api_jobs")
