"""The worker: runs VideoGenerationWorkflow and its activities.

Environment (see README.md): TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, DATABASE_URL,
OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_AUTH_STYLE, STORAGE_BACKEND and the storage variables.
Secrets are read here and stay here.

Two task queues are served: the shared one (workflows and most activities), and one unique to this
process for the activities that need the files this process downloaded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.video import VideoActivities
from sora_temporal import search_attributes
from sora_temporal.db import VideoCatalog, create_tables, make_engine
from sora_temporal.housekeeping import sweep_abandoned_downloads
from sora_temporal.settings import Settings
from sora_temporal.sora.client import SoraClient
from sora_temporal.storage.factory import storage_from_env
from workflows.video import VideoGenerationWorkflow

log = logging.getLogger("sora_temporal.worker")


def create_workers(
    client: Client,
    activities: VideoActivities,
    *,
    task_queue: str,
    host_task_queue: str,
    executor: ThreadPoolExecutor,
) -> list[Worker]:
    """The shared-queue worker and this host's worker."""
    shared = Worker(
        client,
        task_queue=task_queue,
        workflows=[VideoGenerationWorkflow],
        activities=activities.all(),
        activity_executor=executor,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
    host = Worker(
        client,
        task_queue=host_task_queue,
        activities=activities.host_bound(),
        activity_executor=executor,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
    return [shared, host]


def build_activities(settings: Settings, env: dict[str, str] | None = None) -> VideoActivities:
    """Clients from the environment; creates the database tables if missing."""
    env = dict(os.environ) if env is None else env
    sweep_abandoned_downloads(settings.download_dir)
    engine = make_engine(settings.database_url)
    create_tables(engine)
    return VideoActivities(
        sora=SoraClient.from_env(env),
        storage=storage_from_env(env),
        catalog=VideoCatalog(engine),
        settings=settings,
    )


async def main() -> None:
    """Run until SIGTERM or SIGINT, then finish in-flight activities and stop."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request URL at INFO; quieter by default.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings.from_env()
    activities = build_activities(settings)
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    missing = await search_attributes.missing(client)
    if missing:
        log.warning(search_attributes.how_to_create(missing, settings.temporal_namespace))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=8) as executor:
        workers = create_workers(
            client,
            activities,
            task_queue=settings.task_queue,
            host_task_queue=settings.host_task_queue,
            executor=executor,
        )
        runs = [asyncio.create_task(w.run()) for w in workers]
        log.info(
            "worker ready: task queue %s, host queue %s, storage %s",
            settings.task_queue,
            settings.host_task_queue,
            activities.storage.name,
        )
        print(f"worker ready on task queue {settings.task_queue}", flush=True)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([stopped, *runs], return_when=asyncio.FIRST_COMPLETED)
        log.info("shutting down")
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        for run in runs:
            if run.done() and run.exception():
                raise run.exception()  # type: ignore[misc]
    await activities.sora.aclose()
    await activities.storage.aclose()


if __name__ == "__main__":
    asyncio.run(main())
