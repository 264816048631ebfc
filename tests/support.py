"""Helpers shared by the tests (importable as ``support``; see ``pythonpath`` in pyproject.toml)."""

from __future__ import annotations

import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.video import VideoActivities
from devtools.devstack import start_worker, stop
from simulator.testing import RunningSimulator
from sora_temporal.db import VideoCatalog, make_engine
from sora_temporal.settings import Settings
from worker import create_workers


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
        """Production settings, pointed at loopback services: a fresh task queue, files under ``root``."""
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
        }
        env.pop("BLOB_READ_WRITE_TOKEN", None)
        env.update(extra_env)
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
