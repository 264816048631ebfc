"""Helpers shared by the tests (importable as ``support``; see ``pythonpath`` in pyproject.toml)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.worker import Worker

from activities.video import VideoActivities
from devtools.devstack import start_worker, stop
from simulator.testing import RunningSimulator
from sora_temporal import schema
from sora_temporal.db import VideoCatalog, make_engine
from sora_temporal.outcome import result_in_failure, was_cancelled
from sora_temporal.settings import Settings
from sora_temporal.types import JobStatus, VideoResult
from worker import create_workers


def migrated_engine(database_url: str) -> Engine:
    """An engine on ``database_url``, brought to the newest schema revision first (as `make migrate` does)."""
    engine = make_engine(database_url)
    try:
        schema.upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


@dataclass
class Stack:
    """What a workflow test needs: activities wired to real local services."""

    activities: VideoActivities
    catalog: VideoCatalog
    storage_dir: Path
    settings: Settings
    sim: RunningSimulator


def in_process_workers(
    client: Client, stack: Stack, task_queue: str, executor: ThreadPoolExecutor
) -> list[Worker]:
    return create_workers(
        client,
        stack.activities,
        task_queue=task_queue,
        host_task_queue=stack.settings.host_task_queue,
        executor=executor,
    )


Start = Callable[..., Awaitable[WorkflowHandle[Any, VideoResult]]]
"""``start(prompt, **request_fields)``: start a ``VideoGenerationWorkflow`` (the ``start`` fixture)."""


class Deployment:
    """Worker processes configured like production, but pointed at loopback services."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.workers: list[subprocess.Popen[bytes]] = []
        self.settings = Settings(task_queue=env["TEMPORAL_TASK_QUEUE"])

    @classmethod
    def configure(
        cls, temporal_address: str, sim: RunningSimulator, root: Path, database_url: str, **extra_env: str
    ) -> Deployment:
        """Production settings, pointed at loopback services: a fresh task queue, files under ``root``.

        The database is migrated here, as an operator runs `make migrate` before starting workers.
        """
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal_address,
            "TEMPORAL_TASK_QUEUE": f"tq-{uuid.uuid4()}",
            "DATABASE_URL": database_url,
            "OPENAI_BASE_URL": sim.base_url,
            "OPENAI_API_KEY": sim.api_key,
            "STORAGE_BACKEND": "local",
            "STORAGE_DIR": str(root / "storage"),
            "DOWNLOAD_DIR": str(root / "downloads"),
            # Test servers (reference images, download links) listen on loopback over http; the
            # tests of the refusal turn this off.
            "ALLOW_PRIVATE_URLS": "true",
        }
        env.pop("BLOB_READ_WRITE_TOKEN", None)
        env.update(extra_env)
        migrated_engine(env["DATABASE_URL"]).dispose()
        return cls(env, root)

    def stop_workers(self) -> None:
        for worker in self.workers:
            stop(worker)

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = start_worker(self.env, log_path=self.tmp_path / "worker.log")
        self.workers.append(worker)
        return worker

    def catalog(self) -> VideoCatalog:
        return VideoCatalog(make_engine(self.env["DATABASE_URL"]))

    def storage_files(self) -> list[Path]:
        return sorted(p for p in Path(self.env["STORAGE_DIR"]).rglob("*") if p.is_file())


async def job_result(handle: WorkflowHandle[Any, VideoResult]) -> VideoResult:
    """The job's :class:`VideoResult`, however the workflow ended.

    A completed job completes the workflow; a failed, timed-out or refused one fails it with the
    result in its failure (``sora_temporal.outcome``); a cancelled one cancels it, and the result is
    made from the catalogue's view the workflow carried (status ``cancelled``).
    """
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        found = result_in_failure(err)
        if found is not None:
            return found
        if was_cancelled(err):
            return VideoResult(
                workflow_id=handle.id,
                status=JobStatus.CANCELLED,
                error_code="cancelled",
                error_message=str(err.cause),
            )
        raise


def fault_matrix_line(counts: dict[str, int]) -> str | None:
    """The fault matrix's summary line from its counts (``fault_checks.tally``), ``None`` for no case."""
    if not counts.get("cases"):
        return None
    return (
        f"fault matrix: {counts['cases']} cases run, {counts['lost']} jobs lost, "
        f"{counts['duplicates']} duplicate creates, {counts['orphans']} orphan/partial objects, "
        f"{counts['failing']} cases with other problems"
    )
