"""Workflows started by earlier versions of the code still replay under the current one.

``histories/`` holds histories recorded by ``record_histories.py`` with the workflow as it was
before a change of its command sequence (``v1-*``: the plain poll loop, one remote status-check
activity, a save and a search-attribute upsert per poll; ``v2-*``: the lean loop, patches decided
where they are used; ``v3-*``: every patch decided in the run's first workflow task). A worker
running today's code must be able to pick any of them up mid-flight: a nondeterminism error here
means running workflows would stall.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.video import VideoGenerationWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
WITH_WAITS = [p for p in HISTORIES if "timerStartedEventAttributes" in p.read_text()]


def test_there_are_recorded_histories() -> None:
    assert len(HISTORIES) >= 5


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())

    result = await Replayer(workflows=[VideoGenerationWorkflow]).replay_workflow(
        history, raise_on_replay_failure=False
    )

    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


@pytest.mark.parametrize("path", WITH_WAITS, ids=[p.stem for p in WITH_WAITS])
async def test_a_workflow_caught_mid_poll_replays(path: Path) -> None:
    """A workflow that was waiting between polls when the new code was deployed."""
    full = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    # Cut just after the last timer started: the new worker picks the workflow up in its wait.
    starts = [i for i, e in enumerate(full.events) if e.HasField("timer_started_event_attributes")]
    cut = WorkflowHistory(full.workflow_id, full.events[: starts[len(starts) // 2] + 1])

    result = await Replayer(workflows=[VideoGenerationWorkflow]).replay_workflow(
        cut, raise_on_replay_failure=False
    )

    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
