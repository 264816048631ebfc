"""A worker SIGKILLed in each phase of a job; a fresh worker finishes every job, each paid once.

One kill lands on four workflows at once, each held in a different phase:

* submit: the simulator has made the job but holds the create response (``slow`` ``after``);
* between polls: the job renders for 25 s while the workflow waits on its durable timer;
* download: the simulator has sent half of the MP4 and holds the rest (a ``.part`` file exists);
* upload: the Blob emulator has stored the MP4 and holds its answer (``delay_next``).

Saves are killed separately: the worker dies the moment the row shows a new status.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from fault_checks import (
    BlobView,
    LocalView,
    Verdict,
    leftovers,
    no_open_workflows,
    record_partials,
    results,
    runs_of,
    verify,
    wait_for,
)
from simulator.blob.testing import RunningBlobEmulator, start_blob_emulator
from simulator.testing import RunningSimulator
from sora_temporal.storage.base import unique_name
from sora_temporal.types import JobProgress, JobStatus, VideoRequest, VideoResult
from starter import start_video
from support import Deployment
from workflows.video import VideoGenerationWorkflow

pytestmark = [pytest.mark.faults, pytest.mark.integration]

PROMPTS = {
    "submit": "killed during submit: a heron lifts off [sim:duration=300]",
    "between_polls": "killed between polls: the tide comes in [sim:duration=2500]",
    "download": "killed during download: a night market [sim:duration=50]",
    "upload": "killed during upload: a lamp is lit [sim:duration=50]",
}
# Long enough for the kill to land while they are held, short enough to be gone by the end.
HOLD_SECONDS = 20.0


@dataclass
class KillRun:
    handles: dict[str, WorkflowHandle[Any, VideoResult]]
    verdicts: dict[str, Verdict]
    status_at_kill: dict[str, str | None]
    leftovers: list[str]


@pytest.fixture(scope="module")
def blob(module_dir: Path) -> Any:
    with start_blob_emulator(module_dir / "blob") as running:
        yield running


@pytest.fixture(scope="module")
async def kill_run(
    spawn: Callable[..., Deployment],
    module_dir: Path,
    module_sim: RunningSimulator,
    blob: RunningBlobEmulator,
    dev_env: WorkflowEnvironment,
) -> KillRun:
    sim = module_sim
    d = spawn(module_dir / "phases", sim, STORAGE_BACKEND="vercel", BLOB_ACCESS="private", **blob.env())
    worker = d.start_worker()
    catalog = d.catalog()
    downloads = Path(d.env["DOWNLOAD_DIR"])
    sim.add_fault("create", "slow", delay=HOLD_SECONDS, after=True, count=1, match_prompt=PROMPTS["submit"])
    sim.add_fault(
        "content", "slow", delay=HOLD_SECONDS, after=True, count=1, match_prompt=PROMPTS["download"]
    )
    blob.delay_next(HOLD_SECONDS, count=1)  # only the upload case reaches the store before the kill

    handles = {
        phase: await start_video(
            dev_env.client,
            d.settings,
            VideoRequest(prompt=prompt, poll_interval_seconds=1),
            f"kill-{phase}-{uuid.uuid4().hex[:8]}",
        )
        for phase, prompt in PROMPTS.items()
    }

    async def polled(handle: WorkflowHandle[Any, VideoResult]) -> bool:
        state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
        return state.polls >= 1

    def partial_download(handle: WorkflowHandle[Any, VideoResult]) -> bool:
        return any((downloads / unique_name(handle.id)).glob("*.mp4.part"))

    def mp4_stored(handle: WorkflowHandle[Any, VideoResult]) -> bool:
        prefix = f"videos/{unique_name(handle.id)}/"
        return any(o.pathname.startswith(prefix) and o.pathname.endswith(".mp4") for o in blob.objects())

    await asyncio.gather(
        wait_for(lambda: sim.creates(PROMPTS["submit"]) == 1, timeout=30, what="the held create"),
        wait_for(lambda: polled(handles["between_polls"]), timeout=30, what="a first status check"),
        wait_for(lambda: partial_download(handles["download"]), timeout=30, what="a half-done download"),
        wait_for(lambda: mp4_stored(handles["upload"]), timeout=30, what="the held upload"),
    )
    status_at_kill = {}
    for phase, handle in handles.items():
        row = catalog.get(handle.id)
        status_at_kill[phase] = row.status if row else None
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)

    d.start_worker()
    done = await results(handles, timeout=150)

    verdicts = {
        phase: await verify(
            f"worker killed: {phase}",
            handles[phase],
            done[phase],
            prompt=PROMPTS[phase],
            status=JobStatus.COMPLETED,
            sim=sim,
            catalog=catalog,
            storage=BlobView(blob),
        )
        for phase in PROMPTS
    }
    await no_open_workflows(dev_env.client, d.settings.task_queue)
    left = record_partials(leftovers(downloads, BlobView(blob), [h.id for h in handles.values()]))
    return KillRun(handles, verdicts, status_at_kill, left)


async def test_a_worker_killed_after_sora_made_the_job_is_replaced_and_the_job_adopted(
    kill_run: KillRun,
) -> None:
    assert kill_run.verdicts["submit"].problems == []
    (submit,) = await runs_of(kill_run.handles["submit"], "submit_video")
    assert submit.attempt >= 2  # the first attempt died holding the create


async def test_a_worker_killed_between_polls_is_replaced_and_the_job_completes_once(
    kill_run: KillRun,
) -> None:
    assert kill_run.status_at_kill["between_polls"] in ("queued", "in_progress")
    assert kill_run.verdicts["between_polls"].problems == []


async def test_a_worker_killed_mid_download_is_replaced_and_the_download_completes(
    kill_run: KillRun,
) -> None:
    assert kill_run.status_at_kill["download"] == "downloading"
    assert kill_run.verdicts["download"].problems == []
    (download,) = await runs_of(kill_run.handles["download"], "download_video")
    assert download.attempt >= 2


async def test_a_worker_killed_mid_upload_is_replaced_and_the_video_downloaded_again(
    kill_run: KillRun,
) -> None:
    assert kill_run.status_at_kill["upload"] == "uploading"
    assert kill_run.verdicts["upload"].problems == []
    # The files were on the dead host: the workflow downloaded them again on the new one.
    assert len(await runs_of(kill_run.handles["upload"], "download_video")) == 2


def test_no_partial_download_or_upload_is_left_after_the_kill(kill_run: KillRun) -> None:
    assert kill_run.leftovers == []


async def test_a_worker_killed_the_moment_a_save_lands_loses_nothing(
    deploy: Callable[..., Deployment],
    postgres_url: str,
    dev_env: WorkflowEnvironment,
    sim: RunningSimulator,
    tmp_path: Path,
) -> None:
    """Killed as soon as the row says ``queued`` (submit saved), then as soon as it says ``completed``.

    The kill lands just before or just after the worker reported the save to Temporal; either way
    the save is (re)done idempotently and nothing is submitted again.
    """
    d = deploy(postgres_url)
    d.start_worker()
    catalog = d.catalog()
    prompt = "killed after a save: a paper crane unfolds [sim:duration=200]"
    handle = await start_video(
        dev_env.client,
        d.settings,
        VideoRequest(prompt=prompt, poll_interval_seconds=1),
        f"save-{uuid.uuid4()}",
    )

    for status in ("queued", "completed"):

        def saved(status: str = status) -> bool:
            row = catalog.get(handle.id)
            return row is not None and row.status == status

        await wait_for(saved, timeout=60, what=f"the row to say {status}", interval=0.01)
        d.workers[-1].send_signal(signal.SIGKILL)
        d.workers[-1].wait(timeout=10)
        d.start_worker()
    (result,) = (await results({"save": handle}, timeout=60)).values()

    verdict = await verify(
        "worker killed after a save",
        handle,
        result,
        prompt=prompt,
        status=JobStatus.COMPLETED,
        sim=sim,
        catalog=catalog,
        storage=LocalView(tmp_path / "storage"),
    )
    assert verdict.problems == []
    assert (
        record_partials(leftovers(tmp_path / "downloads", LocalView(tmp_path / "storage"), [handle.id])) == []
    )
    await no_open_workflows(dev_env.client, d.settings.task_queue)
