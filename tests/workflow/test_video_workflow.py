"""VideoGenerationWorkflow on the time-skipping test server.

Timers skip; activities are the real ones, talking over loopback to the Sora simulator, a SQLite file
and a local storage directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from sora_temporal.references import fit_local_file, hand_over
from sora_temporal.types import JobProgress, JobStatus, VideoResult
from support import Stack, Start, job_result
from workflows.video import VideoGenerationWorkflow


async def _scheduled_times(client: Client, handle: WorkflowHandle[Any, Any], activity: str) -> list[float]:
    times = []
    task_started = 0.0
    async for event in client.get_workflow_handle(
        handle.id, run_id=handle.first_execution_run_id
    ).fetch_history_events():
        at = event.event_time.ToDatetime().timestamp()
        attributes = event.activity_task_scheduled_event_attributes
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            task_started = at
        elif (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and attributes.activity_type.name == activity
        ):
            times.append(at)
        elif (
            event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and activity.encode() in event.marker_recorded_event_attributes.SerializeToString()
        ):
            # A local activity's marker (its details name the activity) is written when it returned;
            # it started with the workflow task that ran it.
            times.append(task_started)
    return times


async def _wait_until_polling(handle: WorkflowHandle[Any, VideoResult]) -> JobProgress:
    """Queries don't advance skipped time, so the workflow is caught in its first wait."""
    for _ in range(200):
        state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
        if state.video_id is not None and state.status in (JobStatus.QUEUED, JobStatus.IN_PROGRESS):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError("the workflow never submitted its job")


async def test_a_prompt_becomes_a_stored_video_with_a_completed_row(start: Start, stack: Stack) -> None:
    handle = await start("a red fox in fresh snow")

    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    assert result.urls.video_url and result.urls.thumbnail_url and result.urls.spritesheet_url
    stored = next(stack.storage_dir.rglob("*.mp4"))
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == result.sha256
    assert stored.stat().st_size == result.byte_size
    row = stack.catalog.get(handle.id)
    assert row is not None
    assert (row.status, row.video_id, row.progress, row.sha256) == (
        "completed",
        result.video_id,
        100,
        result.sha256,
    )
    assert row.blob_url == result.urls.video_url and row.completed_at is not None


async def test_status_checks_are_spaced_by_the_poll_interval(
    start: Start, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start("a slow sunrise [sim:duration=100]", poll_interval_seconds=5, deadline_seconds=3600)

    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    times = await _scheduled_times(time_skipping_env.client, handle, "check_video_status")
    assert len(times) >= 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(5.0 <= gap < 6.0 for gap in gaps), str([round(g, 2) for g in gaps])


async def test_a_job_that_never_finishes_times_out_at_the_deadline(start: Start, stack: Stack) -> None:
    handle = await start("a clock with no hands [sim:never]", poll_interval_seconds=5, deadline_seconds=60)

    result = await job_result(handle)

    assert result.status is JobStatus.TIMED_OUT
    assert result.remote_may_be_running is True
    row = stack.catalog.get(handle.id)
    assert row is not None and row.status == "timed_out" and row.remote_may_be_running
    described = await handle.describe()
    assert described.close_time and described.start_time
    elapsed = (described.close_time - described.start_time).total_seconds()
    assert 60 <= elapsed < 70


async def test_a_failed_sora_job_records_its_code_and_message(start: Start, stack: Stack) -> None:
    handle = await start("something forbidden [sim:fail:moderation_blocked]")

    result = await job_result(handle)

    assert result.status is JobStatus.FAILED
    assert result.error_code == "moderation_blocked"
    assert result.error_message
    row = stack.catalog.get(handle.id)
    assert row is not None
    assert (row.status, row.error_code, row.error_message) == (
        "failed",
        "moderation_blocked",
        result.error_message,
    )
    assert row.remote_may_be_running is False


async def test_a_cancel_signal_ends_the_wait_at_once(start: Start, stack: Stack) -> None:
    handle = await start("a very long take [sim:never]", poll_interval_seconds=300, deadline_seconds=7200)
    await _wait_until_polling(handle)

    await handle.signal(VideoGenerationWorkflow.cancel, "changed my mind")
    result = await job_result(handle)

    assert result.status is JobStatus.CANCELLED
    assert result.error_message == "changed my mind"
    assert result.remote_may_be_running is True  # the API has no cancel call; the job runs on
    described = await handle.describe()
    assert described.close_time and described.start_time
    assert (described.close_time - described.start_time) < timedelta(minutes=59)
    row = stack.catalog.get(handle.id)
    assert row is not None and row.status == "cancelled" and row.remote_may_be_running


async def test_a_temporal_cancellation_is_recorded_as_cancelled(start: Start, stack: Stack) -> None:
    handle = await start("a very long take [sim:never]", poll_interval_seconds=300, deadline_seconds=7200)
    await _wait_until_polling(handle)

    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()

    assert isinstance(failure.value.cause, CancelledError)
    row = stack.catalog.get(handle.id)
    assert row is not None and row.status == "cancelled"


async def test_continue_as_new_carries_the_job_through_to_completion(
    start: Start, stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start(
        "an hourglass [sim:duration=100]", poll_interval_seconds=5, deadline_seconds=3600, max_polls_per_run=2
    )

    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    assert stack.sim.creates("an hourglass") == 1
    first_run = time_skipping_env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    history = await first_run.fetch_history()
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    row = stack.catalog.get(handle.id)
    assert row is not None and row.status == "completed" and row.video_id == result.video_id


async def test_the_progress_query_spans_every_run_of_a_continued_job(
    start: Start, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start(
        "a melting candle [sim:duration=100]",
        poll_interval_seconds=5,
        deadline_seconds=3600,
        max_polls_per_run=2,
    )
    await handle.result()

    state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)

    first_run = await time_skipping_env.client.get_workflow_handle(
        handle.id, run_id=handle.first_execution_run_id
    ).describe()
    assert abs((state.started_at - first_run.start_time).total_seconds()) < 1
    assert state.polls > 2  # counted across runs, not reset by continue-as-new
    assert state.status is JobStatus.COMPLETED and state.progress == 100


async def test_the_workflow_replays_deterministically(
    start: Start, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start("a lighthouse in a storm")
    await handle.result()

    history = await handle.fetch_history()

    await Replayer(workflows=[VideoGenerationWorkflow]).replay_workflow(history)


async def test_an_invalid_request_fails_before_anything_is_sent(start: Start, stack: Stack) -> None:
    handle = await start("a cat", size="640x480")

    result = await job_result(handle)

    assert result.status is JobStatus.FAILED
    assert result.error_code == "invalid_request"
    assert "640x480" in (result.error_message or "")
    assert stack.sim.stats()["requests"].get("create", 0) == 0


def _tmp_image(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "ref.png"
    Image.new("RGBA", (400, 300), (10, 200, 30, 128)).save(path)
    return path


async def test_a_reference_image_is_fitted_to_the_requested_size(
    start: Start, stack: Stack, tmp_path: Path
) -> None:
    # As the starter hands it over: read and fitted where the user is, the bytes in the input.
    fitted = fit_local_file(str(_tmp_image(tmp_path)), "1280x720", max_bytes=10_000_000)
    handle = await start("a meadow", reference=await hand_over(fitted, storage=None))

    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    (job,) = stack.sim.jobs()
    assert job["has_input_reference"] is True
    assert job["input_reference_size"] == [1280, 720]
