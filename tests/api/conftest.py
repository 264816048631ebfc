"""Fixtures of the ``api`` tests: one stack per module (simulator, worker, ``api`` process).

Cases in a module share the stack and keep apart by their prompts and keys; a case that needs a
quiet simulator or its own settings builds its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import ApiStack, running_stack
from temporalio.testing import WorkflowEnvironment

from simulator.testing import RunningSimulator, start_simulator


@pytest.fixture(scope="module")
def api_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])


@pytest.fixture(scope="module")
def api_sim() -> Iterator[RunningSimulator]:
    """A simulator for the module (a 4 s clip takes about half a second)."""
    with start_simulator(time_scale=0.01) as running:
        yield running


@pytest.fixture(scope="module")
def api_stack(dev_env: WorkflowEnvironment, api_sim: RunningSimulator, api_dir: Path) -> Iterator[ApiStack]:
    """A worker and an ``api`` process on SQLite, in front of the module's simulator."""
    with running_stack(dev_env.client.service_client.config.target_host, api_sim, api_dir) as stack:
        yield stack
