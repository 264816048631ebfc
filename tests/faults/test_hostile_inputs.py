"""Hostile *input* (what whoever starts a job decides), through the starter and real worker processes.

- The starter refuses values that would strand a paid job (non-finite or unbounded timing, a size
  with whitespace, workflow ids outside the documented rule) with exit code 2: no workflow starts
  and the Videos API sees no request at all, even with Temporal and a worker up.
- A relative ``--image`` works from any directory: the starter reads and fits it where the user is,
  and the workflow input carries the fitted bytes, never a path.
- Workflows started directly (bypassing the starter) with such values fail before anything is paid
  for: a ``failed`` row with ``invalid_request``, or, for an id no row can be keyed on, a failed
  workflow and no row at all.
- On PostgreSQL, a gateway's 200-character error code and NUL-laden message end the job ``failed``
  with both recorded, cleaned and cut to their columns (they used to be retried forever).

Every case counts in the fault matrix's summary line.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

import fault_checks
from devtools.devstack import ROOT
from fault_checks import LocalView, Verdict, leftovers, no_open_workflows, record_partials, results, verify
from simulator.testing import RunningSimulator
from sora_temporal.types import JobStatus, VideoRequest, VideoResult
from starter import EXIT_BAD_INPUT, start_video
from support import Deployment

pytestmark = [pytest.mark.faults, pytest.mark.integration]


@dataclass(frozen=True)
class Refused:
    """One starter invocation that must be refused: extra ``generate`` arguments and the message."""

    name: str
    args: tuple[str, ...]
    says: str


REFUSED = [
    Refused("nan deadline", ("--deadline", "nan"), "deadline must be a finite number"),
    Refused("inf deadline", ("--deadline", "inf"), "deadline must be a finite number"),
    Refused("1e12 deadline", ("--deadline", "1e12"), "deadline must be between 10 and 86400"),
    Refused("nan poll interval", ("--poll-interval", "nan"), "poll interval must be a finite number"),
    Refused("inf poll interval", ("--poll-interval", "inf"), "poll interval must be a finite number"),
    Refused("1e-9 poll interval", ("--poll-interval", "1e-9"), "poll interval must be between 1 and 300"),
    Refused("size with a space", ("--size", " 1280x720"), "size must look like 1280x720"),
    Refused("non-ASCII id", ("--id", "vidéo-1"), "workflow id 'vidéo-1' is not valid"),
    Refused("300-character id", ("--id", "w" * 300), "is not valid: use 1 to 128 ASCII"),
    Refused("id with a slash", ("--id", "../../etc"), "is not valid"),
    Refused("id with a newline", ("--id", "job-1\n"), "is not valid"),
]


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


async def _starter(deployment: Deployment, *args: str, cwd: Path, timeout: float = 90) -> Outcome:
    env = {**deployment.env, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "starter.py"),
        "generate",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(timeout):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return Outcome(process.returncode, stdout.decode(), stderr.decode())


@pytest.fixture(scope="module")
def deployment(
    spawn: Callable[..., Deployment], module_dir: Path, module_sim: RunningSimulator
) -> Deployment:
    """One worker with production settings; the cases below share it."""
    d = spawn(module_dir / "hostile-inputs", module_sim)
    d.start_worker()
    return d


def _requests(sim: RunningSimulator) -> dict[str, int]:
    return {route: n for route, n in sim.stats()["requests"].items() if n}


# --- the starter --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def cli_refusals(
    deployment: Deployment, module_sim: RunningSimulator, module_dir: Path, dev_env: WorkflowEnvironment
) -> dict[str, Outcome]:
    """Every refused invocation, all at once, with Temporal and a worker up and reachable."""
    before = _requests(module_sim)
    outcomes = await asyncio.gather(
        *(
            _starter(deployment, f"a refused start: {r.name}", "--no-wait", *r.args, cwd=module_dir)
            for r in REFUSED
        )
    )
    assert _requests(module_sim) == before, "the Videos API saw a request"
    query = f'TaskQueue="{deployment.env["TEMPORAL_TASK_QUEUE"]}"'
    started = [w.id async for w in dev_env.client.list_workflows(query)]
    assert started == [], f"workflows were started: {started}"
    for refused in REFUSED:
        fault_checks.LEDGER.append(Verdict(f"starter refuses {refused.name}", "-", 0, 0, False, 0))
    return {r.name: outcome for r, outcome in zip(REFUSED, outcomes, strict=True)}


@pytest.mark.parametrize("refused", REFUSED, ids=lambda r: r.name)
def test_the_starter_refuses_values_that_would_strand_a_paid_job(
    cli_refusals: dict[str, Outcome], refused: Refused
) -> None:
    outcome = cli_refusals[refused.name]

    assert outcome.code == EXIT_BAD_INPUT, outcome.stderr
    assert refused.says in outcome.stderr.replace("\n", " ")


async def test_a_relative_image_path_works_from_any_directory(
    deployment: Deployment, module_sim: RunningSimulator, tmp_path: Path, dev_env: WorkflowEnvironment
) -> None:
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    Image.new("RGB", (300, 200), (200, 90, 10)).save(elsewhere / "photo.png")
    workflow_id = f"relative-{uuid.uuid4().hex[:8]}"
    prompt = "a relative photo comes alive"

    outcome = await _starter(
        deployment, prompt, "--image", "photo.png", "--id", workflow_id, "--json", cwd=elsewhere
    )

    assert outcome.code == 0, outcome.stderr
    (job,) = [job for job in module_sim.jobs() if job["prompt"] == prompt]
    assert job["has_input_reference"] is True and job["input_reference_size"] == [1280, 720]
    history = (await dev_env.client.get_workflow_handle(workflow_id).fetch_history()).to_json()
    assert "photo.png" not in history and str(elsewhere) not in history


# --- workflows started directly -------------------------------------------------------------------


ROW_REFUSALS: dict[str, dict[str, Any]] = {
    "nan deadline": {"deadline_seconds": float("nan")},
    "1e12 deadline": {"deadline_seconds": 1e12},
    "1e-9 poll interval": {"poll_interval_seconds": 1e-9},
    "size with a space": {"size": " 1280x720"},
    "a path for an image": {"reference_image": "/etc/passwd"},
}
ID_REFUSALS = {
    "non-ASCII id": "vidéo-{tag}",
    "300-character id": "w{tag}" + "w" * 290,
    "slashes": "a/../{tag}",
}


async def test_workflows_started_directly_with_hostile_values_pay_for_nothing(
    deployment: Deployment, module_sim: RunningSimulator, dev_env: WorkflowEnvironment
) -> None:
    before = _requests(module_sim)
    client = dev_env.client
    rows: dict[str, WorkflowHandle[Any, VideoResult]] = {}
    for name, fields in ROW_REFUSALS.items():
        request = VideoRequest(prompt=f"a direct start: {name}", **fields)
        rows[name] = await start_video(client, deployment.settings, request, f"direct-{uuid.uuid4().hex[:8]}")
    no_rows = {
        name: await start_video(
            client,
            deployment.settings,
            VideoRequest(prompt=f"a direct start: {name}"),
            pattern.format(tag=uuid.uuid4().hex[:8]),
        )
        for name, pattern in ID_REFUSALS.items()
    }

    done = await results(rows, timeout=60)
    for name, handle in rows.items():
        code = "invalid_reference_image" if "image" in name else "invalid_request"
        verdict = await verify(
            f"direct start: {name}",
            handle,
            done[name],
            prompt=f"a direct start: {name}",
            status=JobStatus.FAILED,
            error_code=code,
            sim=module_sim,
            catalog=deployment.catalog(),
            storage=LocalView(Path(deployment.env["STORAGE_DIR"])),
            creates=0,
        )
        assert verdict.problems == [], name
    catalog = deployment.catalog()
    for name, handle in no_rows.items():
        async with asyncio.timeout(60):
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result()
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError) and cause.non_retryable, name
        assert (await handle.describe()).status is WorkflowExecutionStatus.FAILED
        assert catalog.get(handle.id) is None, name
        fault_checks.LEDGER.append(Verdict(f"direct start: {name}", handle.id, 0, 0, False, 0))
    assert _requests(module_sim) == before, "the Videos API saw a request"
    await no_open_workflows(client, deployment.settings.task_queue)


# --- values the database cannot take --------------------------------------------------------------


@pytest.mark.postgres
async def test_poisoned_error_fields_end_the_job_recorded_on_postgresql(
    deploy: Callable[..., Deployment], postgres_url: str, sim: RunningSimulator, dev_env: WorkflowEnvironment
) -> None:
    d = deploy(postgres_url)
    d.start_worker()
    prompts = {kind: f"a poisoned failure ({kind}) [sim:error={kind}]" for kind in ("long", "nul")}
    handles = {
        kind: await start_video(
            dev_env.client, d.settings, VideoRequest(prompt=prompt), f"poisoned-{kind}-{uuid.uuid4().hex[:8]}"
        )
        for kind, prompt in prompts.items()
    }

    done = await results(handles, timeout=90)

    catalog = d.catalog()
    for kind, handle in handles.items():
        result = done[kind]
        verdict = await verify(
            f"poisoned error fields ({kind}) on PostgreSQL",
            handle,
            result,
            prompt=prompts[kind],
            status=JobStatus.FAILED,
            sim=sim,
            catalog=catalog,
            storage=LocalView(Path(d.env["STORAGE_DIR"])),
        )
        assert verdict.problems == [], kind
        row = catalog.get(handle.id)
        assert row is not None and row.error_code and row.error_message
        assert len(row.error_code) <= 128 and "\x00" not in row.error_code + row.error_message
    workflow_ids = [handle.id for handle in handles.values()]
    storage = LocalView(Path(d.env["STORAGE_DIR"]))
    assert record_partials(leftovers(Path(d.env["DOWNLOAD_DIR"]), storage, workflow_ids)) == []
