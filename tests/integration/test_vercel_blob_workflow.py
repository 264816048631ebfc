"""The workflow storing into Vercel Blob (the real SDK against the emulator), with a worker process."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from simulator.blob.testing import RunningBlobEmulator, start_blob_emulator
from simulator.testing import RunningSimulator
from sora_temporal.types import JobStatus, VideoRequest
from starter import start_video
from support import Deployment, job_result

pytestmark = pytest.mark.integration


@pytest.fixture
def blob(tmp_path: Path) -> Iterator[RunningBlobEmulator]:
    with start_blob_emulator(tmp_path / "blob") as running:
        yield running


@pytest.fixture
def blob_deployment(
    deploy: Callable[..., Deployment], sqlite_url: str, blob: RunningBlobEmulator
) -> Deployment:
    d = deploy(sqlite_url, STORAGE_BACKEND="vercel", BLOB_ACCESS="private", **blob.env())
    d.start_worker()
    return d


def _served(sim: RunningSimulator, video_id: str, variant: str) -> bytes:
    response = httpx.get(
        f"{sim.base_url}/videos/{video_id}/content",
        params={"variant": variant},
        headers={"Authorization": f"Bearer {sim.api_key}"},
    )
    response.raise_for_status()
    return response.content


async def test_video_thumbnail_and_spritesheet_land_in_blob_with_their_urls_saved(
    blob_deployment: Deployment,
    blob: RunningBlobEmulator,
    dev_env: WorkflowEnvironment,
    sim: RunningSimulator,
) -> None:
    workflow_id = f"blob-{uuid.uuid4()}"
    handle = await start_video(
        dev_env.client,
        blob_deployment.settings,
        VideoRequest(prompt="a lantern festival", poll_interval_seconds=1),
        workflow_id,
    )

    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    assert result.video_id
    objects = {o.pathname: o for o in blob.objects()}
    prefix = f"videos/{workflow_id}/{result.video_id}"
    assert set(objects) == {f"{prefix}.mp4", f"{prefix}.thumbnail.webp", f"{prefix}.spritesheet.jpg"}
    assert objects[f"{prefix}.mp4"].content_type == "video/mp4"
    assert objects[f"{prefix}.thumbnail.webp"].content_type == "image/webp"
    assert objects[f"{prefix}.spritesheet.jpg"].content_type == "image/jpeg"
    assert objects[f"{prefix}.mp4"].access == "private"
    assert objects[f"{prefix}.mp4"].sha256 == result.sha256
    assert objects[f"{prefix}.mp4"].size == len(_served(sim, result.video_id, "video"))
    row = blob_deployment.catalog().get(workflow_id)
    assert row is not None and row.status == "completed"
    assert row.blob_url == objects[f"{prefix}.mp4"].url == result.urls.video_url
    assert row.blob_download_url and row.blob_download_url.startswith(row.blob_url)
    assert row.thumbnail_url == objects[f"{prefix}.thumbnail.webp"].url
    assert row.spritesheet_url == objects[f"{prefix}.spritesheet.jpg"].url


async def test_a_store_answering_503_for_a_while_completes_once_it_recovers(
    blob_deployment: Deployment,
    blob: RunningBlobEmulator,
    dev_env: WorkflowEnvironment,
    sim: RunningSimulator,
) -> None:
    blob.fail_next(503, count=5, retry_after=0.5)
    workflow_id = f"blob-{uuid.uuid4()}"
    handle = await start_video(
        dev_env.client,
        blob_deployment.settings,
        VideoRequest(prompt="a storm over the harbour", poll_interval_seconds=1),
        workflow_id,
    )

    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    pathnames = [o.pathname for o in blob.objects()]
    assert len(pathnames) == len(set(pathnames)) == 3
    assert sim.creates("a storm over the harbour") == 1
    row = blob_deployment.catalog().get(workflow_id)
    assert row is not None and row.status == "completed" and row.sha256 == result.sha256
    assert await _attempts(handle, "upload_video") > 1


async def _attempts(handle: WorkflowHandle[Any, Any], activity: str) -> int:
    """The attempt number that finally ran ``activity`` (history records only the last start)."""
    names: dict[int, str] = {}
    attempt = 0
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            names[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        if event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            if names.get(started.scheduled_event_id) == activity:
                attempt = max(attempt, started.attempt)
    return attempt


async def test_a_bad_blob_token_fails_the_job_with_a_clear_error(
    deploy: Callable[..., Deployment],
    sqlite_url: str,
    blob: RunningBlobEmulator,
    dev_env: WorkflowEnvironment,
) -> None:
    wrong = blob.token[:-4] + "beef"
    d = deploy(
        sqlite_url,
        STORAGE_BACKEND="vercel",
        VERCEL_BLOB_API_URL=blob.api_url,
        BLOB_READ_WRITE_TOKEN=wrong,
    )
    d.start_worker()
    workflow_id = f"blob-{uuid.uuid4()}"
    handle = await start_video(
        dev_env.client,
        d.settings,
        VideoRequest(prompt="a closed door", poll_interval_seconds=1),
        workflow_id,
    )

    result = await job_result(handle)

    assert result.status is JobStatus.FAILED
    assert result.error_code == "storage_error"
    assert result.error_message and "token" in result.error_message.lower()
    assert wrong not in (result.error_message or "")
    assert blob.objects() == []
