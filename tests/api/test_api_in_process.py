"""The app built by ``create_app`` with injected dependencies: Vercel Blob storage, private and public.

The rows are written as the worker writes them; the app reads them, serves the blob through the
SDK with its token (or hands out the public blob URL) and deletes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_support import migrate
from fastapi.testclient import TestClient
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import owner_of
from api.content import parse_range
from api.errors import ApiError
from api.jobs import Live
from api.present import state_of
from api.store import ApiJob, JobStore, JobView, NewJob, new_public_id
from simulator.blob.testing import RunningBlobEmulator, start_blob_emulator
from sora_temporal.db import VideoCatalog, VideoRow, make_engine
from sora_temporal.settings import ApiSettings, Settings
from sora_temporal.storage.base import StorageError, StorageFailure
from sora_temporal.storage.vercel import VercelBlobStorage
from sora_temporal.types import JobProgress, JobStatus, SaveInput, StoredUrls, VideoRequest

KEY = "sk-in-process"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBlobEmulator]:
    with start_blob_emulator(tmp_path_factory.mktemp("blob")) as running:
        yield running


@pytest.mark.integration
@pytest.mark.parametrize("access", ["private", "public"])
def test_a_finished_video_in_vercel_blob_is_served_by_range_and_deleted(
    dev_env: WorkflowEnvironment, emulator: RunningBlobEmulator, tmp_path: Path, access: str
) -> None:
    database_url = f"sqlite:///{tmp_path / 'sora.db'}"
    migrate(database_url)
    storage = VercelBlobStorage(
        emulator.token,
        access="public" if access == "public" else "private",
        api_url=emulator.api_url,
        httpx_client_factory=emulator.httpx_client_factory(),
    )
    settings = Settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        database_url=database_url,
        task_queue=f"tq-{uuid.uuid4()}",
        api=ApiSettings(keys=(KEY,), public_base_url="https://videos.example"),
    )
    app = create_app(settings, storage=storage)
    mp4 = b"\0\0\0\x18ftypmp42" + os.urandom(200_000)
    source = tmp_path / "video.mp4"
    source.write_bytes(mp4)

    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as http:
        stored = asyncio.run(storage.put_file(source, f"videos/wf/{access}.mp4", "video/mp4"))
        video_id = _finished_job(database_url, stored.url, mp4)
        video = http.get(f"/v1/videos/{video_id}").json()
        ranged = http.get(f"/v1/videos/{video_id}/content", headers={"Range": "bytes=1000-1999"})
        deleted = http.delete(f"/v1/videos/{video_id}").json()

    assert video["status"] == "completed" and video["progress"] == 100
    if access == "public":
        assert video["url"] == video["video_url"] == stored.url
    else:
        assert video["url"].startswith(f"https://videos.example/v1/videos/{video_id}/content?token=")
    assert ranged.status_code == 206 and ranged.content == mp4[1000:2000]
    assert ranged.headers["etag"] == f'"{hashlib.sha256(mp4).hexdigest()}"'
    assert deleted == {"id": video_id, "object": "video.deleted", "deleted": True}
    with pytest.raises(StorageError) as gone:
        asyncio.run(storage.stat(f"videos/wf/{access}.mp4"))
    assert gone.value.kind is StorageFailure.OBJECT_MISSING


def _finished_job(database_url: str, url: str, mp4: bytes) -> str:
    """A job as the API records it and its row as the worker saves it on completion."""
    engine = make_engine(database_url)
    try:
        job = (
            JobStore(engine)
            .create(
                NewJob(
                    new_public_id(), owner_of(KEY), None, "f" * 64, "a blob", "sora-2", "1280x720", 4, False
                )
            )
            .job
        )
        VideoCatalog(engine).save(
            SaveInput(
                workflow_id=job.workflow_id,
                status=JobStatus.COMPLETED,
                request=VideoRequest(prompt="a blob", size="1280x720"),
                video_id="video_upstream",
                urls=StoredUrls(video_url=url, video_download_url=url),
                byte_size=len(mp4),
                sha256=hashlib.sha256(mp4).hexdigest(),
            )
        )
        return job.id
    finally:
        engine.dispose()


# --- how a job's state reads in the protocol's words ---------------------------------------------


def _view(status: JobStatus | None, **row: object) -> JobView:
    job = ApiJob(id="video_x", workflow_id="api-x", prompt="p", model="sora-2", size="1280x720", seconds=4)
    job.created_at = datetime.now(UTC)
    if status is None:
        return JobView(job, None)
    video = VideoRow(workflow_id="api-x", status=status.value, progress=row.pop("progress", 0))
    for name, value in row.items():
        setattr(video, name, value)
    return JobView(job, video)


def _live(status: JobStatus, progress: int) -> Live:
    now = datetime.now(UTC)
    return Live(
        progress=JobProgress(
            workflow_id="api-x",
            status=status,
            progress=progress,
            video_id=None,
            started_at=now,
            submitted_at=None,
            completed_at=None,
            polls=0,
            deadline_at=None,
        )
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (JobStatus.TIMED_OUT, "timed_out"),
        (JobStatus.CANCELLED, "cancelled"),
        (JobStatus.FAILED, "moderation_blocked"),
    ],
)
def test_every_unsuccessful_end_is_failed_with_a_code(status: JobStatus, code: str) -> None:
    state = state_of(_view(status, error_code="moderation_blocked", error_message="why"), None)

    assert state.status == "failed"
    assert state.error == {"code": code, "message": "why"}


@pytest.mark.parametrize(
    ("status", "protocol"),
    [
        (JobStatus.SUBMITTING, "queued"),
        (JobStatus.QUEUED, "queued"),
        (JobStatus.IN_PROGRESS, "in_progress"),
        (JobStatus.DOWNLOADING, "in_progress"),
        (JobStatus.UPLOADING, "in_progress"),
    ],
)
def test_running_states_map_to_the_protocols_words(status: JobStatus, protocol: str) -> None:
    assert state_of(_view(JobStatus.QUEUED), _live(status, 40)).status == protocol


def test_completed_is_reported_only_once_the_row_says_so() -> None:
    finishing = state_of(_view(JobStatus.UPLOADING, progress=100), _live(JobStatus.COMPLETED, 100))

    assert (finishing.status, finishing.progress) == ("in_progress", 99)


def test_a_workflow_that_ended_without_a_result_is_failed() -> None:
    state = state_of(_view(JobStatus.IN_PROGRESS), Live(closed=WorkflowExecutionStatus.TERMINATED))

    assert (
        state.status == "failed" and state.error is not None and state.error["code"] == "workflow_terminated"
    )


def test_without_an_answer_from_temporal_the_row_answers() -> None:
    assert state_of(_view(JobStatus.IN_PROGRESS, progress=30), None).progress == 30
    assert state_of(_view(None), None).status == "queued"


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (None, None),
        ("bytes=0-0", (0, 1)),
        ("bytes=5-", (5, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=-1000", (0, 100)),
        ("bytes=90-1000", (90, 100)),
        ("bytes=0-1,5-6", None),
        ("items=0-5", None),
    ],
)
def test_range_headers(header: str | None, span: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == span


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=7-3"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_range(header, 100)

    assert refused.value.status == 416 and refused.value.headers["Content-Range"] == "bytes */100"
