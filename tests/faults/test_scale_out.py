"""Two worker processes on one task queue share the jobs, and one of them may die mid-load.

Twenty-four jobs start at once against two ``python worker.py`` processes configured alike: the
same task queue, SQLite catalogue, storage and download directory, the simulator over loopback.
Temporal's history names the process that ran each activity and workflow task (``<pid>@<host>``,
the SDK's default identity). Once both processes have run activities, one is SIGKILLed while every
job is still rendering and being polled. The survivor takes over the dead one's workflows: every
job still ends completed, with one row, one create at the simulator, its files stored, and nothing
partial left behind.

The figures the run prints (``-s``) are the ones docs/operations.md quotes ("Running more workers").
"""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from fault_checks import (
    LocalView,
    Verdict,
    leftovers,
    no_open_workflows,
    record_partials,
    results,
    verify,
    wait_for,
)
from simulator.testing import RunningSimulator
from sora_temporal.types import JobStatus, VideoRequest, VideoResult
from starter import start_video
from support import Deployment

pytestmark = [pytest.mark.faults, pytest.mark.integration]

JOBS = 24
# Realistic seconds, 0.01 of them in real time here: 15 to 26 s, so every job is still rendering
# (and polled once a second) when the kill lands a few seconds after the start.
PROMPTS = [f"scale-out job {i:02d}: kites over the dunes [sim:duration={1500 + 50 * i}]" for i in range(JOBS)]


@dataclass
class ScaleOutRun:
    handles: dict[str, WorkflowHandle[Any, VideoResult]]
    victim: str
    survivor: str
    # workflow id -> identities that started its (non-local) activities / its workflow tasks
    activity_workers: dict[str, set[str]]
    task_workers_after_kill: dict[str, set[str]]
    task_workers_before_kill: dict[str, set[str]]
    running_at_kill: int
    verdicts: list[Verdict]
    rows: Counter[str]
    creates: int
    leftovers: list[str]
    seconds_kill_to_all_done: float
    takeover_seconds: list[float]


def identity(process_id: int) -> str:
    """The identity a worker process reports to Temporal (the SDK's default, ``<pid>@<host>``)."""
    return f"{process_id}@{socket.gethostname()}"


@dataclass
class History:
    activity_workers: set[str]
    task_workers_before: set[str]
    task_workers_after: set[str]
    first_task_after: float | None  # server time of the first workflow task started after ``split``


async def read_history(handle: WorkflowHandle[Any, Any], split: float = float("inf")) -> History:
    """Who started the workflow's activities, and its workflow tasks before and after ``split``."""
    seen = History(set(), set(), set(), None)
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            seen.activity_workers.add(event.activity_task_started_event_attributes.identity)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            at = event.event_time.ToDatetime().timestamp()
            who = event.workflow_task_started_event_attributes.identity
            if at < split:
                seen.task_workers_before.add(who)
            else:
                seen.task_workers_after.add(who)
                if seen.first_task_after is None:
                    seen.first_task_after = at
    return seen


@pytest.fixture(scope="module")
async def scale_out_run(
    spawn: Callable[..., Deployment],
    module_dir: Path,
    module_sim: RunningSimulator,
    dev_env: WorkflowEnvironment,
) -> ScaleOutRun:
    sim = module_sim
    d = spawn(module_dir / "two-workers", sim)
    first, second = d.start_worker(), d.start_worker()
    catalog = d.catalog()
    started_at = time.time()
    handles = {
        prompt: await start_video(
            dev_env.client,
            d.settings,
            VideoRequest(prompt=prompt, poll_interval_seconds=1),
            f"scale-out-{i:02d}-{uuid.uuid4().hex[:8]}",
        )
        for i, prompt in enumerate(PROMPTS)
    }
    both = {identity(first.pid), identity(second.pid)}

    async def both_ran_activities() -> bool:
        ran: set[str] = set()
        for handle in handles.values():
            ran |= (await read_history(handle)).activity_workers
        return both <= ran

    await wait_for(both_ran_activities, timeout=20, what="both workers to run activities", interval=0.5)
    running_at_kill = sum(
        1
        for h in handles.values()
        if (row := catalog.get(h.id)) is None or not JobStatus(row.status).is_terminal
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.time()  # once it is gone: every workflow task it started lies before this

    done = await results(handles, timeout=80)
    seconds_kill_to_all_done = time.time() - killed_at

    histories = {h.id: await read_history(h, split=killed_at) for h in handles.values()}
    verdicts = [
        await verify(
            "two workers, one killed",
            handle,
            done[prompt],
            prompt=prompt,
            status=JobStatus.COMPLETED,
            sim=sim,
            catalog=catalog,
            storage=LocalView(Path(d.env["STORAGE_DIR"])),
        )
        for prompt, handle in handles.items()
    ]
    await no_open_workflows(dev_env.client, d.settings.task_queue)
    rows = Counter(row.workflow_id for row in catalog.recent(limit=10 * JOBS))
    catalog.close()
    ids = [h.id for h in handles.values()]
    left = record_partials(leftovers(Path(d.env["DOWNLOAD_DIR"]), LocalView(Path(d.env["STORAGE_DIR"])), ids))
    victim, survivor = identity(first.pid), identity(second.pid)
    takeover = sorted(
        h.first_task_after - killed_at
        for h in histories.values()
        if victim in h.task_workers_before and h.first_task_after is not None
    )
    run = ScaleOutRun(
        handles=handles,
        victim=victim,
        survivor=survivor,
        activity_workers={wid: h.activity_workers for wid, h in histories.items()},
        task_workers_before_kill={wid: h.task_workers_before for wid, h in histories.items()},
        task_workers_after_kill={wid: h.task_workers_after for wid, h in histories.items()},
        running_at_kill=running_at_kill,
        verdicts=verdicts,
        rows=rows,
        creates=sim.creates(),
        leftovers=left,
        seconds_kill_to_all_done=seconds_kill_to_all_done,
        takeover_seconds=takeover,
    )
    ran = Counter(who for h in histories.values() for who in h.activity_workers)
    print(
        f"\nscale-out: {JOBS} jobs; jobs with activities run by the killed worker {ran[victim]}, by the "
        f"survivor {ran[survivor]}; killed {killed_at - started_at:.1f} s after the first start with "
        f"{running_at_kill} running; all completed {seconds_kill_to_all_done:.1f} s after the kill; "
        f"{len(takeover)} jobs taken over, their first workflow task on the survivor "
        + (f"{takeover[0]:.1f}-{takeover[-1]:.1f} s after the kill" if takeover else "never")
    )
    return run


def test_two_worker_processes_on_one_task_queue_both_run_activities(scale_out_run: ScaleOutRun) -> None:
    ran = Counter(who for workers in scale_out_run.activity_workers.values() for who in workers)
    assert ran[scale_out_run.victim] >= 1, ran
    assert ran[scale_out_run.survivor] >= 1, ran
    assert set(ran) == {scale_out_run.victim, scale_out_run.survivor}, ran


def test_the_kill_landed_while_every_job_was_still_running(scale_out_run: ScaleOutRun) -> None:
    assert scale_out_run.running_at_kill == JOBS


def test_the_survivor_takes_over_the_jobs_the_killed_worker_was_running(scale_out_run: ScaleOutRun) -> None:
    held_by_victim = [
        wid
        for wid, before in scale_out_run.task_workers_before_kill.items()
        if scale_out_run.victim in before
    ]
    assert held_by_victim, "the killed worker ran no workflow task before the kill"
    for wid in held_by_victim:
        assert scale_out_run.task_workers_after_kill[wid] == {scale_out_run.survivor}, wid


def test_every_job_completes_once_after_one_of_two_workers_is_killed(scale_out_run: ScaleOutRun) -> None:
    assert [(v.workflow_id, v.problems) for v in scale_out_run.verdicts if v.problems] == []
    assert scale_out_run.creates == JOBS  # /_sim/stats: one Sora job per workflow, none paid twice
    assert scale_out_run.rows == Counter({h.id: 1 for h in scale_out_run.handles.values()})


def test_no_download_or_partial_object_is_left_after_one_of_two_workers_is_killed(
    scale_out_run: ScaleOutRun,
) -> None:
    assert scale_out_run.leftovers == []
