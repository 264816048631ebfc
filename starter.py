"""Command line for people: start, watch, inspect and cancel video workflows.

    python -m starter generate "a red fox in the snow" --image fox.jpg
    python -m starter status  video-1234
    python -m starter cancel  video-1234 --reason "wrong prompt"
    python -m starter list

(``python starter.py ...`` from the checkout is the same.) Bad input is refused here, before a
workflow starts and before anything is paid for. Every command takes ``--json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError

from sora_temporal import search_attributes as sa
from sora_temporal.budget import Ledger, today_utc
from sora_temporal.errors import ReferenceImageError
from sora_temporal.images import is_url
from sora_temporal.launch import start_job
from sora_temporal.netguard import redact_url
from sora_temporal.outcome import result_in_failure, was_cancelled
from sora_temporal.references import fit_local_file, hand_over, hand_over_url
from sora_temporal.schema import CatalogueUnavailable, catalogue_for_reading
from sora_temporal.settings import CHECKOUT, Settings
from sora_temporal.storage.base import StorageError
from sora_temporal.storage.factory import build_storage
from sora_temporal.types import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MODEL,
    DEFAULT_POLL_INTERVAL_SECONDS,
    DEFAULT_SECONDS,
    DEFAULT_SIZE,
    JobProgress,
    JobStatus,
    ReferenceImageInput,
    VideoRequest,
    VideoResult,
    VideoWorkflowInput,
)
from sora_temporal.validation import (
    MAX_GATEWAY_SECONDS,
    MAX_GATEWAY_SIDE,
    SORA_SECONDS,
    SORA_SIZES,
    InvalidVideoRequest,
    sora_base_model,
    validate_request,
    validate_timing,
    validate_workflow_id,
)
from workflows.video import VideoGenerationWorkflow

# Plain help (not typer's rich panels): flags read as flags, and it wraps cleanly at any width.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Generate videos with Sora, durably.",
)
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


def _run(
    coro_fn: Callable[[], Coroutine[Any, Any, int]], on_interrupt: Callable[[], str | None] | None = None
) -> None:
    """Run a command; Ctrl-C exits 130 after ``on_interrupt``'s message (what happens to the job)."""
    try:
        code = asyncio.run(coro_fn())
    except StarterError as err:
        err_console.print(f"[red]error:[/red] {escape(str(err))}")
        code = err.code
    except KeyboardInterrupt:
        note = on_interrupt() if on_interrupt is not None else None
        if note:
            err_console.print(escape(note), highlight=False)
        code = 130
    _finish(code)


def _self_command() -> str:
    """How this command line was invoked, for hints people can paste (``.venv/bin/python -m starter``)."""
    python = sys.executable
    try:
        relative = os.path.relpath(python)
        python = relative if not relative.startswith("..") else python
    except ValueError:  # another drive (Windows)
        pass
    main = sys.modules.get("__main__")
    if getattr(main, "__spec__", None) is not None:  # python -m starter
        return f"{shlex.quote(python)} -m starter"
    script = sys.argv[0] if sys.argv and sys.argv[0] else "starter.py"
    return shlex.join([python, script])


def _version(value: bool) -> None:
    if value:
        try:
            version = metadata.version("sora-temporal")
        except metadata.PackageNotFoundError:
            version = "unknown"
        print(f"sora-temporal {version}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", help="Show the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Generate videos with Sora, durably: start, watch, inspect and cancel video jobs."""


def _valid_sizes(model: str) -> str:
    base = sora_base_model(model)
    if base is not None:
        return f"valid sizes for {model}: {', '.join(SORA_SIZES[base])}"
    return f"other models (gateways): WIDTHxHEIGHT, each side 16 to {MAX_GATEWAY_SIDE}"


def _valid_seconds(model: str) -> str:
    if sora_base_model(model) is not None:
        return f"valid seconds for {model}: {', '.join(str(s) for s in SORA_SECONDS)}"
    return f"other models (gateways): 1 to {MAX_GATEWAY_SECONDS} seconds"


def _with_choices(err: InvalidVideoRequest, model: str) -> str:
    """The validation message, ending with the valid choices for a bad size or seconds."""
    message = f"invalid {err.param}: {err.message}"
    if "choose one of" in err.message:
        return message
    if err.param == "size":
        return f"{message} ({_valid_sizes(model)})"
    if err.param == "seconds":
        return f"{message} ({_valid_seconds(model)})"
    return message


SIZE_HELP = (
    "WIDTHxHEIGHT. sora-2: 1280x720 or 720x1280; sora-2-pro also 1792x1024, 1024x1792; "
    f"other (gateway) models: each side 16 to {MAX_GATEWAY_SIDE}."
)
SECONDS_HELP = (
    f"Clip length: {', '.join(str(s) for s in SORA_SECONDS)} for sora-2 and sora-2-pro; "
    f"1 to {MAX_GATEWAY_SECONDS} for other (gateway) models."
)


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


def check_request(request: VideoRequest, workflow_id: str | None = None) -> None:
    """Validate the request (and the workflow id) with the bounds the workflow itself enforces.

    So bad input never reaches a worker, and nothing is paid for.

    Raises:
        StarterError: With a message that names the problem (exit code 2).
    """
    try:
        validate_request(request.prompt, request.model, request.size, request.seconds)
        validate_timing(request.poll_interval_seconds, request.deadline_seconds, request.max_polls_per_run)
        if workflow_id is not None:
            validate_workflow_id(workflow_id)
    except InvalidVideoRequest as err:
        raise StarterError(_with_choices(err, request.model), EXIT_BAD_INPUT) from err


async def hand_over_image(image: str | None, size: str, settings: Settings) -> ReferenceImageInput | None:
    """Read and fit ``--image`` here, where the user is, and hand it to the workflow host-independently.

    A file is read on this host (a relative path from this directory), fitted to ``size`` and
    carried inline in the workflow input, or stored by content hash in the configured storage when
    even a re-encoded JPEG is too large for that. A URL is handed over for the worker to fetch.

    Raises:
        StarterError: The image cannot be used (exit code 2), or the storage failed (exit code 4).
    """
    if image is None:
        return None
    try:
        if is_url(image):
            return hand_over_url(image, policy=settings.reference_url_policy)
        fitted = await asyncio.to_thread(
            fit_local_file, image, size, max_bytes=settings.max_reference_image_bytes
        )
        storage = build_storage(settings.storage)
        try:
            return await hand_over(fitted, storage=storage)
        finally:
            await storage.aclose()
    except ReferenceImageError as err:
        raise StarterError(f"invalid image: {err}", EXIT_BAD_INPUT) from err
    except StorageError as err:
        raise StarterError(f"cannot store the reference image: {err}", EXIT_UNAVAILABLE) from err


def _reference_label(request: VideoRequest) -> str:
    """How the reference image is shown in the Web UI (never its bytes; a URL without secrets)."""
    ref = request.reference
    if ref is None:
        return redact_url(request.reference_image) if request.reference_image else "none"
    if ref.url is not None:
        return redact_url(ref.url)
    if ref.storage_key is not None:
        return f"stored copy `{ref.storage_key}`"
    return "handed over inline"


async def start_video(
    client: Client, settings: Settings, request: VideoRequest, workflow_id: str
) -> WorkflowHandle[Any, VideoResult]:
    """Start the workflow; a workflow id that was ever used is refused, not started twice."""
    if request.webhook_fallback_seconds is None and settings.webhooks.fallback_seconds is not None:
        # Webhooks are configured: an event wakes the job, polling is only their safety net.
        request = replace(request, webhook_fallback_seconds=settings.webhooks.fallback_seconds)
    try:
        return await start_job(
            client,
            VideoWorkflowInput(request=request),
            workflow_id=workflow_id,
            task_queue=settings.task_queue,
            search_attributes=not await sa.missing(client),
            reference_label=_reference_label(request),
        )
    except WorkflowAlreadyStartedError as err:
        raise StarterError(
            f"a workflow with id {workflow_id!r} already exists; choose another --id (nothing was started)",
            EXIT_BAD_INPUT,
        ) from err


async def _outcome(handle: WorkflowHandle[Any, VideoResult]) -> VideoResult:
    """The job's result however the workflow ended: it ends as the job did (``sora_temporal.outcome``).

    Raises:
        WorkflowFailureError: The workflow failed for a reason of its own (no job result in it).
    """
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        found = result_in_failure(err)
        if found is not None:
            return found
        if was_cancelled(err):
            # Cancelled through Temporal: it carries no result; the row (printed with it) has the rest.
            return VideoResult(workflow_id=handle.id, status=JobStatus.CANCELLED, error_code="cancelled")
        raise


@dataclass(frozen=True)
class Watched:
    """What ``generate`` learned: the job's result, and until when a timed-out job is still watched.

    Attributes:
        result: The result (at the deadline, for a job still watched for a late video).
        watching_until: Set when the job timed out and the workflow keeps watching the Sora job for a
            late video until then (the row becomes ``completed_late`` if it arrives).
    """

    result: VideoResult
    watching_until: datetime | None = None


def _still_watched(state: JobProgress | None) -> Watched | None:
    """A timed-out job still watched for a late video: the caller's answer, at the deadline."""
    if state is None or state.status is not JobStatus.TIMED_OUT or state.watching_until is None:
        return None
    result = VideoResult(
        workflow_id=state.workflow_id,
        status=JobStatus.TIMED_OUT,
        video_id=state.video_id,
        error_code=state.error_code,
        error_message=state.error_message,
        remote_may_be_running=True,
    )
    return Watched(result, state.watching_until)


async def _query(handle: WorkflowHandle[Any, VideoResult]) -> JobProgress | None:
    try:
        state: JobProgress = await handle.query(VideoGenerationWorkflow.progress)
    except Exception:  # a query can miss while a worker restarts; the caller just waits
        return None
    return state


async def _watch(handle: WorkflowHandle[Any, VideoResult], *, show_progress: bool) -> Watched:
    """Wait for the result, showing progress fed by the workflow's query on stderr.

    A progress bar on a terminal; elsewhere (a pipe, a log, ``make demo``) a line per change. Returns
    at the deadline when the job timed out, also while the workflow keeps watching for a late video.
    """
    result_task = asyncio.create_task(_outcome(handle))
    if not show_progress:
        while not result_task.done():
            late = _still_watched(await _query(handle))
            if late is not None:
                result_task.cancel()
                return late
            await asyncio.wait({result_task}, timeout=1.0)
        return Watched(await result_task)
    if not err_console.is_terminal:
        return await _watch_lines(handle, result_task)
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
            state = await _query(handle)
            if state is not None:
                label = state.status.value + (f" ({state.video_id})" if state.video_id else "")
                bar.update(task, completed=state.progress, description=label)
            late = _still_watched(state)
            if late is not None:
                result_task.cancel()
                bar.update(task, description=late.result.status.value)
                return late
            await asyncio.wait({result_task}, timeout=0.5)
        final = result_task.result() if not result_task.exception() else None
        if final is not None:
            bar.update(
                task,
                completed=100 if final.status.is_success else None,
                description=final.status.value,
            )
    return Watched(await result_task)


async def _watch_lines(
    handle: WorkflowHandle[Any, VideoResult], result_task: asyncio.Task[VideoResult]
) -> Watched:
    started = time.monotonic()
    last: tuple[str, int] | None = None
    while not result_task.done():
        state = await _query(handle)
        late = _still_watched(state)
        if late is not None:
            result_task.cancel()
            return late
        if state is not None and (state.status.value, state.progress) != last:
            last = (state.status.value, state.progress)
            job = f" (Sora job {state.video_id})" if state.video_id else ""
            err_console.print(
                f"[{time.monotonic() - started:5.1f}s] {state.status.value} {state.progress}%{job}",
                markup=False,
                highlight=False,
            )
        await asyncio.wait({result_task}, timeout=0.5)
    return Watched(await result_task)


def _print_result(watched: Watched, row: dict[str, Any] | None, as_json: bool) -> None:
    result = watched.result
    if as_json:
        payload = {"result": _jsonable(result), "row": row, "watching_until": watched.watching_until}
        out.print_json(json.dumps(payload, default=str))
        return
    colour = "green" if result.status.is_success else "red"
    out.print(
        f"[{colour}]{result.status.value}[/{colour}] workflow {escape(result.workflow_id)} "
        f"(Sora job {escape(str(result.video_id))})"
    )
    lines: list[tuple[str, Any]] = []
    if result.urls.video_url:
        lines += [
            ("video", result.urls.video_url),
            ("thumbnail", result.urls.thumbnail_url or "(not offered)"),
            ("spritesheet", result.urls.spritesheet_url or "(not offered)"),
            ("size", f"{result.byte_size} bytes, sha256 {result.sha256}"),
        ]
    if result.error_code:
        lines.append(("error", f"{result.error_code}: {result.error_message}"))
    if result.remote_may_be_running:
        lines.append(("note", REMOTE_MAY_RUN))
    if watched.watching_until is not None:
        me = _self_command()
        lines.append(
            (
                "still watched",
                "the job timed out for you, but the workflow keeps watching the Sora job for a late video "
                f"until {watched.watching_until:%Y-%m-%d %H:%M:%S} UTC and stores it if it arrives (status "
                f"completed_late). Follow it: `{me} status {result.workflow_id}`; stop watching: "
                f"`{me} cancel {result.workflow_id}`",
            )
        )
    _print_fields(lines)


REMOTE_MAY_RUN = "the Sora job may still be running (and billing) remotely: the Videos API has no cancel call"


def _print_fields(lines: list[tuple[str, Any]], indent: str = "") -> None:
    """``key: value`` lines, never cut: long values (URLs, paths, ids) wrap whole at any width."""
    width = max((len(key) for key, _ in lines), default=0) + 2
    for key, value in lines:
        out.print(f"{indent}{key + ':':<{width}}{value}", markup=False, highlight=False)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(asdict(value), default=str))


def _row(settings: Settings, workflow_id: str) -> dict[str, Any] | None:
    return _read_row(settings, workflow_id)[0]


def _read_row(settings: Settings, workflow_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The workflow's stored row, or why there is none to read (no catalogue, unreachable)."""
    try:
        with catalogue_for_reading(settings.database_url) as catalog:
            row = catalog.get(workflow_id)
            return (row.as_dict() if row is not None else None), None
    except CatalogueUnavailable as err:
        return None, str(err)


def _resolve_image(image: str | None) -> str | None:
    """A relative ``--image`` path missing here is looked up in the project checkout.

    So the README's ``--image assets/sample-reference.jpg`` works from any directory.
    """
    if image is None or is_url(image):
        return image
    path = Path(image).expanduser()
    if path.is_absolute() or path.exists():
        return image
    bundled = CHECKOUT / path
    if bundled.is_file():
        err_console.print(f"(using {bundled} from the project checkout)", markup=False, highlight=False)
        return str(bundled)
    return image


@app.command()
def generate(
    prompt: str = typer.Argument(..., metavar="PROMPT", help="What the video should show."),
    image: str | None = typer.Option(
        None,
        "--image",
        metavar="PATH|URL",
        help="Reference image: a file (e.g. assets/sample-reference.jpg) or an http(s) URL; "
        "fitted to --size.",
    ),
    size: str = typer.Option(DEFAULT_SIZE, metavar="WxH", help=SIZE_HELP),
    seconds: int = typer.Option(DEFAULT_SECONDS, metavar="SECONDS", help=SECONDS_HELP),
    model: str = typer.Option(
        DEFAULT_MODEL, metavar="MODEL", help="sora-2, sora-2-pro, or a gateway's model name."
    ),
    poll_interval: float = typer.Option(
        DEFAULT_POLL_INTERVAL_SECONDS, metavar="SECONDS", help="Seconds between status checks."
    ),
    deadline: float = typer.Option(
        DEFAULT_DEADLINE_SECONDS, metavar="SECONDS", help="Give up this many seconds after submission."
    ),
    workflow_id: str | None = typer.Option(
        None, "--id", metavar="ID", help="Workflow id (default: video-<random>)."
    ),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="Watch the job to its end, or start it and return at once."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Start a video job and (unless --no-wait) watch it to the end.

    Ctrl-C stops watching; the job keeps running (follow it with `status ID`, stop it with `cancel ID`).
    """
    no_wait = not wait
    image = _resolve_image(image)
    request = VideoRequest(
        prompt=prompt,
        model=model,
        size=size,
        seconds=seconds,
        poll_interval_seconds=poll_interval,
        deadline_seconds=deadline,
    )

    wid = workflow_id or f"video-{uuid.uuid4().hex[:12]}"
    phase = "checking"

    def interrupted() -> str:
        me = _self_command()
        if phase == "checking":
            return "interrupted: nothing was started"
        if phase == "starting":
            return f"interrupted while starting {wid}; see whether it started with `{me} status {wid}`"
        return (
            f"stopped watching. The job keeps running: workflow {wid} is not cancelled.\n"
            f"  follow it:  {me} status {wid}\n"
            f"  cancel it:  {me} cancel {wid}"
        )

    async def go() -> int:
        nonlocal phase
        check_request(request, wid)
        settings = _settings()
        reference = await hand_over_image(image, request.size, settings)
        client = await _connect(settings)
        phase = "starting"
        # A timed-out job is watched for a late video this long (SALVAGE_WINDOW_SECONDS).
        spend = settings.spend
        chosen = replace(
            request,
            reference=reference,
            salvage_window_seconds=spend.salvage_window_seconds,
            salvage_poll_seconds=spend.salvage_poll_seconds,
        )
        handle = await start_video(client, settings, chosen, wid)
        phase = "started"
        if no_wait:
            if as_json:
                out.print_json(json.dumps({"workflow_id": wid, "run_id": handle.result_run_id}))
            else:
                out.print(f"started workflow {wid}")
            return EXIT_OK
        if not as_json:
            err_console.print(f"workflow {wid} started; Web UI: {web_ui_link(settings, wid)}")
        try:
            watched = await _watch(handle, show_progress=not as_json)
        except WorkflowFailureError as err:
            raise StarterError(
                f"workflow {wid} ended without a result: {err.cause or err}", EXIT_JOB_NOT_COMPLETED
            ) from err
        _print_result(watched, _row(settings, wid), as_json)
        return EXIT_OK if watched.result.status.is_success else EXIT_JOB_NOT_COMPLETED

    _run(go, on_interrupt=interrupted)


def web_ui_link(settings: Settings, workflow_id: str) -> str:
    """Where to watch the workflow in the Temporal Web UI."""
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


@app.command()
def status(
    workflow_id: str = typer.Argument(..., metavar="ID", help="Workflow id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Show one job: its status, progress and stored row.

    The job status is the job's own (completed, failed, timed_out, cancelled, or a step on the way);
    the Temporal status is the workflow execution's, as the Web UI shows it.
    """

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
        row, unavailable = _read_row(settings, workflow_id)
        temporal_status = described.status.name if described.status else "UNKNOWN"
        job_status = live.status.value if live else (row or {}).get("status")
        if as_json:
            payload = {
                "workflow_id": workflow_id,
                "job_status": job_status,
                "temporal_status": temporal_status,
                "remote_may_be_running": (row or {}).get("remote_may_be_running"),
                "progress": _jsonable(live) if live else None,
                "row": row,
                "catalogue": unavailable,
            }
            out.print_json(json.dumps(payload, default=str))
            return EXIT_OK
        _print_status(settings, workflow_id, job_status, temporal_status, live, row, unavailable)
        return EXIT_OK

    _run(go)


# What Temporal's execution status means beside the job's own status.
TEMPORAL_MEANING = {
    "RUNNING": "the workflow is still working on the job",
    "COMPLETED": "the job's video is stored (completed or completed_late)",
    "FAILED": "the job failed, timed out or was refused by the budget (the job status says which)",
    "CANCELED": "the job was cancelled",
    "TERMINATED": "the workflow was terminated by an operator; the row may not show the end",
    "TIMED_OUT": "the workflow hit a Temporal timeout",
    "CONTINUED_AS_NEW": "the workflow continued in a new run",
}


def _print_status(
    settings: Settings,
    workflow_id: str,
    job_status: str | None,
    temporal_status: str,
    live: JobProgress | None,
    row: dict[str, Any] | None,
    unavailable: str | None,
) -> None:
    lines: list[tuple[str, Any]] = [
        ("job status", job_status or "unknown (nothing stored yet)"),
        ("Temporal status", f"{temporal_status} ({TEMPORAL_MEANING.get(temporal_status, 'see the Web UI')})"),
    ]
    if live:
        lines.append(("progress", f"{live.progress}% after {live.polls} status checks"))
        if live.watching_until is not None:
            lines.append(
                (
                    "still watched",
                    f"for a late video until {live.watching_until:%Y-%m-%d %H:%M:%S} UTC "
                    "(stored as completed_late if it arrives)",
                )
            )
    video_id = live.video_id if live else (row or {}).get("video_id")
    if video_id:
        lines.append(("Sora job", video_id))
    if row:
        remote = row.get("remote_may_be_running")
        lines.append(("remote_may_be_running", f"yes: {REMOTE_MAY_RUN}" if remote else "no"))
        for key, label in (
            ("blob_url", "stored at"),
            ("byte_size", "bytes"),
            ("sha256", "sha256"),
            ("error_code", "error code"),
            ("error_message", "error"),
            ("estimated_cost_usd", "estimated cost (USD)"),
            ("prompt", "prompt"),
            ("created_at", "created"),
            ("completed_at", "ended"),
        ):
            if row.get(key) not in (None, ""):
                lines.append((label, row[key]))
    else:
        lines.append(("stored row", unavailable or "none yet (the worker saves it as the job starts)"))
    lines.append(("Web UI", web_ui_link(settings, workflow_id)))
    out.print(f"workflow {workflow_id}", markup=False, highlight=False)
    _print_fields(lines, indent="  ")


@app.command()
def cancel(
    workflow_id: str = typer.Argument(..., metavar="ID", help="Workflow id."),
    reason: str | None = typer.Option(None, "--reason", metavar="TEXT", help="Why; recorded in the row."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Ask a running job to stop; it is recorded as cancelled (and the workflow ends cancelled).

    The Videos API has no cancel call: a Sora job already running may finish (and bill) remotely;
    `status ID` shows remote_may_be_running. A timed-out job still watched for a late video stops
    being watched (it stays timed_out).
    """

    async def go() -> int:
        settings = _settings()
        client = await _connect(settings)
        try:
            # Through Temporal, with the reason: the workflow records it and ends cancelled, so the
            # Web UI's status matches the job's.
            await client.get_workflow_handle(workflow_id).cancel(reason=reason or "cancelled by user")
        except Exception as err:
            raise StarterError(f"cannot cancel {workflow_id!r}: {err}", EXIT_NOT_FOUND) from err
        if as_json:
            out.print_json(json.dumps({"workflow_id": workflow_id, "cancel_sent": True}))
        else:
            out.print(
                f"cancel sent to {workflow_id}; `{_self_command()} status {workflow_id}` shows when it has stopped",
                markup=False,
                highlight=False,
            )
        return EXIT_OK

    _run(go)


@app.command(name="list")
def list_jobs(
    limit: int = typer.Option(20, metavar="N", help="How many jobs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Recent jobs from the catalogue, newest first."""

    async def go() -> int:
        settings = _settings()
        try:
            with catalogue_for_reading(settings.database_url) as catalog:
                rows = [row.as_dict() for row in catalog.recent(limit)]
        except CatalogueUnavailable as err:
            raise StarterError(str(err), EXIT_UNAVAILABLE) from err
        if as_json:
            out.print_json(json.dumps(rows, default=str))
            return EXIT_OK
        if not rows:
            out.print("no jobs yet")
        for row in rows:
            _print_job(row)
        return EXIT_OK

    _run(go)


PROMPT_SHOWN_CHARS = 160


def _print_job(row: dict[str, Any]) -> None:
    """One job as a few lines: ids, URLs and paths are printed whole and wrap, never cut."""
    status = f"{row['status']} {row['progress']}%"
    request = f"{row['model']} {row['size']} {row['seconds']}s"
    cost = row.get("estimated_cost_usd")
    if cost is not None:
        request += f" ${cost:.2f}"
    created = str(row["created_at"])[:16].replace("T", " ")
    out.print(f"{row['workflow_id']}  {status}  {request}  {created}", markup=False, highlight=False)
    prompt = " ".join(str(row["prompt"]).split())
    if len(prompt) > PROMPT_SHOWN_CHARS:
        prompt = prompt[: PROMPT_SHOWN_CHARS - 1] + "…"
    lines: list[tuple[str, Any]] = [("prompt", prompt)]
    if row.get("blob_url"):
        lines.append(("stored", row["blob_url"]))
    if row.get("error_code"):
        lines.append(("error", row["error_code"]))
    if row.get("remote_may_be_running"):
        lines.append(("note", "the Sora job may still be running remotely"))
    _print_fields(lines, indent="  ")


@app.command()
def spend(
    since: str | None = typer.Option(
        None, "--since", metavar="DATE", help="First UTC day to total (YYYY-MM-DD); default: every day."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Estimated spend by UTC day and model, today's spend and the remaining daily budget.

    Every job's estimated cost is reserved before it is created (the price table, PRICE_TABLE_*);
    BUDGET_USD_PER_DAY refuses jobs that would pass it (status rejected_budget).
    """

    async def go() -> int:
        settings = _settings()
        first: date | None = None
        if since is not None:
            try:
                first = date.fromisoformat(since)
            except ValueError as err:
                raise StarterError(
                    f"--since must be a date like 2026-01-31, got {since!r}", EXIT_BAD_INPUT
                ) from err
        try:
            with catalogue_for_reading(settings.database_url) as catalog:
                ledger = Ledger(catalog.engine)
                days = ledger.by_day(first)
                today = ledger.spent()
        except CatalogueUnavailable as err:
            raise StarterError(str(err), EXIT_UNAVAILABLE) from err
        budget = settings.spend.budget_usd_per_day
        remaining = None if budget is None else max(budget - today, Decimal(0))
        if as_json:
            payload = {
                "days": [
                    {"day": d.day.isoformat(), "model": d.model, "jobs": d.jobs, "usd": float(d.usd)}
                    for d in days
                ],
                "total_usd": float(sum((d.usd for d in days), Decimal(0))),
                "today": today_utc().isoformat(),
                "today_usd": float(today),
                "budget_usd_per_day": None if budget is None else float(budget),
                "remaining_usd_today": None if remaining is None else float(remaining),
                "api_key_budget_usd_per_day": _float_or_none(settings.spend.api_key_budget_usd_per_day),
            }
            out.print_json(json.dumps(payload))
            return EXIT_OK
        if not days:
            out.print("no spend recorded" + (f" since {first}" if first else ""), markup=False)
        for d in days:
            out.print(
                f"{d.day.isoformat()}  {d.model:<24} {d.jobs:>5} jobs  ${d.usd:>10.2f}",
                markup=False,
                highlight=False,
            )
        if days:
            total = sum((d.usd for d in days), Decimal(0))
            out.print(f"{'total':<36} ${total:>21.2f}", markup=False, highlight=False)
        lines: list[tuple[str, Any]] = [("today (UTC)", f"${today:.2f} reserved")]
        if budget is None:
            lines.append(("daily budget", "none (set BUDGET_USD_PER_DAY)"))
        else:
            lines.append(("daily budget", f"${budget:.2f}, ${remaining:.2f} left today"))
        if settings.spend.api_key_budget_usd_per_day is not None:
            lines.append(("per API key", f"${settings.spend.api_key_budget_usd_per_day:.2f} a day"))
        _print_fields(lines)
        return EXIT_OK

    _run(go)


def _float_or_none(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


if __name__ == "__main__":
    app()
