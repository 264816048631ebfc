"""Record workflow histories for the replay tests: ``python tests/workflow/record_histories.py TAG``.

Runs ``VideoGenerationWorkflow`` as the working tree has it now on a fresh dev server (with our
search attributes, so their upserts are in the history) against the Sora simulator, and writes
every run's history to ``tests/workflow/histories/TAG-<case>[-runN].json``. Run it *before* changing
the workflow's command sequence, so the replay tests prove that workflows started by the old code
still replay under the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from activities.video import VideoActivities
from devtools.devstack import venv_binary
from simulator.testing import start_simulator
from sora_temporal import search_attributes as sa
from sora_temporal.db import VideoCatalog, make_engine
from sora_temporal.schema import upgrade
from sora_temporal.settings import Settings, SpendSettings
from sora_temporal.sora.client import SoraClient
from sora_temporal.storage.local import LocalStorage
from sora_temporal.types import JobStatus, VideoRequest, VideoWorkflowInput
from worker import create_workers
from workflows.video import VideoGenerationWorkflow

HERE = Path(__file__).resolve().parent / "histories"


async def _start(
    client: Client, task_queue: str, request: VideoRequest, budget_account: str | None = None
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        VideoGenerationWorkflow.run,
        VideoWorkflowInput(request=request, budget_account=budget_account),
        id=f"replay-{uuid.uuid4()}",
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.SORA_STATUS, JobStatus.SUBMITTING.value),
                SearchAttributePair(sa.SORA_MODEL, request.model),
                SearchAttributePair(sa.SORA_PROGRESS, 0),
            ]
        ),
    )


async def _save_runs(client: Client, handle: WorkflowHandle[Any, Any], tag: str, case: str) -> None:
    run_ids: list[str] = []
    async for execution in client.list_workflows(f'WorkflowId = "{handle.id}"'):
        run_ids.append(execution.run_id)
    run_ids.reverse()  # oldest first
    for index, run_id in enumerate(run_ids):
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        suffix = f"-run{index + 1}" if len(run_ids) > 1 else ""
        path = HERE / f"{tag}-{case}{suffix}.json"
        path.write_text(history.to_json())
        print(f"wrote {path.relative_to(HERE.parent.parent.parent)} ({len(history.events)} events)")


async def record(tag: str) -> None:
    HERE.mkdir(exist_ok=True)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(venv_binary("temporal")),
        search_attributes=sa.ALL,
        dev_server_log_level="error",
    )
    scratch = Path(f"/tmp/record-histories-{uuid.uuid4().hex[:8]}")
    try:
        with start_simulator(time_scale=0.01) as sim, ThreadPoolExecutor(max_workers=4) as executor:
            engine = make_engine(f"sqlite:///{scratch / 'sora.db'}")
            scratch.mkdir(parents=True, exist_ok=True)
            upgrade(engine)  # as `make migrate` does
            settings = Settings(
                download_dir=scratch / "downloads",
                host_task_queue=f"host-{uuid.uuid4()}",
                # One account with no budget at all, for the refused case; everyone else unlimited.
                spend=SpendSettings(api_key_budget_usd_per_day=Decimal(0)),
            )
            sora = SoraClient(base_url=sim.base_url, api_key=sim.api_key)
            activities = VideoActivities(
                sora=sora,
                storage=LocalStorage(scratch / "storage"),
                catalog=VideoCatalog(engine),
                settings=settings,
            )
            task_queue = f"tq-{uuid.uuid4()}"
            client = env.client
            async with AsyncExitStack() as workers:
                for worker in create_workers(
                    client,
                    activities,
                    task_queue=task_queue,
                    host_task_queue=settings.host_task_queue,
                    executor=executor,
                ):
                    await workers.enter_async_context(worker)

                # A job polled several times, its progress saved on the way, then stored.
                done = await _start(
                    client,
                    task_queue,
                    VideoRequest("a lighthouse [sim:duration=500]", poll_interval_seconds=1),
                )
                # The same, continued-as-new every two status checks.
                continued = await _start(
                    client,
                    task_queue,
                    VideoRequest(
                        "an hourglass [sim:duration=500]", poll_interval_seconds=1, max_polls_per_run=2
                    ),
                )
                # A job that never finishes: timed out at its deadline.
                timed_out = await _start(
                    client,
                    task_queue,
                    VideoRequest("a clock [sim:never]", poll_interval_seconds=1, deadline_seconds=10),
                )
                # Cancelled by signal while waiting between polls.
                cancelled = await _start(
                    client, task_queue, VideoRequest("a long take [sim:never]", poll_interval_seconds=1)
                )
                # Sora says it failed.
                failed = await _start(
                    client, task_queue, VideoRequest("something forbidden [sim:fail:moderation_blocked]")
                )
                # Cancelled through Temporal (as the starter and the API cancel).
                cancelled_by_temporal = await _start(
                    client, task_queue, VideoRequest("another long take [sim:never]", poll_interval_seconds=1)
                )
                # Slower than its 10 s deadline: timed out, then stored late within the salvage window.
                late = await _start(
                    client,
                    task_queue,
                    VideoRequest(
                        "a late tide [sim:duration=1500]",
                        poll_interval_seconds=1,
                        deadline_seconds=10,
                        salvage_window_seconds=60,
                        salvage_poll_seconds=1,
                    ),
                )
                # Never finishes: timed out, watched for 5 s, given up.
                watched = await _start(
                    client,
                    task_queue,
                    VideoRequest(
                        "a stopped clock [sim:never]",
                        poll_interval_seconds=1,
                        deadline_seconds=10,
                        salvage_window_seconds=5,
                        salvage_poll_seconds=1,
                    ),
                )
                # Refused by its account's budget before anything is sent.
                refused = await _start(
                    client, task_queue, VideoRequest("an unaffordable epic"), budget_account="api-key:broke"
                )
                await asyncio.sleep(3.5)
                await cancelled.signal(VideoGenerationWorkflow.cancel, "changed my mind")
                await cancelled_by_temporal.cancel(reason="changed my mind")
                cases = (
                    (done, "completed"),
                    (continued, "continued"),
                    (timed_out, "timed-out"),
                    (cancelled, "cancelled"),
                    (failed, "failed"),
                    (cancelled_by_temporal, "cancelled-by-temporal"),
                    (late, "completed-late"),
                    (watched, "watched-then-timed-out"),
                    (refused, "rejected-budget"),
                )
                for handle, _ in cases:
                    # Failed, timed-out, refused and cancelled jobs end their workflows so.
                    with contextlib.suppress(WorkflowFailureError):
                        await handle.result()
                for handle, case in cases:
                    await _save_runs(client, handle, tag, case)
            await sora.aclose()
            engine.dispose()
    finally:
        await env.shutdown()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: record_histories.py TAG   (e.g. v1, the workflow version being recorded)")
    asyncio.run(record(sys.argv[1]))
