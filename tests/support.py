"""Helpers shared by the tests (importable as ``support``; see ``pythonpath`` in pyproject.toml)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.video import VideoActivities
from simulator.testing import RunningSimulator
from sora_temporal.db import VideoCatalog
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
