"""Every Videos API fault the simulator can play, each on its own workflow, all at once.

Each case tags its prompt and aims its fault rules at that prompt only (``match_prompt``), so the
cases share one worker and one simulator without touching each other. The worker's HTTP timeout is
15 s, above the status check's 10 s start-to-close timeout, so a slow status answer is cut by
Temporal's activity timeout and a slow create answer by the client's own timeout.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from fault_checks import (
    LocalView,
    Verdict,
    leftovers,
    no_open_workflows,
    record_partials,
    results,
    runs_of,
    verify,
)
from simulator.testing import RunningSimulator
from sora_temporal.db import VideoCatalog
from sora_temporal.types import JobStatus, VideoRequest, VideoResult
from starter import start_video
from support import Deployment

pytestmark = [pytest.mark.faults, pytest.mark.integration]

COMPLETED = JobStatus.COMPLETED
HTTP_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Case:
    name: str
    scene: str
    faults: tuple[dict[str, Any], ...] = ()
    status: JobStatus = COMPLETED
    error_code: str | None = None
    request: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"<{self.name}>"

    @property
    def prompt(self) -> str:
        return f"{self.tag} {self.scene}"


def _rule(route: str, action: str, **params: Any) -> dict[str, Any]:
    return {"route": route, "action": action, **params}


CASES = [
    Case("create-429", "a crowded ferry", (_rule("create", "rate_limit", retry_after=3.0, count=1),)),
    Case("status-429", "a busy crossing", (_rule("retrieve", "rate_limit", retry_after=2.5, count=1),)),
    Case("create-500-burst", "a smoking kiln", (_rule("create", "error", status=500, count=2),)),
    Case("status-502-burst", "a neon sign flickers", (_rule("retrieve", "error", status=502, count=3),)),
    Case("download-503-burst", "a dam releases water", (_rule("content", "error", status=503, count=2),)),
    Case("create-lost-as-502", "a moth at a lamp", (_rule("create", "lose_response", status=502, count=1),)),
    Case(
        "create-lost-as-reset",
        "a moth at a window",
        (_rule("create", "lose_response", mode="reset", count=1),),
    ),
    Case("create-reset", "a bell tower at noon", (_rule("create", "reset", count=1),)),
    Case("status-reset", "a dog shakes off water", (_rule("retrieve", "reset", count=2),)),
    Case("download-reset", "a wave breaks", (_rule("content", "reset", count=1),)),
    Case(
        "status-slower-than-activity-timeout",
        "a sloth crosses a branch",
        (_rule("retrieve", "slow", delay=11.0, count=1),),
    ),
    Case(
        "create-answer-slower-than-http-timeout",
        "a snail on a leaf",
        (_rule("create", "slow", delay=HTTP_TIMEOUT_SECONDS + 2.0, after=True, count=1),),
    ),
    Case("download-truncated", "a train leaves", (_rule("content", "truncate", count=1),)),
    Case(
        "job-fails",
        "something forbidden [sim:fail:moderation_blocked]",
        status=JobStatus.FAILED,
        error_code="moderation_blocked",
    ),
    Case(
        "job-never-finishes",
        "a clock with no hands [sim:never]",
        status=JobStatus.TIMED_OUT,
        error_code="timed_out",
        request={"deadline_seconds": 10.0},  # the shortest deadline a request may have
    ),
    Case(
        "content-expires",
        "a sandcastle at high tide [sim:expire]",
        status=JobStatus.FAILED,
        error_code="content_expired",
    ),
]


@dataclass
class MatrixRun:
    handles: dict[str, WorkflowHandle[Any, VideoResult]]
    results: dict[str, VideoResult]
    verdicts: dict[str, Verdict]
    catalog: VideoCatalog
    sim: RunningSimulator
    leftovers: list[str]

    def jobs(self, name: str) -> list[dict[str, Any]]:
        """The simulator's jobs made for one case."""
        prompt = next(case.prompt for case in CASES if case.name == name)
        return [job for job in self.sim.jobs() if job["prompt"] == prompt]


@pytest.fixture(scope="module")
async def matrix(
    spawn: Callable[..., Deployment],
    module_dir: Path,
    module_sim: RunningSimulator,
    dev_env: WorkflowEnvironment,
) -> MatrixRun:
    sim = module_sim
    d = spawn(module_dir / "faults", sim, SORA_TIMEOUT_SECONDS=str(HTTP_TIMEOUT_SECONDS))
    d.start_worker()
    catalog = d.catalog()
    for case in CASES:
        for rule in case.faults:
            sim.add_fault(match_prompt=case.tag, **rule)

    handles = {
        case.name: await start_video(
            dev_env.client,
            d.settings,
            VideoRequest(prompt=case.prompt, poll_interval_seconds=1, **case.request),
            f"fault-{case.name}-{uuid.uuid4().hex[:8]}",
        )
        for case in CASES
    }
    done = await results(handles, timeout=100)

    storage = LocalView(Path(d.env["STORAGE_DIR"]))
    verdicts = {
        case.name: await verify(
            f"simulator fault: {case.name}",
            handles[case.name],
            done[case.name],
            prompt=case.prompt,
            status=case.status,
            error_code=case.error_code,
            sim=sim,
            catalog=catalog,
            storage=storage,
        )
        for case in CASES
    }
    await no_open_workflows(dev_env.client, d.settings.task_queue)
    left = record_partials(leftovers(Path(d.env["DOWNLOAD_DIR"]), storage, [h.id for h in handles.values()]))
    return MatrixRun(handles, done, verdicts, catalog, sim, left)


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_each_fault_ends_in_a_true_state_with_one_job_and_exact_storage(matrix: MatrixRun, name: str) -> None:
    assert matrix.verdicts[name].problems == []


async def test_a_rate_limited_create_is_retried_no_sooner_than_retry_after(matrix: MatrixRun) -> None:
    (submit,) = await runs_of(matrix.handles["create-429"], "submit_video")

    assert submit.attempt == 2 and submit.started_at is not None
    assert submit.started_at - submit.scheduled_at >= 3.0


async def test_a_rate_limited_status_check_is_retried_no_sooner_than_retry_after(matrix: MatrixRun) -> None:
    checks = await runs_of(matrix.handles["status-429"], "check_video_status")

    (limited,) = [c for c in checks if c.attempt == 2]
    assert limited.started_at is not None and limited.started_at - limited.scheduled_at >= 2.5


async def test_a_lost_create_response_is_adopted_in_both_modes(matrix: MatrixRun) -> None:
    for name in ("create-lost-as-502", "create-lost-as-reset"):
        (job,) = matrix.jobs(name)
        assert job["response_lost"] is True
        assert job["id"] == matrix.results[name].video_id


async def test_a_status_answer_slower_than_the_activity_timeout_is_asked_again(matrix: MatrixRun) -> None:
    checks = await runs_of(matrix.handles["status-slower-than-activity-timeout"], "check_video_status")

    assert any(c.attempt >= 2 for c in checks)


async def test_a_job_that_never_finishes_times_out_at_its_deadline(matrix: MatrixRun) -> None:
    result = matrix.results["job-never-finishes"]
    row = matrix.catalog.get(matrix.handles["job-never-finishes"].id)

    assert result.remote_may_be_running is True
    assert row is not None and row.completed_at is not None and row.remote_may_be_running
    assert 10.0 <= (row.completed_at - row.created_at).total_seconds() < 25.0


async def test_expired_content_fails_once_with_content_expired_instead_of_looping(matrix: MatrixRun) -> None:
    result = matrix.results["content-expires"]
    downloads = await runs_of(matrix.handles["content-expires"], "download_video")

    assert [d.attempt for d in downloads] == [1]
    assert "no longer available" in (result.error_message or "")
    assert result.remote_may_be_running is False


def test_every_fault_rule_was_played(matrix: MatrixRun) -> None:
    assert matrix.sim.stats()["faults"] == []


def test_no_download_or_partial_object_is_left_behind(matrix: MatrixRun) -> None:
    assert matrix.leftovers == []
