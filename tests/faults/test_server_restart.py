"""The Temporal server restarts (same SQLite file) while jobs wait between polls; all of them finish.

The server is our own ``temporal server start-dev`` on its own port, not the session's, so that
stopping it disturbs nothing else. Workers are not restarted: they reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from devtools.devstack import DevServer, free_port
from fault_checks import LocalView, leftovers, no_open_workflows, record_partials, results, verify, wait_for
from simulator.testing import RunningSimulator
from sora_temporal.types import JobProgress, JobStatus, VideoRequest, VideoResult
from starter import start_video
from support import Deployment
from workflows.video import VideoGenerationWorkflow

pytestmark = [pytest.mark.faults, pytest.mark.integration]

PROMPTS = [f"through a server restart {n}: a windmill turns [sim:duration=800]" for n in range(3)]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer(
        "127.0.0.1",
        free_port(),
        ui_port=None,
        db_file=tmp_path / "temporal.db",
        log_path=tmp_path / "temporal.log",
    ).start()
    try:
        yield server
    finally:
        server.stop()


async def test_jobs_waiting_between_polls_finish_after_the_server_restarts(
    own_server: DevServer,
    deploy: Callable[..., Deployment],
    sqlite_url: str,
    sim: RunningSimulator,
    tmp_path: Path,
) -> None:
    client = await Client.connect(own_server.address)
    d = deploy(sqlite_url, TEMPORAL_ADDRESS=own_server.address)
    d.start_worker()
    handles: dict[str, WorkflowHandle[Any, VideoResult]] = {
        prompt: await start_video(
            client,
            d.settings,
            VideoRequest(prompt=prompt, poll_interval_seconds=1),
            f"restart-{uuid.uuid4()}",
        )
        for prompt in PROMPTS
    }

    async def all_polling() -> bool:
        states: list[JobProgress] = await asyncio.gather(
            *(h.query(VideoGenerationWorkflow.progress) for h in handles.values())
        )
        return all(s.polls >= 1 for s in states)

    await wait_for(all_polling, timeout=30, what="every job to be polled once")
    catalog = d.catalog()
    before = {catalog.get(h.id).status for h in handles.values()}  # type: ignore[union-attr]
    own_server.stop()
    # The outage itself: longer than a poll interval, so timers come due while the server is down.
    await asyncio.sleep(1.5)
    own_server.start()
    done = await results(handles, timeout=90)

    storage = LocalView(tmp_path / "storage")
    for prompt, handle in handles.items():
        verdict = await verify(
            "server restart",
            handle,
            done[prompt],
            prompt=prompt,
            status=JobStatus.COMPLETED,
            sim=sim,
            catalog=catalog,
            storage=storage,
        )
        assert verdict.problems == []
    assert before <= {"queued", "in_progress"}  # every job was still waiting when the server went
    assert all(w.poll() is None for w in d.workers)  # the same worker process carried on
    assert record_partials(leftovers(tmp_path / "downloads", storage, [h.id for h in handles.values()])) == []
    await no_open_workflows(client, d.settings.task_queue)
