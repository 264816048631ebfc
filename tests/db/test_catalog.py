"""The videos table: idempotent upserts keyed on workflow_id, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from sora_temporal.db import VideoCatalog
from sora_temporal.types import JobStatus, SaveInput, StoredUrls, VideoRequest
from support import migrated_engine

REQUEST = VideoRequest(prompt="a heron at dawn")


def _catalog(url: str) -> VideoCatalog:
    return VideoCatalog(migrated_engine(url))


def test_a_row_is_written_at_submission_with_the_request(database_url: str) -> None:
    catalog = _catalog(database_url)

    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.SUBMITTING, request=REQUEST))

    row = catalog.get("wf-1")
    assert row is not None
    assert (row.prompt, row.model, row.size, row.seconds, row.status) == (
        "a heron at dawn",
        "sora-2",
        "1280x720",
        4,
        "submitting",
    )


def test_repeated_saves_update_one_row_and_keep_unset_fields(database_url: str) -> None:
    catalog = _catalog(database_url)
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.SUBMITTING, request=REQUEST))
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.QUEUED, video_id="video_1"))
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.IN_PROGRESS, progress=40))
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.IN_PROGRESS, progress=40))

    rows = catalog.recent()

    assert len(rows) == 1
    assert (rows[0].status, rows[0].video_id, rows[0].progress, rows[0].prompt) == (
        "in_progress",
        "video_1",
        40,
        "a heron at dawn",
    )


def test_a_completed_row_carries_urls_size_hash_and_completion_time(database_url: str) -> None:
    catalog = _catalog(database_url)
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.SUBMITTING, request=REQUEST))

    catalog.save(
        SaveInput(
            workflow_id="wf-1",
            status=JobStatus.COMPLETED,
            urls=StoredUrls(video_url="u", video_download_url="d", thumbnail_url="t", spritesheet_url=None),
            byte_size=123,
            sha256="ab" * 32,
        )
    )

    row = catalog.get("wf-1")
    assert row is not None
    assert (row.status, row.progress, row.blob_url, row.blob_download_url, row.thumbnail_url) == (
        "completed",
        100,
        "u",
        "d",
        "t",
    )
    assert row.byte_size == 123 and row.sha256 == "ab" * 32 and row.completed_at is not None


def test_a_terminal_row_is_not_overwritten_by_a_late_non_terminal_save(database_url: str) -> None:
    catalog = _catalog(database_url)
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.SUBMITTING, request=REQUEST))
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.CANCELLED, error_message="stop"))

    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.IN_PROGRESS, progress=80))

    row = catalog.get("wf-1")
    assert row is not None and row.status == "cancelled" and row.progress == 0


def test_a_video_id_owned_by_another_workflow_cannot_be_claimed(database_url: str) -> None:
    catalog = _catalog(database_url)
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.SUBMITTING, request=REQUEST))
    catalog.save(SaveInput(workflow_id="wf-2", status=JobStatus.SUBMITTING, request=REQUEST))

    assert catalog.claim("wf-1", "video_1") is True
    assert catalog.claim("wf-2", "video_1") is False
    assert catalog.claim("wf-1", "video_1") is True  # a retried claim of its own job
    assert catalog.claim("wf-2", "video_2") is True
    assert (catalog.claimed_video("wf-1"), catalog.claimed_video("wf-2")) == ("video_1", "video_2")


def test_a_row_that_holds_a_job_does_not_take_another(database_url: str) -> None:
    catalog = _catalog(database_url)
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.SUBMITTING, request=REQUEST))
    catalog.claim("wf-1", "video_1")

    assert catalog.claim("wf-1", "video_2") is False
    assert catalog.claimed_video("wf-1") == "video_1"


def test_a_claim_before_the_first_save_makes_the_row(database_url: str) -> None:
    catalog = _catalog(database_url)

    assert catalog.claim("wf-1", "video_1") is True

    row = catalog.get("wf-1")
    assert row is not None and (row.video_id, row.status) == ("video_1", "submitting")


def test_the_database_itself_refuses_a_second_owner_of_a_job(database_url: str) -> None:
    catalog = _catalog(database_url)
    catalog.save(SaveInput(workflow_id="wf-1", status=JobStatus.QUEUED, request=REQUEST, video_id="video_1"))

    with pytest.raises(IntegrityError):
        catalog.save(
            SaveInput(workflow_id="wf-2", status=JobStatus.QUEUED, request=REQUEST, video_id="video_1")
        )
