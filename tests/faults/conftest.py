"""Fixtures of the fault matrix: module-wide deployments, so many cases share one run.

Each module starts its cases together (distinct prompts keep them independent) in a module-scoped
fixture, and its tests then check one case each. The summary line at the end of the session counts
cases, lost jobs, duplicate creates and orphan or partial objects over the whole matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

import fault_checks
from simulator.testing import RunningSimulator, start_simulator
from support import Deployment

Spawn = Callable[..., Deployment]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    line = fault_checks.summary_line()
    if line is not None:
        terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])


@pytest.fixture(scope="module")
def module_sim() -> Iterator[RunningSimulator]:
    """A simulator for the whole module (a 4 s clip takes about half a second).

    Time is scaled for the jobs, not for Temporal's timeouts: recovering from a dead upload host
    takes about a minute of real time, which the scaled one-hour content lifetime (36 s) would not
    survive. Content here lives for the scaled equivalent of 100 hours (an hour of real time).
    """
    with start_simulator(time_scale=0.01, extra_args=["--expire-after", "360000"]) as running:
        yield running


@pytest.fixture(scope="module")
def spawn(dev_env: WorkflowEnvironment) -> Iterator[Spawn]:
    """Configure worker processes for one module: ``spawn(root, sim, **env)``; stopped at the end."""
    created: list[Deployment] = []

    def make(root: Path, sim: RunningSimulator, **extra_env: str) -> Deployment:
        root.mkdir(parents=True, exist_ok=True)
        target = dev_env.client.service_client.config.target_host
        deployment = Deployment.configure(target, sim, root, f"sqlite:///{root / 'sora.db'}", **extra_env)
        created.append(deployment)
        return deployment

    yield make
    for deployment in created:
        deployment.stop_workers()
