"""How much history a job writes: short enough to read in the Web UI, far below Temporal's limits.

A five-minute job on the time-skipping server, against the Sora simulator on the server's clock
(``conftest.py``), so the job takes 60 status checks at the 5 s interval on every run.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment

from sora_temporal.types import JobStatus, VideoRequest, VideoWorkflowInput
from support import Stack, in_process_workers, job_result
from workflows.video import VideoGenerationWorkflow

STATUS_CHECK = "check_video_status"


def _is_status_check(event: HistoryEvent) -> bool:
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return event.activity_task_scheduled_event_attributes.activity_type.name == STATUS_CHECK
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        # A local activity's result: its details name the activity type.
        return STATUS_CHECK.encode() in event.marker_recorded_event_attributes.SerializeToString()
    return False


async def test_a_five_minute_job_writes_at_most_450_events_and_7_per_status_check(
    time_skipping_env: WorkflowEnvironment, stack: Stack, task_queue: str, executor: ThreadPoolExecutor
) -> None:
    client = time_skipping_env.client
    async with AsyncExitStack() as workers:
        for worker in in_process_workers(client, stack, task_queue, executor):
            await workers.enter_async_context(worker)
        # 600 realistic seconds at the simulator's time scale of 0.5: five minutes.
        handle = await client.start_workflow(
            VideoGenerationWorkflow.run,
            VideoWorkflowInput(VideoRequest("a slow dolly shot [sim:duration=600]", deadline_seconds=3600)),
            id=f"wf-{uuid.uuid4()}",
            task_queue=task_queue,
        )

        result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    events = (await handle.fetch_history()).events
    checks = [i for i, event in enumerate(events) if _is_status_check(event)]
    assert 59 <= len(checks) <= 61, len(checks)
    per_check = (checks[-1] - checks[0]) / (len(checks) - 1)  # the poll loop, first check to last
    print(f"\n{len(events)} events, {len(checks)} status checks, {per_check:.2f} events per check")
    assert per_check <= 7
    assert len(events) <= 450
