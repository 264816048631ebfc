"""End to end on the real Temporal dev server, a real worker process and the simulator, over loopback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devtools.devstack import ROOT
from simulator.testing import RunningSimulator, start_simulator
from sora_temporal import search_attributes as sa
from sora_temporal.types import JobProgress, JobStatus, VideoRequest, VideoResult
from starter import start_video
from support import Deployment, job_result
from workflows.video import VideoGenerationWorkflow

pytestmark = pytest.mark.integration


async def _start(
    client: Client, d: Deployment, prompt: str, **request: Any
) -> WorkflowHandle[Any, VideoResult]:
    return await start_video(client, d.settings, VideoRequest(prompt=prompt, **request), f"it-{uuid.uuid4()}")


async def test_a_video_is_stored_byte_identical_with_a_correct_row(
    deploy: Callable[[str], Deployment],
    database_url: str,
    dev_env: WorkflowEnvironment,
    sim: RunningSimulator,
) -> None:
    d = deploy(database_url)
    d.start_worker()
    handle = await _start(dev_env.client, d, "a paper boat in the rain", poll_interval_seconds=1)

    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    served = httpx.get(
        f"{sim.base_url}/videos/{result.video_id}/content", headers={"Authorization": f"Bearer {sim.api_key}"}
    ).content
    stored = Path(result.urls.video_url.removeprefix("file://"))  # type: ignore[union-attr]
    assert stored.read_bytes() == served
    row = d.catalog().get(handle.id)
    assert row is not None
    assert row.status == "completed" and row.video_id == result.video_id
    assert row.sha256 == hashlib.sha256(served).hexdigest() == result.sha256
    assert row.byte_size == len(served)
    assert (row.prompt, row.model, row.size, row.seconds) == (
        "a paper boat in the rain",
        "sora-2",
        "1280x720",
        4,
    )
    assert row.blob_url == result.urls.video_url and row.thumbnail_url and row.spritesheet_url


async def test_search_attributes_follow_the_job_on_the_dev_server(
    deployment: Deployment, dev_env: WorkflowEnvironment
) -> None:
    handle = await _start(dev_env.client, deployment, "a kite over dunes", poll_interval_seconds=1)
    result = await job_result(handle)

    described = await handle.describe()

    attributes = described.typed_search_attributes
    assert attributes.get(sa.SORA_STATUS) == "completed"
    assert attributes.get(sa.SORA_VIDEO_ID) == result.video_id
    assert attributes.get(sa.SORA_PROGRESS) == 100
    summary = await described.static_summary()
    assert summary and "a kite over dunes" in summary


async def test_the_dev_server_has_the_search_attributes_and_the_test_server_does_not(
    dev_env: WorkflowEnvironment, time_skipping_env: WorkflowEnvironment
) -> None:
    assert await sa.missing(dev_env.client) == []
    assert sorted(await sa.missing(time_skipping_env.client)) == sorted(k.name for k in sa.ALL)


async def test_a_worker_killed_between_polls_is_replaced_and_one_job_is_paid(
    deployment: Deployment, dev_env: WorkflowEnvironment, sim: RunningSimulator
) -> None:
    handle = await _start(
        dev_env.client, deployment, "a glacier calving [sim:duration=500]", poll_interval_seconds=1
    )
    for _ in range(200):
        state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
        if state.polls >= 1:
            break
        await asyncio.sleep(0.05)
    (worker,) = deployment.workers
    worker.send_signal(signal.SIGKILL)
    worker.wait()

    deployment.start_worker()
    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    assert sim.creates("a glacier calving") == 1


async def test_a_lost_create_response_is_adopted_not_paid_twice(
    deployment: Deployment, dev_env: WorkflowEnvironment, sim: RunningSimulator
) -> None:
    sim.add_fault("create", "lose_response", count=1)

    handle = await _start(dev_env.client, deployment, "a hummingbird at a feeder", poll_interval_seconds=1)
    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    assert sim.creates("a hummingbird at a feeder") == 1
    (job,) = [j for j in sim.jobs() if j["prompt"] == "a hummingbird at a feeder"]
    assert job["response_lost"] is True and job["id"] == result.video_id


async def test_the_api_key_appears_nowhere_in_the_history(
    deployment: Deployment, dev_env: WorkflowEnvironment, sim: RunningSimulator
) -> None:
    handle = await _start(dev_env.client, deployment, "a quiet harbour", poll_interval_seconds=1)
    await handle.result()

    history = await handle.fetch_history()
    described = await handle.describe()

    text = history.to_json() + json.dumps(described.raw_description.__str__())
    assert sim.api_key not in text
    row = deployment.catalog().get(handle.id)
    assert row is not None and sim.api_key not in json.dumps(row.as_dict(), default=str)


def test_the_starter_exits_cleanly_every_time(deployment: Deployment) -> None:
    """Guards against temporalio/sdk-python#300: a crash at interpreter exit must not change the status."""
    codes = []
    for i in range(12):
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "starter.py"),
                "generate",
                f"a starter run {i} [sim:never]",
                "--no-wait",
                "--json",
            ],
            env=deployment.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        codes.append((done.returncode, done.stderr[-300:]))
        assert json.loads(done.stdout)["workflow_id"]
    assert [c for c, _ in codes] == [0] * 12, codes


def test_the_starter_refuses_a_workflow_id_that_exists(deployment: Deployment, sim: RunningSimulator) -> None:
    workflow_id = f"dup-{uuid.uuid4()}"

    def generate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                str(ROOT / "starter.py"),
                "generate",
                "a duplicate [sim:never]",
                "--id",
                workflow_id,
                "--no-wait",
            ],
            env=deployment.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    first, second = generate(), generate()

    assert first.returncode == 0
    assert second.returncode == 2
    assert "already exists" in second.stderr


async def test_a_gateway_job_completes_through_its_download_url_without_thumbnails(
    deploy: Callable[..., Deployment], sqlite_url: str, dev_env: WorkflowEnvironment
) -> None:
    with start_simulator(dialect="gateway", time_scale=0.01) as gateway:
        d = deploy(sqlite_url, OPENAI_BASE_URL=gateway.base_url, OPENAI_API_KEY=gateway.api_key)
        d.start_worker()
        request = VideoRequest(
            prompt="a tide pool at noon",
            model="gemini/veo-3.1-generate-preview",
            size="1920x1080",
            seconds=5,
            poll_interval_seconds=1,
        )

        handle = await start_video(dev_env.client, d.settings, request, f"gw-{uuid.uuid4()}")
        result = await job_result(handle)

        assert result.status is JobStatus.COMPLETED
        assert (
            result.urls.video_url
            and result.urls.thumbnail_url is None
            and result.urls.spritesheet_url is None
        )
        assert gateway.stats()["requests"].get("files", 0) >= 1
        assert gateway.creates("a tide pool at noon") == 1
        row = d.catalog().get(handle.id)
        assert row is not None
        assert (row.status, row.model, row.size, row.seconds) == ("completed", request.model, "1920x1080", 5)


def test_a_worker_says_how_to_create_missing_search_attributes(
    deploy: Callable[..., Deployment], sqlite_url: str, time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The time-skipping server has no custom search attributes: the worker still runs, and says so."""
    d = deploy(sqlite_url, TEMPORAL_ADDRESS=time_skipping_env.client.service_client.config.target_host)

    d.start_worker()

    log = (tmp_path / "worker.log").read_text()
    assert "custom search attributes missing: SoraStatus" in log
    assert (
        "temporal operator search-attribute create --namespace default --name SoraStatus --type Keyword"
        in log
    )


def test_a_worker_stops_cleanly_on_sigterm(deployment: Deployment) -> None:
    (worker,) = deployment.workers

    worker.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=30) == 0
