"""After the row is saved the workflow ends as the job did; a timed-out job is watched for its video.

On the time-skipping server: the salvage window's hour passes in seconds. The simulator follows the
server's clock (``conftest.py``), so a job "slower than its deadline" finishes at a known moment.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from sora_temporal.settings import SpendSettings
from sora_temporal.types import JobProgress, JobStatus, VideoRequest, VideoResult, VideoWorkflowInput
from support import Stack, in_process_workers, job_result
from workflows.video import VideoGenerationWorkflow

Runner = Callable[..., Awaitable[WorkflowHandle[Any, VideoResult]]]
# The job is told `timed_out` at 60 s, then watched every 20 s for up to 10 minutes.
SALVAGE = {
    "poll_interval_seconds": 5,
    "deadline_seconds": 60,
    "salvage_window_seconds": 600,
    "salvage_poll_seconds": 20,
}


@pytest.fixture
async def start(
    time_skipping_env: WorkflowEnvironment, stack: Stack, task_queue: str, executor: ThreadPoolExecutor
) -> AsyncIterator[Runner]:
    client = time_skipping_env.client
    async with AsyncExitStack() as workers:
        for worker in in_process_workers(client, stack, task_queue, executor):
            await workers.enter_async_context(worker)

        async def run(
            prompt: str, budget_account: str | None = None, **request: Any
        ) -> WorkflowHandle[Any, Any]:
            return await client.start_workflow(
                VideoGenerationWorkflow.run,
                VideoWorkflowInput(
                    request=VideoRequest(prompt=prompt, **request), budget_account=budget_account
                ),
                id=f"wf-{uuid.uuid4()}",
                task_queue=task_queue,
            )

        yield run


async def _failure(handle: WorkflowHandle[Any, Any]) -> BaseException:
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert failed.value.cause is not None
    return failed.value.cause


async def _watched_after_the_deadline(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]
) -> JobProgress:
    """Skip past the deadline, then the job must be `timed_out` for the caller and still watched."""
    await env.sleep(75)
    for _ in range(100):
        state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
        if state.status is JobStatus.TIMED_OUT:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"not timed out after the deadline: {state}")


# --- the workflow ends as the job did ---------------------------------------------------------------


async def test_a_completed_job_completes_the_workflow(start: Runner) -> None:
    handle = await start("a paper boat")

    result = await handle.result()

    assert result.status is JobStatus.COMPLETED
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED


async def test_a_failed_job_fails_the_workflow_with_its_error_code_as_the_type(
    start: Runner, stack: Stack
) -> None:
    handle = await start("something forbidden [sim:fail:moderation_blocked]")

    cause = await _failure(handle)

    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == ("moderation_blocked", True)
    assert cause.details and cause.details[0]["status"] == "failed"
    assert (await handle.describe()).status is WorkflowExecutionStatus.FAILED
    row = stack.catalog.get(handle.id)
    assert row is not None and (row.status, row.error_code) == ("failed", "moderation_blocked")


async def test_a_timed_out_job_without_a_salvage_window_fails_the_workflow_at_the_deadline(
    start: Runner, stack: Stack
) -> None:
    handle = await start("a clock with no hands [sim:never]", poll_interval_seconds=5, deadline_seconds=60)

    cause = await _failure(handle)

    assert isinstance(cause, ApplicationError) and cause.type == "timed_out" and cause.non_retryable
    described = await handle.describe()
    assert described.status is WorkflowExecutionStatus.FAILED
    assert described.close_time and described.start_time
    assert (described.close_time - described.start_time).total_seconds() < 70
    row = stack.catalog.get(handle.id)
    assert row is not None and row.status == "timed_out" and row.remote_may_be_running


async def test_a_job_cancelled_through_temporal_cancels_the_workflow_with_the_reason_recorded(
    start: Runner, stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start("a very long take [sim:never]", poll_interval_seconds=300, deadline_seconds=7200)
    await time_skipping_env.sleep(30)

    await handle.cancel(reason="wrong prompt")
    cause = await _failure(handle)

    assert isinstance(cause, CancelledError)
    assert (await handle.describe()).status is WorkflowExecutionStatus.CANCELED
    row = stack.catalog.get(handle.id)
    assert row is not None and (row.status, row.error_message) == ("cancelled", "wrong prompt")
    assert row.remote_may_be_running and row.video_id


async def test_the_cancel_signal_alone_ends_the_workflow_as_a_cancellation_failure(
    start: Runner, stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start("a very long take [sim:never]", poll_interval_seconds=300, deadline_seconds=7200)
    await time_skipping_env.sleep(30)

    await handle.signal(VideoGenerationWorkflow.cancel, "changed my mind")
    cause = await _failure(handle)

    # Temporal lets a workflow end CANCELED only after a cancellation request: the clients send one.
    assert isinstance(cause, CancelledError) and cause.details[0]["status"] == "cancelled"
    row = stack.catalog.get(handle.id)
    assert row is not None and row.status == "cancelled"


# --- budgets ------------------------------------------------------------------------------------------


async def test_a_job_over_the_budget_is_refused_before_any_request_and_fails_the_workflow(
    stack: Stack, time_skipping_env: WorkflowEnvironment, task_queue: str, executor: ThreadPoolExecutor
) -> None:
    # $0.40 (4 s of sora-2) does not fit a $0.30 day.
    stack.activities.settings = replace(
        stack.activities.settings, spend=SpendSettings(budget_usd_per_day=Decimal("0.30"))
    )
    client = time_skipping_env.client
    async with AsyncExitStack() as workers:
        for worker in in_process_workers(client, stack, task_queue, executor):
            await workers.enter_async_context(worker)
        handle = await client.start_workflow(
            VideoGenerationWorkflow.run,
            VideoWorkflowInput(request=VideoRequest(prompt="an expensive sunset")),
            id=f"wf-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        cause = await _failure(handle)

    assert isinstance(cause, ApplicationError) and cause.type == "rejected_budget"
    assert "daily budget" in cause.message and "$0.40" in cause.message
    assert (await handle.describe()).status is WorkflowExecutionStatus.FAILED
    row = stack.catalog.get(handle.id)
    assert row is not None
    assert (row.status, row.error_code, row.video_id, row.remote_may_be_running) == (
        "rejected_budget",
        "rejected_budget",
        None,
        False,
    )
    assert row.estimated_cost_usd == pytest.approx(0.40)
    assert sum(stack.sim.stats()["requests"].values()) == 0


# --- salvage after the deadline --------------------------------------------------------------------


async def test_a_job_slower_than_its_deadline_times_out_for_the_caller_then_is_stored_late(
    start: Runner, stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    # Renders for 100 s of workflow time: 40 s past its 60 s deadline.
    handle = await start("a glacier calving [sim:duration=200]", **SALVAGE)

    state = await _watched_after_the_deadline(time_skipping_env, handle)

    assert state.watching_until is not None and state.error_code == "timed_out"
    row = stack.catalog.get(handle.id)
    assert row is not None and row.status == "timed_out" and row.remote_may_be_running
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING

    result = await handle.result()

    assert result.status is JobStatus.COMPLETED_LATE and result.urls.video_url
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
    assert stack.sim.creates("a glacier calving") == 1
    row = stack.catalog.get(handle.id)
    assert row is not None
    assert (row.status, row.blob_url, row.sha256, row.remote_may_be_running) == (
        "completed_late",
        result.urls.video_url,
        result.sha256,
        False,
    )
    (stored,) = stack.storage_dir.rglob("*.mp4")
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == result.sha256


async def test_a_job_that_fails_after_its_deadline_is_recorded_so(
    start: Runner, stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start("a storm that never clears [sim:never]", **SALVAGE)
    state = await _watched_after_the_deadline(time_skipping_env, handle)
    assert state.video_id is not None

    stack.sim.force_job(state.video_id, status="failed", error_code="moderation_blocked", error_message="no")
    cause = await _failure(handle)

    assert isinstance(cause, ApplicationError) and cause.type == "timed_out"
    row = stack.catalog.get(handle.id)
    assert row is not None and row.status == "timed_out" and row.remote_may_be_running is False
    assert "failed after the deadline (moderation_blocked" in (row.error_message or "")
    assert stack.sim.creates("a storm that never clears") == 1


async def test_the_watch_stops_when_the_window_closes(start: Runner, stack: Stack) -> None:
    handle = await start(
        "a clock with no hands [sim:never]",
        poll_interval_seconds=5,
        deadline_seconds=60,
        salvage_window_seconds=120,
        salvage_poll_seconds=30,
    )

    cause = await _failure(handle)

    assert isinstance(cause, ApplicationError) and cause.type == "timed_out"
    described = await handle.describe()
    assert described.close_time and described.start_time
    # Deadline at 60 s after submission, then two minutes of watching, and not a check more.
    assert 180 <= (described.close_time - described.start_time).total_seconds() < 200
    row = stack.catalog.get(handle.id)
    assert row is not None and row.status == "timed_out" and row.remote_may_be_running
    assert "watched the Sora job for a late video for 120 s" in (row.error_message or "")


async def test_a_cancellation_during_the_watch_stops_it_and_the_job_stays_timed_out(
    start: Runner, stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start("a very long take [sim:never]", **SALVAGE)
    await _watched_after_the_deadline(time_skipping_env, handle)

    await handle.cancel(reason="not needed any more")
    cause = await _failure(handle)

    assert isinstance(cause, ApplicationError) and cause.type == "timed_out"
    row = stack.catalog.get(handle.id)
    assert row is not None and row.status == "timed_out"
    assert "stopped watching for a late video: not needed any more" in (row.error_message or "")


async def test_a_cancel_signal_during_the_watch_stops_it_too(
    start: Runner, stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start("a very long take [sim:never]", **SALVAGE)
    await _watched_after_the_deadline(time_skipping_env, handle)

    await handle.signal(VideoGenerationWorkflow.cancel, "enough")
    result = await job_result(handle)

    assert result.status is JobStatus.TIMED_OUT
    assert "stopped watching for a late video: enough" in (result.error_message or "")


async def test_a_cancellation_during_submit_lets_the_create_finish_and_records_its_job(
    start: Runner, stack: Stack
) -> None:
    stack.sim.add_fault("create", "slow", delay=2, count=1)  # the create takes 2 s of real time
    handle = await start("a hurried start [sim:never]", poll_interval_seconds=300, deadline_seconds=7200)
    for _ in range(100):
        if stack.sim.stats()["requests"].get("create"):
            break
        await asyncio.sleep(0.05)

    await handle.cancel(reason="too soon")
    cause = await _failure(handle)

    assert isinstance(cause, CancelledError)
    (job,) = stack.sim.jobs()
    row = stack.catalog.get(handle.id)
    assert row is not None and (row.status, row.video_id) == ("cancelled", job["id"])
    assert row.remote_may_be_running  # the job was made and the API cannot cancel it: said, not hidden
