"""No paid output lost within the salvage window; budgets never overshot. Real processes, real time.

The dev server, worker processes and the Sora simulator over loopback, as deployed: the starter's
``generate`` as people run it, and bursts of starts racing for one day's budget on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from simulator.testing import RunningSimulator
from sora_temporal.types import JobStatus, VideoRequest, VideoWorkflowInput
from starter import start_video
from support import Deployment, job_result
from workflows.video import VideoGenerationWorkflow

pytestmark = pytest.mark.integration


def _starter(deployment: Deployment, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starter", *args],
        cwd=cwd,
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=90,
    )


async def _closed(dev_env: WorkflowEnvironment, workflow_id: str, timeout: float) -> WorkflowExecutionStatus:
    handle = dev_env.client.get_workflow_handle(workflow_id)
    deadline = time.monotonic() + timeout
    while True:
        status = (await handle.describe()).status
        if status is not WorkflowExecutionStatus.RUNNING:
            assert status is not None
            return status
        assert time.monotonic() < deadline, f"{workflow_id} still runs"
        await asyncio.sleep(0.3)


async def test_generate_returns_at_the_deadline_and_the_late_video_is_stored_byte_for_byte(
    deploy: Callable[..., Deployment],
    sqlite_url: str,
    sim: RunningSimulator,
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    deployment = deploy(sqlite_url, SALVAGE_WINDOW_SECONDS="120", SALVAGE_POLL_SECONDS="1")
    deployment.start_worker()
    workflow_id = f"late-{uuid.uuid4().hex[:8]}"
    prompt = "a late sunrise [sim:duration=1800]"  # 18 s at the simulator's speed: past a 10 s deadline

    started = time.monotonic()
    told = _starter(
        deployment,
        "generate",
        prompt,
        "--deadline",
        "10",
        "--poll-interval",
        "1",
        "--id",
        workflow_id,
        "--json",
        cwd=tmp_path,
    )
    waited = time.monotonic() - started

    assert told.returncode == 1, told.stderr
    answer = json.loads(told.stdout)
    assert answer["result"]["status"] == "timed_out" and answer["watching_until"]
    assert answer["row"]["status"] == "timed_out" and answer["row"]["remote_may_be_running"] is True
    assert waited < 18  # the caller heard at the deadline, not when the video came
    human = _starter(deployment, "status", workflow_id, cwd=tmp_path)
    assert "still watched" in human.stdout or "completed_late" in human.stdout

    assert await _closed(dev_env, workflow_id, timeout=60) is WorkflowExecutionStatus.COMPLETED
    row = deployment.catalog().get(workflow_id)
    assert row is not None and row.status == "completed_late" and row.blob_url
    (job,) = [j for j in sim.jobs() if j["prompt"] == prompt]  # exactly one upstream job
    served = httpx.get(
        f"{sim.base_url}/videos/{job['id']}/content", headers={"Authorization": f"Bearer {sim.api_key}"}
    )
    served.raise_for_status()
    (stored,) = Path(deployment.env["STORAGE_DIR"]).rglob("*.mp4")
    assert stored.read_bytes() == served.content
    assert hashlib.sha256(served.content).hexdigest() == row.sha256
    listed = _starter(deployment, "list", "--json", cwd=tmp_path)
    (mine,) = [r for r in json.loads(listed.stdout) if r["workflow_id"] == workflow_id]
    assert mine["status"] == "completed_late" and mine["estimated_cost_usd"] == pytest.approx(0.40)


async def test_thirty_jobs_started_at_once_against_a_budget_for_ten_create_exactly_ten(
    deploy: Callable[..., Deployment],
    database_url: str,
    sim: RunningSimulator,
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    # Ten 4 s sora-2 clips at $0.10 a second fill a $4.00 day exactly.
    deployment = deploy(database_url, BUDGET_USD_PER_DAY="4.00")
    deployment.start_worker()
    deployment.start_worker()  # two processes racing, as well as each one's threads
    run = uuid.uuid4().hex[:6]

    handles = await asyncio.gather(
        *(
            start_video(
                dev_env.client,
                deployment.settings,
                VideoRequest(f"budget burst {run} #{n}", poll_interval_seconds=1),
                f"burst-{run}-{n}",
            )
            for n in range(30)
        )
    )
    results = await asyncio.wait_for(asyncio.gather(*(job_result(h) for h in handles)), timeout=90)

    counts = Counter(r.status for r in results)
    assert counts == {JobStatus.COMPLETED: 10, JobStatus.REJECTED_BUDGET: 20}
    assert sim.creates(f"budget burst {run}") == 10
    assert sum(sim.stats()["requests"].get(route, 0) for route in ("list", "create")) == 10
    catalog = deployment.catalog()
    for result in results:
        if result.status is JobStatus.REJECTED_BUDGET:
            row = catalog.get(result.workflow_id)
            assert row is not None and row.video_id is None and row.status == "rejected_budget"
            assert "daily budget" in (result.error_message or "")
    spend = json.loads(_starter(deployment, "spend", "--json", cwd=tmp_path).stdout)
    assert spend["today_usd"] == pytest.approx(4.0) and spend["remaining_usd_today"] == pytest.approx(0.0)
    assert [(d["model"], d["jobs"]) for d in spend["days"]] == [("sora-2", 10)]


async def test_an_api_keys_budget_refuses_its_own_jobs_and_not_another_keys(
    deploy: Callable[..., Deployment], sqlite_url: str, sim: RunningSimulator, dev_env: WorkflowEnvironment
) -> None:
    deployment = deploy(sqlite_url, API_KEY_BUDGET_USD_PER_DAY="0.80")
    deployment.start_worker()
    run = uuid.uuid4().hex[:6]

    async def start(n: int, account: str) -> JobStatus:
        handle = await dev_env.client.start_workflow(
            VideoGenerationWorkflow.run,
            VideoWorkflowInput(
                VideoRequest(f"key budget {run} #{n}", poll_interval_seconds=1), budget_account=account
            ),
            id=f"key-{run}-{n}",
            task_queue=deployment.settings.task_queue,
        )
        return (await job_result(handle)).status

    first_key = [await start(n, "api-key:first") for n in range(3)]
    other_key = await start(3, "api-key:second")

    assert first_key == [JobStatus.COMPLETED, JobStatus.COMPLETED, JobStatus.REJECTED_BUDGET]
    assert other_key is JobStatus.COMPLETED
    assert sim.creates(f"key budget {run}") == 3
