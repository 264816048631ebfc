"""The worker: runs VideoGenerationWorkflow and its activities.

Configured by :class:`~sora_temporal.settings.Settings` (README.md lists every variable), read once
at start-up. Secrets are read here and stay here.

Two task queues are served: the shared one (workflows and most activities), and one unique to this
process for the activities that need the files this process downloaded.
"""

from __future__ import annotations

import asyncio
import logging
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
from sora_temporal.storage.factory import build_storage
from sora_temporal.storage.vercel import HttpxClientFactory
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


def build_activities(
    settings: Settings, *, blob_http_client_factory: HttpxClientFactory | None = None
) -> VideoActivities:
    """The activities with their clients built from ``settings``; creates the database tables if missing.

    Args:
        settings: The process settings.
        blob_http_client_factory: For the Vercel Blob backend, builds the HTTP client its SDK sends
            with (e.g. one routed to a local Blob emulator); the backend's own when ``None``.
    """
    sweep_abandoned_downloads(settings.download_dir)
    engine = make_engine(settings.database_url)
    try:
        create_tables(engine)
        # A storage backend holds nothing before its first call; the Sora client (a connection
        # pool) comes last, so nothing that can still fail leaves it open.
        storage = build_storage(settings.storage, http_client_factory=blob_http_client_factory)
        sora = SoraClient.from_settings(settings.sora)
    except BaseException:
        engine.dispose()
        raise
    return VideoActivities(sora=sora, storage=storage, catalog=VideoCatalog(engine), settings=settings)


async def main(*, blob_http_client_factory: HttpxClientFactory | None = None) -> None:
    """Run until SIGTERM or SIGINT, then finish in-flight activities and stop.

    Args:
        blob_http_client_factory: Passed to the Vercel Blob backend; see :func:`build_activities`.
    """
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO; quieter by default.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    activities = build_activities(settings, blob_http_client_factory=blob_http_client_factory)
    try:
        await _serve(settings, activities)
    finally:
        await activities.aclose()


async def _serve(settings: Settings, activities: VideoActivities) -> None:
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


if __name__ == "__main__":
    asyncio.run(main())
