"""Workflow tests: the Sora simulator runs on the time-skipping server's clock.

Timers skip, so a simulator on the wall clock would see a job's whole life as a few hundred
milliseconds of polls (and a quick poll loop would reach its deadline first). Here every request
to the simulator first reads the Temporal test server's clock, so a job is exactly as far along as
the workflow's timers say, and a test sees the same polls on every run.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from google.protobuf.empty_pb2 import Empty
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from simulator.app import Simulator
from simulator.config import SimConfig
from simulator.testing import RunningSimulator
from sora_temporal.types import VideoRequest, VideoResult, VideoWorkflowInput
from support import Stack, Start, in_process_workers
from workflows.video import VideoGenerationWorkflow

# At this scale the simulator's poll hint is 5 s (the workflow's default interval stays in force)
# and a 4 s clip renders in about 25 s of workflow time: five status checks.
TIME_SCALE = 0.5
API_KEY = "sk-sim-test"


class _ServerClockSimulator:
    """A simulator served from a thread of its own (so the tests' synchronous control calls work)."""

    def __init__(self, temporal_address: str, data_dir: Path) -> None:
        self.temporal_address = temporal_address
        self.data_dir = data_dir
        self.port: int | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="server-clock-simulator", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(timeout=30) or self.port is None:
            raise RuntimeError(f"the server-clock simulator did not start: {self._failure!r}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as err:
            self._failure = err
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        client = await Client.connect(self.temporal_address)
        now = [0.0]

        @web.middleware
        async def follow_server_clock(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            answer = await client.test_service.get_current_time(Empty())
            now[0] = answer.time.ToDatetime().replace(tzinfo=UTC).timestamp()
            return await handler(request)

        simulator = Simulator(
            SimConfig(time_scale=TIME_SCALE, api_key=API_KEY, data_dir=self.data_dir), clock=lambda: now[0]
        )
        app = simulator.build_app()
        app.middlewares.insert(0, follow_server_clock)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            self.port = int(runner.addresses[0][1])
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


@pytest.fixture
def sim(time_skipping_env: WorkflowEnvironment, tmp_path: Path) -> Iterator[RunningSimulator]:
    """The Sora simulator on the time-skipping server's clock (overrides the wall-clock one)."""
    server = _ServerClockSimulator(
        time_skipping_env.client.service_client.config.target_host, tmp_path / f"sim-{uuid.uuid4().hex[:6]}"
    )
    server.start()
    root = f"http://127.0.0.1:{server.port}"
    process: Any = None  # no subprocess: the simulator lives in this process
    running = RunningSimulator(root_url=root, base_url=root + "/v1", api_key=API_KEY, process=process)
    try:
        yield running
    finally:
        running.close()
        server.stop()


@pytest.fixture
async def start(
    time_skipping_env: WorkflowEnvironment, stack: Stack, task_queue: str, executor: ThreadPoolExecutor
) -> AsyncIterator[Start]:
    """Run the test's in-process workers and return a function that starts a workflow on them."""
    client = time_skipping_env.client
    async with AsyncExitStack() as workers:
        for worker in in_process_workers(client, stack, task_queue, executor):
            await workers.enter_async_context(worker)

        async def run(prompt: str, **request: Any) -> WorkflowHandle[Any, VideoResult]:
            return await client.start_workflow(
                VideoGenerationWorkflow.run,
                VideoWorkflowInput(request=VideoRequest(prompt=prompt, **request)),
                id=f"wf-{uuid.uuid4()}",
                task_queue=task_queue,
            )

        yield run
