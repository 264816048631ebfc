"""Hostile workflow input, on the time-skipping server: refused before anything is paid for, images
handed over without the worker's disk, and values the database cannot take still ending the job.

Workflows here are started directly (no starter checks), as anyone with namespace access can.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from PIL import Image
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.video import VideoActivities
from simulator.testing import RunningSimulator
from sora_temporal.db import VideoCatalog
from sora_temporal.errors import ErrorType
from sora_temporal.references import fit_local_file, hand_over
from sora_temporal.settings import Settings
from sora_temporal.sora.client import SoraClient
from sora_temporal.storage.local import LocalStorage
from sora_temporal.types import (
    JobStatus,
    ReferenceImageInput,
    VideoRequest,
    VideoResult,
    VideoWorkflowInput,
)
from sora_temporal.validation import INLINE_REFERENCE_MAX_BYTES
from support import Stack, in_process_workers, job_result, migrated_engine
from workflows.video import VideoGenerationWorkflow

Start = Callable[..., Awaitable[WorkflowHandle[Any, VideoResult]]]
# Temporal warns at 256 KiB and refuses at 2 MiB per payload; the bound is 512 KB.
MAX_PAYLOAD_BYTES = 512 * 1000


def _stack(database_url: str, sim: RunningSimulator, tmp_path: Path) -> Iterator[Stack]:
    engine = migrated_engine(database_url)
    catalog = VideoCatalog(engine)
    settings = Settings(
        database_url=database_url,
        download_dir=tmp_path / "downloads",
        host_task_queue=f"host-{uuid.uuid4()}",
    )
    sora = SoraClient(base_url=sim.base_url, api_key=sim.api_key)
    activities = VideoActivities(
        sora=sora, storage=LocalStorage(tmp_path / "storage"), catalog=catalog, settings=settings
    )
    yield Stack(activities, catalog, tmp_path / "storage", settings, sim)
    engine.dispose()


@pytest.fixture
def db_stack(database_url: str, sim: RunningSimulator, tmp_path: Path) -> Iterator[Stack]:
    """Like ``stack``, once on SQLite and once on PostgreSQL."""
    yield from _stack(database_url, sim, tmp_path)


@pytest.fixture
def pg_stack(postgres_url: str, sim: RunningSimulator, tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(postgres_url, sim, tmp_path)


def _starter(
    env: WorkflowEnvironment, stack: Stack, task_queue: str, executor: ThreadPoolExecutor
) -> Callable[[], AsyncIterator[Start]]:
    async def make() -> AsyncIterator[Start]:
        client = env.client
        async with AsyncExitStack() as workers:
            for worker in in_process_workers(client, stack, task_queue, executor):
                await workers.enter_async_context(worker)

            async def run(
                prompt: str, workflow_id: str | None = None, **request: Any
            ) -> WorkflowHandle[Any, VideoResult]:
                return await client.start_workflow(
                    VideoGenerationWorkflow.run,
                    VideoWorkflowInput(request=VideoRequest(prompt=prompt, **request)),
                    id=workflow_id or f"wf-{uuid.uuid4()}",
                    task_queue=task_queue,
                )

            yield run

    return make


@pytest.fixture
async def start(
    time_skipping_env: WorkflowEnvironment, stack: Stack, task_queue: str, executor: ThreadPoolExecutor
) -> AsyncIterator[Start]:
    async for run in _starter(time_skipping_env, stack, task_queue, executor)():
        yield run


@pytest.fixture
async def start_on_db(
    time_skipping_env: WorkflowEnvironment, db_stack: Stack, task_queue: str, executor: ThreadPoolExecutor
) -> AsyncIterator[Start]:
    async for run in _starter(time_skipping_env, db_stack, task_queue, executor)():
        yield run


@pytest.fixture
async def start_on_pg(
    time_skipping_env: WorkflowEnvironment, pg_stack: Stack, task_queue: str, executor: ThreadPoolExecutor
) -> AsyncIterator[Start]:
    async for run in _starter(time_skipping_env, pg_stack, task_queue, executor)():
        yield run


def _requests(sim: RunningSimulator) -> int:
    return sum(sim.stats()["requests"].values())


async def _payload_sizes(client: Client, handle: WorkflowHandle[Any, Any], run_id: str | None) -> list[int]:
    history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
    return [len(payload.data) for event in history.events for payload in _payloads(event)]


def _payloads(event: Any) -> list[Any]:
    for name in (
        "workflow_execution_started_event_attributes",
        "activity_task_scheduled_event_attributes",
        "workflow_execution_continued_as_new_event_attributes",
    ):
        if event.HasField(name):
            return list(getattr(event, name).input.payloads)
    return []


# --- values that would strand a paid job -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"deadline_seconds": math.nan}, "deadline must be a finite number"),
        ({"deadline_seconds": math.inf}, "deadline must be a finite number"),
        ({"deadline_seconds": 1e12}, "deadline must be between 10 and 86400"),
        ({"poll_interval_seconds": math.nan}, "poll interval must be a finite number"),
        ({"poll_interval_seconds": 1e-9}, "poll interval must be between 1 and 300"),
        ({"size": " 1280x720"}, "size must look like 1280x720"),
        ({"max_polls_per_run": 0}, "max_polls_per_run must be a whole number"),
    ],
    ids=["nan deadline", "inf deadline", "1e12 deadline", "nan poll", "1e-9 poll", "spaced size", "0 polls"],
)
async def test_values_that_would_strand_a_paid_job_fail_it_before_submit(
    start: Start, stack: Stack, fields: dict[str, Any], says: str
) -> None:
    handle = await start("a cat on a windowsill", **fields)

    result = await job_result(handle)

    assert (result.status, result.error_code, result.remote_may_be_running) == (
        JobStatus.FAILED,
        "invalid_request",
        False,
    )
    assert says in (result.error_message or "")
    assert _requests(stack.sim) == 0
    row = stack.catalog.get(handle.id)
    assert row is not None and (row.status, row.error_code, row.prompt) == (
        "failed",
        "invalid_request",
        "a cat on a windowsill",
    )


@pytest.mark.parametrize(
    "workflow_id", ["w" * 300, "vidéo-1", "a b", "../../etc"], ids=["300", "non-ascii", "space", "dots"]
)
async def test_a_workflow_id_outside_the_rule_fails_the_workflow_with_no_row_and_no_request(
    start_on_db: Start, db_stack: Stack, workflow_id: str
) -> None:
    handle = await start_on_db("a heron", workflow_id=workflow_id)

    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ErrorType.INVALID_REQUEST
    assert cause.non_retryable and "ASCII" in cause.message
    assert _requests(db_stack.sim) == 0
    assert db_stack.catalog.recent() == []


# --- reference images: handed over, never read from the worker's disk ---------------------------


def _image(path: Path, size: tuple[int, int] = (400, 300), noise: bool = False) -> Path:
    image = Image.effect_noise(size, 100).convert("RGB") if noise else Image.new("RGB", size, (10, 200, 30))
    image.save(path)
    return path


async def test_a_path_named_in_the_input_is_refused_and_never_opened(
    start: Start, stack: Stack, tmp_path: Path
) -> None:
    # A perfectly good image on the worker's own disk: the old worker would have sent it to Sora.
    handle = await start("a meadow", reference_image=str(_image(tmp_path / "on-the-worker.png")))

    result = await job_result(handle)

    assert (result.status, result.error_code) == (JobStatus.FAILED, "invalid_reference_image")
    assert "never opens a path" in (result.error_message or "")
    assert _requests(stack.sim) == 0


async def test_an_inline_image_reaches_sora_and_is_not_carried_across_continue_as_new(
    start: Start, stack: Stack, tmp_path: Path, time_skipping_env: WorkflowEnvironment
) -> None:
    fitted = fit_local_file(str(_image(tmp_path / "ref.png")), "1280x720", max_bytes=10_000_000)
    reference = await hand_over(fitted, storage=None)
    assert reference.jpeg_base64 is not None

    handle = await start(
        "an hourglass [sim:duration=100]",
        reference=reference,
        poll_interval_seconds=5,
        deadline_seconds=3600,
        max_polls_per_run=2,
    )
    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED
    (job,) = stack.sim.jobs()
    assert job["has_input_reference"] is True and job["input_reference_size"] == [1280, 720]
    client = time_skipping_env.client
    later = await client.get_workflow_handle(handle.id).fetch_history()
    started = later.events[0].workflow_execution_started_event_attributes
    assert later.run_id != handle.first_execution_run_id
    assert reference.jpeg_base64[:64] not in started.input.payloads[0].data.decode()
    row = stack.catalog.get(handle.id)
    assert row is not None and row.has_reference_image is True


async def test_an_image_too_large_to_travel_inline_goes_through_storage_by_content_hash(
    start: Start, stack: Stack, tmp_path: Path, time_skipping_env: WorkflowEnvironment
) -> None:
    noisy = _image(tmp_path / "noise.png", (1792, 1024), noise=True)
    fitted = fit_local_file(str(noisy), "1792x1024", max_bytes=20_000_000)
    reference = await hand_over(fitted, storage=stack.activities.storage)
    assert reference.storage_key is not None and reference.jpeg_base64 is None

    handle = await start("static on a screen", model="sora-2-pro", size="1792x1024", reference=reference)
    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED, result.error_message
    (job,) = stack.sim.jobs()
    assert job["input_reference_size"] == [1792, 1024]
    sizes = await _payload_sizes(time_skipping_env.client, handle, handle.first_execution_run_id)
    assert max(sizes) < MAX_PAYLOAD_BYTES


async def test_every_history_payload_of_an_inline_image_stays_under_512_kb(
    start: Start, tmp_path: Path, time_skipping_env: WorkflowEnvironment
) -> None:
    # The worst case that still travels inline: a re-encoded noise frame just under the cap.
    noisy = _image(tmp_path / "noise.png", (640, 360), noise=True)
    fitted = fit_local_file(str(noisy), "720x1280", max_bytes=20_000_000)
    reference = await hand_over(fitted, storage=None)
    assert reference.jpeg_base64 is not None
    assert len(base64.b64decode(reference.jpeg_base64)) <= INLINE_REFERENCE_MAX_BYTES

    handle = await start("static, upright", size="720x1280", reference=reference)
    result = await job_result(handle)

    assert result.status is JobStatus.COMPLETED, result.error_message
    sizes = await _payload_sizes(time_skipping_env.client, handle, handle.first_execution_run_id)
    assert max(sizes) < MAX_PAYLOAD_BYTES


async def test_a_stored_image_that_does_not_match_its_hash_is_refused(
    start: Start, stack: Stack, tmp_path: Path
) -> None:
    key = f"references/{'0' * 64}.jpg"
    swapped = tmp_path / "swapped.jpg"
    Image.new("RGB", (1280, 720)).save(swapped, format="JPEG")
    await stack.activities.storage.put_file(swapped, key, "image/jpeg")

    handle = await start("a swapped picture", reference=ReferenceImageInput(storage_key=key))
    result = await job_result(handle)

    assert (result.status, result.error_code) == (JobStatus.FAILED, "invalid_reference_image")
    assert "content hash" in (result.error_message or "")
    assert stack.sim.creates() == 0


# --- values the database cannot take ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["long", "nul"])
async def test_a_gateways_poisoned_error_fields_end_the_job_recorded_and_cleaned(
    start_on_db: Start, db_stack: Stack, kind: str
) -> None:
    handle = await start_on_db(f"a failing job [sim:error={kind}]")

    result = await job_result(handle)

    assert result.status is JobStatus.FAILED
    row = db_stack.catalog.get(handle.id)
    assert row is not None and row.status == "failed"
    assert (row.error_code, row.error_message) == (result.error_code, result.error_message)
    assert row.error_code is not None and len(row.error_code) <= 128 and "\x00" not in row.error_code
    assert row.error_message is not None and "\x00" not in row.error_message


def _refuse_in_postgres(database_url: str, check: str) -> None:
    """Make the ``videos`` table refuse rows (a CHECK constraint): every such write is an IntegrityError."""
    with psycopg.connect(
        database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as db:
        db.execute(f"ALTER TABLE videos ADD CONSTRAINT hostile CHECK ({check}) NOT VALID")


async def test_a_catalogue_that_refuses_every_write_ends_the_workflow_with_nothing_paid(
    start_on_pg: Start, pg_stack: Stack
) -> None:
    _refuse_in_postgres(pg_stack.settings.database_url, "false")

    handle = await start_on_pg("a row nobody may write")
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ErrorType.SAVE_FAILED
    assert "could not record failed" in cause.message
    assert _requests(pg_stack.sim) == 0


async def test_a_terminal_state_the_catalogue_refuses_leaves_a_failed_row_and_a_failed_workflow(
    start_on_pg: Start, pg_stack: Stack
) -> None:
    _refuse_in_postgres(pg_stack.settings.database_url, "status <> 'completed'")

    handle = await start_on_pg("a video that cannot be catalogued")
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ErrorType.SAVE_FAILED
    assert json.dumps(cause.details[0]) and cause.details[0]["status"] == "completed"
    row = pg_stack.catalog.get(handle.id)
    assert row is not None and (row.status, row.error_code) == ("failed", "save_failed")
    assert "could not record completed" in (row.error_message or "")


# --- never paying twice: one owner per job ------------------------------------------------------


async def test_two_workflows_given_the_same_job_can_never_both_own_it(start: Start, stack: Stack) -> None:
    shared = f"raw:video_shared{uuid.uuid4().hex[:8]}"
    first = await start(f"first of two [sim:id={shared}]")
    second = await start(f"second of two [sim:id={shared}]")

    results = [await job_result(first), await job_result(second)]

    owners = [stack.catalog.get(h.id) for h in (first, second)]
    video_ids = [row.video_id for row in owners if row is not None and row.video_id]
    assert len(video_ids) == len(set(video_ids)) == 1
    outcomes = sorted((r.status.value, r.error_code) for r in results)
    assert outcomes == [("completed", None), ("failed", "claimed_elsewhere")]
    assert all(not r.remote_may_be_running for r in results if r.status is JobStatus.FAILED)


# --- files left behind ---------------------------------------------------------------------------


async def test_a_failed_upload_discards_its_downloads_on_the_host_that_holds_them(
    start: Start, stack: Stack, tmp_path: Path
) -> None:
    # A store that can never take the files: its root is a regular file.
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    stack.activities.storage = LocalStorage(blocked)

    handle = await start("a video with nowhere to go")
    result = await job_result(handle)

    assert (result.status, result.error_code) == (JobStatus.FAILED, "storage_error")
    assert [p for p in stack.settings.download_dir.rglob("*") if p.is_file()] == []
