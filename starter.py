"""Command line for people: start, watch, inspect and cancel video workflows.

    python starter.py generate "a red fox in the snow" --image fox.jpg
    python starter.py status  video-1234
    python starter.py cancel  video-1234 --reason "wrong prompt"
    python starter.py list

Bad input is refused here, before a workflow starts and before anything is paid for.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from sora_temporal import search_attributes as sa
from sora_temporal.db import open_catalog
from sora_temporal.errors import ReferenceImageError
from sora_temporal.images import fit_reference, is_url
from sora_temporal.settings import Settings
from sora_temporal.types import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MODEL,
    DEFAULT_POLL_INTERVAL_SECONDS,
    DEFAULT_SECONDS,
    DEFAULT_SIZE,
    JobProgress,
    JobStatus,
    VideoRequest,
    VideoResult,
    VideoWorkflowInput,
)
from sora_temporal.validation import InvalidVideoRequest, parse_size, validate_request
from workflows.video import VideoGenerationWorkflow

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Generate videos with Sora, durably.")
out = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXIT_OK = 0
EXIT_JOB_NOT_COMPLETED = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_FOUND = 3
EXIT_UNAVAILABLE = 4


class StarterError(Exception):
    """A failure to report to the user with an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _finish(code: int) -> None:
    """Exit with ``code`` and nothing else.

    The SDK's native bridge can crash while the interpreter tears down (temporalio/sdk-python#300),
    turning a success into SIGSEGV or SIGABRT. Output is flushed and the process leaves at once.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(coro_fn: Callable[[], Coroutine[Any, Any, int]]) -> None:
    try:
        code = asyncio.run(coro_fn())
    except StarterError as err:
        err_console.print(f"[red]error:[/red] {err}")
        code = err.code
    except KeyboardInterrupt:
        code = 130
    _finish(code)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as err:
        raise StarterError(f"bad configuration: {err}", EXIT_BAD_INPUT) from err


async def _connect(settings: Settings) -> Client:
    try:
        return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    except Exception as err:
        raise StarterError(
            f"cannot reach Temporal at {settings.temporal_address} ({err}); is `make up` running?",
            EXIT_UNAVAILABLE,
        ) from err


def check_request(request: VideoRequest) -> None:
    """Validate everything that can be checked here, so bad input never reaches a worker.

    Raises:
        StarterError: With a message that names the problem.
    """
    try:
        validate_request(request.prompt, request.model, request.size, request.seconds)
        if request.poll_interval_seconds <= 0:
            raise InvalidVideoRequest("poll_interval", "poll interval must be positive")
        if request.deadline_seconds <= 0:
            raise InvalidVideoRequest("deadline", "deadline must be positive")
        if request.reference_image and not is_url(request.reference_image):
            path = Path(request.reference_image).expanduser()
            if not path.is_file():
                raise ReferenceImageError(f"{request.reference_image!r} does not exist or is not a file")
            width, height = parse_size(request.size)
            fit_reference(path.read_bytes(), width, height, name=path.name)
    except InvalidVideoRequest as err:
        raise StarterError(f"invalid {err.param}: {err.message}", EXIT_BAD_INPUT) from err
    except ReferenceImageError as err:
        raise StarterError(f"invalid image: {err}", EXIT_BAD_INPUT) from err


async def start_video(
    client: Client, settings: Settings, request: VideoRequest, workflow_id: str
) -> WorkflowHandle[Any, VideoResult]:
    """Start the workflow; a workflow id that was ever used is refused, not started twice."""
    attributes = None
    if not await sa.missing(client):
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(sa.SORA_STATUS, JobStatus.SUBMITTING.value),
                SearchAttributePair(sa.SORA_MODEL, request.model),
                SearchAttributePair(sa.SORA_PROGRESS, 0),
            ]
        )
    summary = request.prompt if len(request.prompt) <= 120 else request.prompt[:117] + "..."
    try:
        return await client.start_workflow(
            VideoGenerationWorkflow.run,
            VideoWorkflowInput(request=request),
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=attributes,
            static_summary=f"{request.model} {request.size} {request.seconds}s: {summary}",
            static_details=(
                f"**Prompt:** {request.prompt}\n\n**Model:** {request.model} · **Size:** {request.size} · "
                f"**Seconds:** {request.seconds}\n\n**Reference image:** {request.reference_image or 'none'}\n\n"
                f"Polls every {request.poll_interval_seconds:g} s, gives up after {request.deadline_seconds:g} s."
            ),
        )
    except WorkflowAlreadyStartedError as err:
        raise StarterError(
            f"a workflow with id {workflow_id!r} already exists; choose another --id (nothing was started)",
            EXIT_BAD_INPUT,
        ) from err


async def _watch(handle: WorkflowHandle[Any, VideoResult], *, show_progress: bool) -> VideoResult:
    """Wait for the result, drawing a progress bar fed by the workflow's query."""
    result_task = asyncio.create_task(handle.result())
    if not show_progress:
        return await result_task
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as bar:
        task = bar.add_task("submitting", total=100)
        while not result_task.done():
            try:
                state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
                label = state.status.value + (f" ({state.video_id})" if state.video_id else "")
                bar.update(task, completed=state.progress, description=label)
            except Exception:  # a query can miss while a worker restarts; the bar just waits
                pass
            await asyncio.wait({result_task}, timeout=0.5)
        final = result_task.result() if not result_task.exception() else None
        if final is not None:
            bar.update(
                task,
                completed=100 if final.status is JobStatus.COMPLETED else None,
                description=final.status.value,
            )
    return await result_task


def _print_result(result: VideoResult, row: dict[str, Any] | None, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps({"result": _jsonable(result), "row": row}, default=str))
        return
    colour = "green" if result.status is JobStatus.COMPLETED else "red"
    out.print(
        f"[{colour}]{result.status.value}[/{colour}] workflow {result.workflow_id} (Sora job {result.video_id})"
    )
    if result.urls.video_url:
        out.print(f"video:       {result.urls.video_url}")
        out.print(f"thumbnail:   {result.urls.thumbnail_url or '(not offered)'}")
        out.print(f"spritesheet: {result.urls.spritesheet_url or '(not offered)'}")
        out.print(f"size:        {result.byte_size} bytes, sha256 {result.sha256}")
    if result.error_code:
        out.print(f"error:       {result.error_code}: {result.error_message}")
    if result.remote_may_be_running:
        out.print("note:        the Sora job may still be running remotely (the API has no cancel call)")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(asdict(value), default=str))


def _row(settings: Settings, workflow_id: str) -> dict[str, Any] | None:
    try:
        with open_catalog(settings.database_url) as catalog:
            row = catalog.get(workflow_id)
            return row.as_dict() if row is not None else None
    except Exception:  # the table may not exist before the first worker ran
        return None


@app.command()
def generate(
    prompt: str = typer.Argument(..., help="What the video should show."),
    image: str | None = typer.Option(None, "--image", help="Reference image: a path or an http(s) URL."),
    size: str = typer.Option(DEFAULT_SIZE, help="WIDTHxHEIGHT."),
    seconds: int = typer.Option(DEFAULT_SECONDS, help="Clip length in seconds."),
    model: str = typer.Option(DEFAULT_MODEL, help="sora-2, sora-2-pro, or a gateway's model name."),
    poll_interval: float = typer.Option(DEFAULT_POLL_INTERVAL_SECONDS, help="Seconds between status checks."),
    deadline: float = typer.Option(
        DEFAULT_DEADLINE_SECONDS, help="Give up this many seconds after submission."
    ),
    workflow_id: str | None = typer.Option(None, "--id", help="Workflow id (default: video-<random>)."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Start and return at once."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Start a video workflow and (unless --no-wait) watch it to the end."""
    request = VideoRequest(
        prompt=prompt,
        model=model,
        size=size,
        seconds=seconds,
        reference_image=image,
        poll_interval_seconds=poll_interval,
        deadline_seconds=deadline,
    )

    async def go() -> int:
        check_request(request)
        settings = _settings()
        client = await _connect(settings)
        wid = workflow_id or f"video-{uuid.uuid4().hex[:12]}"
        handle = await start_video(client, settings, request, wid)
        if no_wait:
            if as_json:
                out.print_json(json.dumps({"workflow_id": wid, "run_id": handle.result_run_id}))
            else:
                out.print(f"started workflow {wid}")
            return EXIT_OK
        if not as_json:
            err_console.print(f"workflow {wid} started; Web UI: {web_ui_link(settings, wid)}")
        try:
            result = await _watch(handle, show_progress=not as_json and sys.stderr.isatty())
        except WorkflowFailureError as err:
            raise StarterError(
                f"workflow {wid} ended without a result: {err.cause or err}", EXIT_JOB_NOT_COMPLETED
            ) from err
        _print_result(result, _row(settings, wid), as_json)
        return EXIT_OK if result.status is JobStatus.COMPLETED else EXIT_JOB_NOT_COMPLETED

    _run(go)


def web_ui_link(settings: Settings, workflow_id: str) -> str:
    """Where to watch the workflow in the Temporal Web UI."""
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


@app.command()
def status(
    workflow_id: str = typer.Argument(..., help="Workflow id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show a workflow's state: live progress if it runs, the stored row either way."""

    async def go() -> int:
        settings = _settings()
        client = await _connect(settings)
        handle = client.get_workflow_handle(workflow_id)
        try:
            described = await handle.describe()
        except Exception as err:
            raise StarterError(f"no workflow with id {workflow_id!r}", EXIT_NOT_FOUND) from err
        live: JobProgress | None = None
        if described.status == WorkflowExecutionStatus.RUNNING:
            try:
                live = await handle.query(VideoGenerationWorkflow.progress)
            except Exception:
                live = None
        row = _row(settings, workflow_id)
        temporal_status = described.status.name if described.status else "UNKNOWN"
        if as_json:
            payload = {
                "workflow_id": workflow_id,
                "temporal_status": temporal_status,
                "progress": _jsonable(live) if live else None,
                "row": row,
            }
            out.print_json(json.dumps(payload, default=str))
            return EXIT_OK
        out.print(f"workflow {workflow_id}: Temporal {temporal_status}")
        if live:
            out.print(
                f"  {live.status.value} {live.progress}% · Sora job {live.video_id} · {live.polls} checks"
            )
        if row:
            table = Table(show_header=False)
            for key in (
                "status",
                "video_id",
                "progress",
                "blob_url",
                "byte_size",
                "sha256",
                "error_code",
                "error_message",
            ):
                if row.get(key) is not None:
                    table.add_row(key, str(row[key]))
            out.print(table)
        return EXIT_OK

    _run(go)


@app.command()
def cancel(
    workflow_id: str = typer.Argument(..., help="Workflow id."),
    reason: str | None = typer.Option(None, "--reason", help="Why; recorded in the row."),
) -> None:
    """Ask a running workflow to stop waiting and record ``cancelled``."""

    async def go() -> int:
        settings = _settings()
        client = await _connect(settings)
        try:
            await client.get_workflow_handle(workflow_id).signal(VideoGenerationWorkflow.cancel, reason)
        except Exception as err:
            raise StarterError(f"cannot cancel {workflow_id!r}: {err}", EXIT_NOT_FOUND) from err
        out.print(f"cancel sent to {workflow_id}")
        return EXIT_OK

    _run(go)


@app.command(name="list")
def list_jobs(
    limit: int = typer.Option(20, help="How many rows."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Recent jobs from the database."""

    async def go() -> int:
        settings = _settings()
        try:
            with open_catalog(settings.database_url) as catalog:
                rows = [row.as_dict() for row in catalog.recent(limit)]
        except Exception as err:
            raise StarterError(f"cannot read {settings.database_url}: {err}", EXIT_UNAVAILABLE) from err
        if as_json:
            out.print_json(json.dumps(rows, default=str))
            return EXIT_OK
        table = Table("workflow", "status", "%", "model", "size", "s", "stored at", "created")
        for column in table.columns[:2]:
            column.no_wrap = True
        for row in rows:
            table.add_row(
                row["workflow_id"],
                row["status"],
                str(row["progress"]),
                row["model"],
                row["size"],
                str(row["seconds"]),
                row["blob_url"] or "",
                str(row["created_at"])[:19],
            )
        out.print(table)
        return EXIT_OK

    _run(go)


if __name__ == "__main__":
    app()
