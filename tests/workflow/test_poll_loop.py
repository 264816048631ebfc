"""The poll loop: status checks, the deadline, and webhook events that wake it.

On the time-skipping server, with the Sora simulator on the server's clock (``conftest.py``): a
``[sim:duration=100]`` job finishes 50 s after it is created.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from sora_temporal.types import (
    JobProgress,
    JobStatus,
    RemoteEvent,
    VideoResult,
    VideoWorkflowInput,
)
from support import Stack, Start, job_result
from workflows.video import VideoGenerationWorkflow


async def _polls_reach(handle: WorkflowHandle[Any, VideoResult], count: int) -> JobProgress:
    """Queries don't advance skipped time: wait (in real time) until ``count`` status checks were made."""
    for _ in range(400):
        state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
        if state.polls >= count:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"the workflow never made {count} status checks")


async def _submitted(handle: WorkflowHandle[Any, VideoResult]) -> None:
    """Until the job was created and the workflow waits for its first status check."""
    for _ in range(400):
        state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
        if state.video_id is not None and state.status is JobStatus.QUEUED:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the workflow never submitted its job: {state}")


async def _elapsed(handle: WorkflowHandle[Any, VideoResult]) -> float:
    described = await handle.describe()
    assert described.close_time and described.start_time
    return (described.close_time - described.start_time).total_seconds()


async def test_a_refused_status_check_fails_the_job_without_retrying(start: Start, stack: Stack) -> None:
    stack.sim.add_fault("retrieve", "error", status=401)

    handle = await start("a locked door", poll_interval_seconds=5)
    result = await job_result(handle)

    assert result.status is JobStatus.FAILED
    assert stack.sim.stats()["requests"]["retrieve"] == 1


async def test_a_webhook_event_wakes_the_wait_and_one_status_check_finishes_the_job(
    start: Start, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start(
        "a paper boat [sim:duration=100]", poll_interval_seconds=5, webhook_fallback_seconds=3600
    )
    await _submitted(handle)
    await time_skipping_env.sleep(60)  # the job is done now; no check has been made

    await handle.signal(VideoGenerationWorkflow.remote_event, RemoteEvent("evt_1", "video.completed"))
    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
    assert state.polls == 1
    assert await _elapsed(handle) < 3600


async def test_without_an_event_the_job_finishes_at_the_fallback_interval(start: Start) -> None:
    handle = await start("a kite [sim:duration=100]", poll_interval_seconds=5, webhook_fallback_seconds=60)

    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
    assert state.polls == 1  # at 60 s; the job was done at 50 s
    assert 60 <= await _elapsed(handle) < 120


async def test_an_event_ahead_of_the_status_turns_the_fallback_back_into_polling(
    start: Start, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start(
        "a slow bloom [sim:duration=100]", poll_interval_seconds=5, webhook_fallback_seconds=3600
    )
    await _submitted(handle)
    await time_skipping_env.sleep(30)  # the job is still rendering

    await handle.signal(VideoGenerationWorkflow.remote_event, RemoteEvent("evt_early", "video.completed"))
    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    assert await _elapsed(handle) < 120  # polled every 5 s after the event, not after an hour


async def test_a_repeated_event_acts_once(start: Start) -> None:
    handle = await start(
        "a tide that never turns [sim:never]", poll_interval_seconds=300, webhook_fallback_seconds=3600
    )
    await _submitted(handle)
    await handle.signal(VideoGenerationWorkflow.remote_event, RemoteEvent("evt_a"))
    await _polls_reach(handle, 1)

    await handle.signal(VideoGenerationWorkflow.remote_event, RemoteEvent("evt_a"))  # the duplicate
    await handle.signal(VideoGenerationWorkflow.remote_event, RemoteEvent("evt_b"))
    await _polls_reach(handle, 2)
    await handle.signal(VideoGenerationWorkflow.cancel, "done watching")
    result = await job_result(handle)

    assert result.status is JobStatus.CANCELLED
    state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
    assert state.polls == 2


async def test_remembered_events_are_carried_across_continue_as_new(
    start: Start, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start(
        "a long exposure [sim:duration=100]",
        poll_interval_seconds=300,
        webhook_fallback_seconds=3600,
        max_polls_per_run=1,
    )
    await _submitted(handle)
    await handle.signal(VideoGenerationWorkflow.remote_event, RemoteEvent("evt_early"))
    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    first = time_skipping_env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    last = (await first.fetch_history()).events[-1]
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    (carried,) = DataConverter.default.payload_converter.from_payloads(
        last.workflow_execution_continued_as_new_event_attributes.input.payloads, [VideoWorkflowInput]
    )
    assert carried.carried.seen_events == ("evt_early",)
