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
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities.video import VideoActivities
from sora_temporal import housekeeping, logs, metrics, search_attributes
from sora_temporal.db import VideoCatalog, make_engine
from sora_temporal.notify import Notifier
from sora_temporal.schema import SchemaProblem, ensure_current
from sora_temporal.settings import Settings, StorageBackend, WorkerTuning
from sora_temporal.sora.client import SoraClient
from sora_temporal.storage.factory import build_storage
from sora_temporal.storage.vercel import HttpxClientFactory
from workflows.notify import NotifyApplicationWorkflow
from workflows.video import VideoGenerationWorkflow

log = logging.getLogger("sora_temporal.worker")
# Exit status of a worker that refuses to start (configuration or schema); the message says why.
EXIT_REFUSED = 2


class StartupRefused(Exception):
    """The worker cannot run as configured; the message says why and what to do."""


def create_workers(
    client: Client,
    activities: VideoActivities,
    *,
    task_queue: str,
    host_task_queue: str,
    executor: ThreadPoolExecutor,
    tuning: WorkerTuning | None = None,
) -> list[Worker]:
    """The shared-queue worker and this host's worker.

    Args:
        client: A connected Temporal client.
        activities: The activities, registered on both workers.
        task_queue: The shared task queue (workflows and most activities).
        host_task_queue: This process's own queue (the activities that need its downloads).
        executor: The threads behind the synchronous activities.
        tuning: Concurrency, pollers and cache; the SDK's defaults where ``None``.
    """
    tuning = tuning or WorkerTuning()
    shared = Worker(
        client,
        task_queue=task_queue,
        workflows=[VideoGenerationWorkflow, NotifyApplicationWorkflow],
        activities=activities.all(),
        activity_executor=executor,
        graceful_shutdown_timeout=timedelta(seconds=10),
        max_cached_workflows=tuning.max_cached_workflows,
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=tuning.sticky_queue_timeout_seconds),
        max_concurrent_activities=tuning.max_concurrent_activities,
        max_concurrent_local_activities=tuning.max_concurrent_local_activities,
        max_concurrent_workflow_tasks=tuning.max_concurrent_workflow_tasks,
        max_concurrent_workflow_task_polls=tuning.workflow_task_pollers,
        max_concurrent_activity_task_polls=tuning.activity_task_pollers,
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
    """The activities with their clients built from ``settings``.

    The catalogue must be at the newest schema revision; the default embedded SQLite file is
    upgraded here, any other database with ``make migrate``.

    Args:
        settings: The process settings.
        blob_http_client_factory: For the Vercel Blob backend, builds the HTTP client its SDK sends
            with (e.g. one routed to a local Blob emulator); the backend's own when ``None``.

    Raises:
        StartupRefused: No Videos API endpoint is configured, or the schema is not current.
    """
    try:
        settings.sora.endpoint()
    except ValueError as err:
        raise StartupRefused(str(err)) from err
    housekeeping.sweep(settings.download_dir, _local_storage_dir(settings))
    engine = make_engine(settings.database_url)
    try:
        try:
            ensure_current(engine, auto_upgrade=settings.embedded_database)
        except SchemaProblem as err:
            raise StartupRefused(str(err)) from err
        # A storage backend holds nothing before its first call; the Sora client (a connection
        # pool) comes last, so nothing that can still fail leaves it open.
        storage = build_storage(settings.storage, http_client_factory=blob_http_client_factory)
        sora = SoraClient.from_settings(settings.sora, url_policy=settings.download_url_policy)
    except BaseException:
        engine.dispose()
        raise
    outbound = settings.outbound
    notifier = Notifier(outbound.url, outbound.secret) if outbound.url and outbound.secret else None
    return VideoActivities(
        sora=sora, storage=storage, catalog=VideoCatalog(engine), settings=settings, notifier=notifier
    )


async def main(*, blob_http_client_factory: HttpxClientFactory | None = None) -> None:
    """Run until SIGTERM or SIGINT, then finish in-flight activities and stop.

    Args:
        blob_http_client_factory: Passed to the Vercel Blob backend; see :func:`build_activities`.
    """
    try:
        settings = Settings.from_env()
    except ValueError as err:
        raise StartupRefused(f"bad configuration: {err}") from err
    logs.configure(settings.log_level, settings.log_format)
    activities = build_activities(settings, blob_http_client_factory=blob_http_client_factory)
    try:
        await _serve(settings, activities)
    finally:
        await activities.aclose()


async def _serve(settings: Settings, activities: VideoActivities) -> None:
    exporter: metrics.MetricsServer | None = None
    sdk_port = metrics.free_loopback_port() if settings.metrics_port else None
    runtime = metrics.temporal_runtime(sdk_port)
    if settings.metrics_port:
        # The SDK serves its metrics on a loopback port of its own; ours passes them through.
        try:
            exporter = metrics.serve(
                settings.metrics_host,
                settings.metrics_port,
                catalog=activities.catalog,
                temporal_metrics_url=f"http://127.0.0.1:{sdk_port}/metrics",
            )
        except OSError as err:
            raise StartupRefused(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} (METRICS_PORT): {err}"
            ) from err
        log.info("metrics on %s", exporter.url)
    try:
        await _run_workers(settings, activities, runtime)
    finally:
        if exporter is not None:
            exporter.close()


async def _run_workers(settings: Settings, activities: VideoActivities, runtime: Runtime) -> None:
    client = await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, runtime=runtime
    )
    missing = await search_attributes.missing(client)
    if missing:
        log.warning(search_attributes.how_to_create(missing, settings.temporal_namespace))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=settings.worker.activity_threads) as executor:
        workers = create_workers(
            client,
            activities,
            task_queue=settings.task_queue,
            host_task_queue=settings.host_task_queue,
            executor=executor,
            tuning=settings.worker,
        )
        runs = [asyncio.create_task(w.run()) for w in workers]
        log.info(
            "worker ready: task queue %s, host queue %s, storage %s, webhooks to the application %s",
            settings.task_queue,
            settings.host_task_queue,
            activities.storage.name,
            # Never the URL: it may carry a token.
            "on" if activities.notifier else "off",
        )
        print(f"worker ready on task queue {settings.task_queue}", flush=True)
        stopped = asyncio.create_task(stop.wait())
        sweeping = asyncio.create_task(_sweep_periodically(settings))
        await asyncio.wait([stopped, *runs], return_when=asyncio.FIRST_COMPLETED)
        sweeping.cancel()
        log.info("shutting down")
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        for run in runs:
            if run.done() and run.exception():
                raise run.exception()  # type: ignore[misc]


def _local_storage_dir(settings: Settings) -> Path | None:
    """The local storage backend's root (its half-written objects are swept); ``None`` for Blob."""
    return settings.storage.directory if settings.storage.backend is StorageBackend.LOCAL else None


async def _sweep_periodically(settings: Settings) -> None:
    """Housekeeping every ``SWEEP_EVERY`` while the worker runs, not only at start-up."""
    while True:
        await asyncio.sleep(housekeeping.SWEEP_EVERY.total_seconds())
        await asyncio.to_thread(housekeeping.sweep, settings.download_dir, _local_storage_dir(settings))


def run() -> int:
    """``python worker.py``: exit status 0 after a clean stop, ``EXIT_REFUSED`` (with the reason) if it cannot start."""
    try:
        asyncio.run(main())
    except StartupRefused as err:
        if logging.getLogger().handlers:
            log.critical("refusing to start: %s", err)
        else:
            print(f"worker: refusing to start: {err}", file=sys.stderr, flush=True)
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(run())
