"""Checks shared by the fault matrix: one verdict per case, and a ledger for the summary line.

Every case is held to the same promises: the workflow ended in the expected terminal state, the
database row says the same, the simulator made exactly the expected number of jobs for it (a job
whose create response was lost counts; a refused create does not), storage holds exactly the
expected objects, complete and with the recorded sha256, and nothing partial is left anywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from simulator.blob.testing import RunningBlobEmulator
from simulator.testing import RunningSimulator
from sora_temporal.db import VideoCatalog
from sora_temporal.storage.base import object_pathname, unique_name
from sora_temporal.types import JobStatus, VideoResult
from support import fault_matrix_line, job_result

# What Temporal's own status must say for each terminal job status: the Web UI tells the truth.
TEMPORAL_STATUS = {
    JobStatus.COMPLETED: WorkflowExecutionStatus.COMPLETED,
    JobStatus.COMPLETED_LATE: WorkflowExecutionStatus.COMPLETED,
    JobStatus.FAILED: WorkflowExecutionStatus.FAILED,
    JobStatus.TIMED_OUT: WorkflowExecutionStatus.FAILED,
    JobStatus.REJECTED_BUDGET: WorkflowExecutionStatus.FAILED,
    JobStatus.CANCELLED: WorkflowExecutionStatus.CANCELED,
}

VARIANTS = {"video": "mp4", "thumbnail": "thumbnail.webp", "spritesheet": "spritesheet.jpg"}


# --- the ledger behind the summary line ---------------------------------------------------------


@dataclass
class Verdict:
    """What one case came to."""

    case: str
    workflow_id: str
    creates: int
    expected_creates: int
    lost: bool
    orphans: int
    problems: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return max(0, self.creates - self.expected_creates)


LEDGER: list[Verdict] = []
PARTIALS: list[str] = []


def record_partials(found: Iterable[str]) -> list[str]:
    """Note partial or stray files found after a group of cases; returns them."""
    found = list(found)
    PARTIALS.extend(found)
    return found


def tally() -> dict[str, int]:
    """The counts behind the summary line (``tests/conftest.py`` adds up those of parallel workers)."""
    return {
        "cases": len(LEDGER),
        "lost": sum(1 for v in LEDGER if v.lost),
        "duplicates": sum(v.duplicates for v in LEDGER),
        "orphans": sum(v.orphans for v in LEDGER) + len(PARTIALS),
        "failing": sum(1 for v in LEDGER if v.problems),
    }


def summary_line() -> str | None:
    """``fault matrix: N cases, ...`` or ``None`` when no case ran."""
    return fault_matrix_line(tally())


# --- waiting ------------------------------------------------------------------------------------


async def wait_for(
    condition: Callable[[], Awaitable[bool] | bool], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = condition()
        if isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


async def results(
    handles: dict[str, WorkflowHandle[Any, VideoResult]], *, timeout: float
) -> dict[str, VideoResult]:
    """Every workflow's result, all within one bounded wait."""
    async with asyncio.timeout(timeout):
        done = await asyncio.gather(*(job_result(h) for h in handles.values()))
    return dict(zip(handles, done, strict=True))


async def no_open_workflows(client: Client, task_queue: str, *, timeout: float = 15.0) -> None:
    """Fail unless no workflow on ``task_queue`` is still running (visibility lags a little)."""
    query = f'TaskQueue="{task_queue}" AND ExecutionStatus="Running"'
    still: list[str] = []

    async def none_open() -> bool:
        still[:] = [w.id async for w in client.list_workflows(query)]
        return not still

    try:
        await wait_for(none_open, timeout=timeout, what="open workflows to close", interval=0.25)
    except AssertionError:
        raise AssertionError(f"workflows still running on {task_queue}: {still}") from None


# --- history --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityRun:
    """One scheduled activity as the history tells it."""

    name: str
    scheduled_at: float
    started_at: float | None
    attempt: int


async def activity_runs(handle: WorkflowHandle[Any, Any]) -> list[ActivityRun]:
    """Activities of the workflow's first run, in order (started = the last attempt's start).

    Local activities (the status checks and saves) count too, from their markers, on the server's
    clock: scheduled is when the workflow task that ran the first attempt started, and "started"
    is when the marker was written, just after the last attempt ended.
    """
    scheduled: dict[int, tuple[str, float]] = {}
    started: dict[int, tuple[float, int]] = {}
    task_started: float | None = None  # the first workflow task since the last other command
    async for event in handle.fetch_history_events():
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            task_started = task_started if task_started is not None else at
        elif event.event_type not in _TASK_OR_MARKER:
            task_started = None
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            local = _local_activity(event.marker_recorded_event_attributes)
            if local is not None:
                name, attempt = local
                scheduled[event.event_id] = (name, task_started if task_started is not None else at)
                started[event.event_id] = (at, attempt)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            started[attrs.scheduled_event_id] = (at, attrs.attempt)
    runs = []
    for event_id, (name, at) in sorted(scheduled.items()):
        start, attempt = started.get(event_id, (None, 0))
        runs.append(ActivityRun(name, at, start, attempt))
    return runs


_TASK_OR_MARKER = (
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_MARKER_RECORDED,
)


def _local_activity(marker: Any) -> tuple[str, int] | None:
    """``(activity type, attempt)`` of a local activity's marker; ``None`` for other markers."""
    if marker.marker_name != "core_local_activity" or "data" not in marker.details:
        return None
    data = json.loads(marker.details["data"].payloads[0].data)
    return str(data["activity_type"]), int(data["attempt"])


async def runs_of(handle: WorkflowHandle[Any, Any], name: str) -> list[ActivityRun]:
    return [run for run in await activity_runs(handle) if run.name == name]


# --- storage --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    size: int
    sha256: str


class StorageView(Protocol):
    def objects(self) -> dict[str, StoredFile]: ...

    def partials(self) -> list[str]: ...


@dataclass
class LocalView:
    """The local backend's directory."""

    root: Path

    def objects(self) -> dict[str, StoredFile]:
        found = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not _looks_partial(path):
                data = path.read_bytes()
                found[path.relative_to(self.root).as_posix()] = StoredFile(
                    len(data), hashlib.sha256(data).hexdigest()
                )
        return found

    def partials(self) -> list[str]:
        return [str(p) for p in self.root.rglob("*") if p.is_file() and _looks_partial(p)]


@dataclass
class BlobView:
    """The Blob emulator's store."""

    emulator: RunningBlobEmulator

    def objects(self) -> dict[str, StoredFile]:
        return {o.pathname: StoredFile(o.size, o.sha256) for o in self.emulator.objects()}

    def partials(self) -> list[str]:
        stray = [str(p) for p in (self.emulator.root / "tmp").rglob("*") if p.is_file()]
        return stray + [f"unfinished multipart upload of {u['pathname']}" for u in self.emulator.uploads()]


def _looks_partial(path: Path) -> bool:
    return path.name.endswith((".part", ".tmp")) or path.name.startswith(".")


def leftovers(download_dir: Path, storage: StorageView, workflow_ids: Iterable[str]) -> list[str]:
    """What should not exist once every workflow finished: any download, any partial object, and any
    object outside the ``videos/<workflow id>/`` folders of ``workflow_ids``."""
    downloads = [str(p) for p in download_dir.rglob("*") if p.is_file()] if download_dir.exists() else []
    prefixes = tuple(f"videos/{unique_name(wid)}/" for wid in workflow_ids)
    strays = [name for name in storage.objects() if not name.startswith(prefixes)]
    return downloads + storage.partials() + strays


def served(sim: RunningSimulator, video_id: str, variant: str) -> bytes:
    response = httpx.get(
        f"{sim.base_url}/videos/{video_id}/content",
        params={"variant": variant},
        headers={"Authorization": f"Bearer {sim.api_key}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.content


# --- one case -------------------------------------------------------------------------------------


async def verify(
    case: str,
    handle: WorkflowHandle[Any, VideoResult],
    result: VideoResult,
    *,
    prompt: str,
    status: JobStatus,
    sim: RunningSimulator,
    catalog: VideoCatalog,
    storage: StorageView,
    error_code: str | None = None,
    creates: int = 1,
    absent: tuple[str, ...] = (),
) -> Verdict:
    """Check one finished case against every promise, record it in the ledger, and return it.

    ``absent`` names variants a completed job must *not* have stored (a wrong thumbnail is dropped).
    ``problems`` lists each broken promise; callers assert it is empty.
    """
    problems: list[str] = []
    lost = False
    if result.status is not status:
        problems.append(
            f"ended {result.status.value} ({result.error_code}: {result.error_message}), expected {status.value}"
        )
    if error_code is not None and result.error_code != error_code:
        problems.append(f"error code {result.error_code!r} ({result.error_message}), expected {error_code!r}")
    described = await handle.describe()
    expected_execution = TEMPORAL_STATUS.get(result.status)
    if described.status is not expected_execution:
        if described.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.TERMINATED, None):
            lost = True
        problems.append(f"workflow execution is {described.status}, expected {expected_execution}")

    row = catalog.get(handle.id)
    if row is None:
        lost = True
        problems.append("no database row")
    else:
        if row.status != result.status.value or not JobStatus(row.status).is_terminal:
            lost = True
            problems.append(f"row status {row.status!r} but the workflow ended {result.status.value}")
        if (row.video_id, row.error_code) != (result.video_id, result.error_code):
            problems.append(
                f"row has video {row.video_id} / code {row.error_code}, "
                f"the workflow {result.video_id} / {result.error_code}"
            )
        if result.status is JobStatus.COMPLETED and (
            (row.sha256, row.byte_size, row.blob_url)
            != (result.sha256, result.byte_size, result.urls.video_url)
        ):
            problems.append("row's sha256, size or URL differ from the workflow's result")

    jobs = [job for job in sim.jobs() if job["prompt"] == prompt]
    if len(jobs) != creates:
        problems.append(f"the simulator made {len(jobs)} jobs for this prompt, expected {creates}")
    if result.video_id is not None and result.video_id not in {job["id"] for job in jobs}:
        problems.append(f"the recorded video {result.video_id} is not a job of this prompt")

    prefix = f"videos/{unique_name(handle.id)}/"
    mine = {name: f for name, f in storage.objects().items() if name.startswith(prefix)}
    expected: set[str] = set()
    if result.status is JobStatus.COMPLETED and result.video_id and row is not None:
        for variant, suffix in VARIANTS.items():
            if variant in absent:
                continue
            name = object_pathname("videos", handle.id, result.video_id, suffix)
            expected.add(name)
            body = served(sim, result.video_id, variant)
            got = mine.get(name)
            if got is None:
                problems.append(f"{name} is missing")
            elif got != StoredFile(len(body), hashlib.sha256(body).hexdigest()):
                problems.append(f"{name} differs from what Sora served ({got.size} bytes)")
        video = mine.get(object_pathname("videos", handle.id, result.video_id, "mp4"))
        if video is not None and (video.sha256, video.size) != (row.sha256, row.byte_size):
            problems.append("the stored MP4 does not match the sha256 and size recorded in the row")
    orphans = sorted(set(mine) - expected)
    if orphans:
        problems.append(f"unexpected objects: {orphans}")

    verdict = Verdict(case, handle.id, len(jobs), creates, lost, len(orphans), problems)
    LEDGER.append(verdict)
    return verdict
