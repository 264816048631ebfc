"""A Sora video id belongs to at most one row: ``ix_videos_video_id`` becomes unique ``uq_videos_video_id``.

Refused, with the rows named, when two rows already share a video id: which workflow owns the job
is a decision for a person (clear ``video_id`` on the others, then migrate again). Written to also
finish a database where the unique index was made before migrations existed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _indexes() -> set[str]:
    return {str(index["name"]) for index in sa.inspect(op.get_bind()).get_indexes("videos")}


def upgrade() -> None:
    shared = op.get_bind().execute(
        sa.text(
            "SELECT video_id, COUNT(*) FROM videos WHERE video_id IS NOT NULL "
            "GROUP BY video_id HAVING COUNT(*) > 1 ORDER BY video_id"
        )
    )
    duplicates = [f"{video_id} ({count} rows)" for video_id, count in shared]
    if duplicates:
        raise RuntimeError(
            "cannot make video_id unique: these Sora jobs are claimed by more than one row: "
            + ", ".join(duplicates[:20])
            + "; decide which workflow owns each job, set video_id to NULL on the other rows, and migrate again"
        )
    existing = _indexes()
    if "ix_videos_video_id" in existing:
        op.drop_index("ix_videos_video_id", table_name="videos")
    if "uq_videos_video_id" not in existing:
        op.create_index("uq_videos_video_id", "videos", ["video_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_videos_video_id", table_name="videos")
    op.create_index("ix_videos_video_id", "videos", ["video_id"], unique=False)
