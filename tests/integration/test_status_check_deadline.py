"""A Videos API that stays unreachable past the deadline ends the job as ``timed_out``.

On the dev server, in real time: the status check is a local activity, and a local activity's time
budget runs on the worker's clock, which the time-skipping server cannot move.
"""

from __future__ import annotations

import uuid

import pytest
from temporalio.testing import WorkflowEnvironment

from simulator.testing import RunningSimulator
from sora_temporal.types import JobStatus, VideoRequest
from starter import start_video
from support import Deployment, job_result

pytestmark = pytest.mark.integration


async def test_a_videos_api_unreachable_past_the_deadline_ends_the_job_as_timed_out(
    deployment: Deployment, sim: RunningSimulator, dev_env: WorkflowEnvironment
) -> None:
    sim.add_fault("retrieve", "error", status=503)  # every status request, for good

    handle = await start_video(
        dev_env.client,
        deployment.settings,
        VideoRequest("a lighthouse in a blackout", poll_interval_seconds=1, deadline_seconds=10),
        f"unreachable-{uuid.uuid4().hex[:8]}",
    )
    result = await job_result(handle)

    assert result.status is JobStatus.TIMED_OUT
    assert result.remote_may_be_running is True  # nobody could ask the API whether it still runs
    row = deployment.catalog().get(handle.id)
    assert row is not None and row.status == "timed_out" and row.remote_may_be_running
    assert sim.creates("a lighthouse in a blackout") == 1
