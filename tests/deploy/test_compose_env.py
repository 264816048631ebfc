"""The environment docker-compose.yml sets, run with processes on this machine (there is no Docker here).

Each test resolves a service's ``environment:`` as Compose would for an operator who only filled in
deploy/.env.example, then points the stack's host names at loopback equivalents: ``temporal`` at the
test dev server, ``simulator`` at a simulator, ``postgres`` at 127.0.0.1:5432 (a schema per test),
and the container's volume paths at ``tmp_path``. Nothing else changes, except the task queue (one
per test on the shared server). As in the stack, the ``migrate`` service's command runs before the
worker or the API starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from compose_file import ROOT, environment, mounts, operator_env, services
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from devtools.devstack import DevServer, free_port, start_api, start_worker, stop
from simulator.testing import RunningSimulator, start_simulator
from sora_temporal import schema, search_attributes
from sora_temporal.db import VideoCatalog, make_engine

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

# What the image adds to every container's environment (Dockerfile ENV), on this machine.
IMAGE_ENV = {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def _temporal_target(dev_env: WorkflowEnvironment) -> str:
    target: str = dev_env.client.service_client.config.target_host
    return target


def _on_this_machine(
    env: Mapping[str, str],
    service: Mapping[str, Any],
    *,
    temporal: str,
    simulator_root: str | None = None,
    postgres_url: str | None = None,
    root: Path | None = None,
) -> dict[str, str]:
    """``env`` with the stack's host names and volume paths replaced by their loopback equivalents."""
    names = set(services())
    local = dict(env)
    if "TEMPORAL_ADDRESS" in local:
        host, _, _ = local["TEMPORAL_ADDRESS"].rpartition(":")
        assert host in names, f"TEMPORAL_ADDRESS {local['TEMPORAL_ADDRESS']} is not a compose service"
        local["TEMPORAL_ADDRESS"] = temporal
    if simulator_root is not None:
        url = urlsplit(local["OPENAI_BASE_URL"])
        assert url.hostname in names, f"OPENAI_BASE_URL {url.geturl()} is not a compose service"
        local["OPENAI_BASE_URL"] = simulator_root + url.path
    if postgres_url is not None:
        compose_db, test_db = make_url(local["DATABASE_URL"]), make_url(postgres_url)
        assert compose_db.host in names and compose_db.password is None
        local["DATABASE_URL"] = compose_db.set(
            username=test_db.username,
            host=test_db.host,
            port=test_db.port,
            database=test_db.database,
            query=test_db.query,
        ).render_as_string(hide_password=False)
    if root is not None:
        for key, value in local.items():
            for mount in mounts(service):
                if value == mount.target or value.startswith(mount.target + "/"):
                    local[key] = str(root / value.lstrip("/"))
    if "TEMPORAL_TASK_QUEUE" in local:
        local["TEMPORAL_TASK_QUEUE"] = f"tq-{uuid.uuid4()}"
    for key, value in local.items():
        for name in names:
            assert not re.search(rf"(^|//|@){re.escape(name)}(:|/|$)", value), (
                f"{key}={value} still names {name}"
            )
    return local


def _process_env(env: Mapping[str, str]) -> dict[str, str]:
    """A child's whole environment: the container's, and a PATH to find programs."""
    return {**IMAGE_ENV, **env, "PATH": os.environ["PATH"]}


def _starter(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # As `docker compose run --rm worker python starter.py ...`: the worker's environment, cwd /app.
    return subprocess.run(
        [sys.executable, "starter.py", *args],
        cwd=ROOT,
        env=_process_env(env),
        capture_output=True,
        text=True,
        timeout=90,
    )


def _migrate(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """The ``migrate`` service's command (``python`` being this interpreter) with ``env``."""
    program, *args = services()["migrate"]["command"]
    assert program == "python"
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=_process_env(env), capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def compose_sim() -> Iterator[RunningSimulator]:
    """A simulator that accepts the key the compose file gives the worker by default."""
    key = environment(services()["worker"], operator_env())["OPENAI_API_KEY"]
    with start_simulator(api_key=key, time_scale=0.01) as running:
        yield running


@pytest.fixture
def worker_env(
    dev_env: WorkflowEnvironment, compose_sim: RunningSimulator, postgres_url: str, tmp_path: Path
) -> dict[str, str]:
    """The worker service's environment, on this machine, its catalogue migrated as ``migrate`` does first."""
    worker = services()["worker"]
    env = _on_this_machine(
        environment(worker, operator_env()),
        worker,
        temporal=_temporal_target(dev_env),
        simulator_root=compose_sim.root_url,
        postgres_url=postgres_url,
        root=tmp_path,
    )
    migrated = _migrate(env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return env


def test_the_migrate_service_readies_an_empty_catalogue_and_leaves_a_current_one(
    postgres_url: str, tmp_path: Path
) -> None:
    service = services()["migrate"]
    env = _on_this_machine(
        environment(service, operator_env()),
        service,
        # It reaches neither Temporal nor the Videos API: any address stands in for them.
        temporal="127.0.0.1:1",
        simulator_root="http://127.0.0.1:1",
        postgres_url=postgres_url,
        root=tmp_path,
    )

    first, again = _migrate(env), _migrate(env)  # it runs on every `docker compose up`

    assert first.returncode == 0 and f"to revision {schema.head_revision()}" in first.stdout, first.stderr
    assert again.returncode == 0 and "already at revision" in again.stdout, again.stderr
    engine = make_engine(env["DATABASE_URL"])
    try:
        assert {"videos", "api_jobs"} <= schema.read_state(engine).tables
    finally:
        engine.dispose()


def test_a_worker_with_the_compose_environment_completes_a_job(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    worker = start_worker(_process_env(worker_env), log_path=tmp_path / "worker.log")
    try:
        workflow_id = f"compose-{uuid.uuid4().hex[:8]}"
        done = _starter(
            worker_env,
            "generate",
            "a lighthouse in a storm",
            "--image",
            "assets/sample-reference.jpg",
            "--poll-interval",
            "1",
            "--id",
            workflow_id,
            "--json",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout)
        assert report["result"]["status"] == "completed"
        listed = _starter(worker_env, "list", "--json")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert workflow_id in {row["workflow_id"] for row in json.loads(listed.stdout)}
    finally:
        stop(worker)
    engine = make_engine(worker_env["DATABASE_URL"])
    try:
        row = VideoCatalog(engine).get(workflow_id)
    finally:
        engine.dispose()
    assert row is not None and row.as_dict()["status"] == "completed"
    stored = [p for p in Path(worker_env["STORAGE_DIR"]).rglob("*.mp4") if p.is_file()]
    assert [p.name for p in stored] == [f"{row.as_dict()['video_id']}.mp4"]
    assert Path(worker_env["STORAGE_DIR"]).is_relative_to(tmp_path)


def test_the_worker_healthcheck_passes_only_once_the_worker_polls(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    test = services()["worker"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    command = [sys.executable, *test[2:]]

    def healthcheck(pid: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "--pid", str(pid)],
            cwd=ROOT,
            env=_process_env(worker_env),
            capture_output=True,
            text=True,
            timeout=30,
        )

    before = healthcheck(os.getpid())
    assert before.returncode == 1 and "does not poll" in before.stderr, before.stderr
    worker = start_worker(_process_env(worker_env), log_path=tmp_path / "worker.log")
    try:
        # "worker ready" is printed as the pollers start; give their first polls a moment to land.
        deadline = time.monotonic() + 30
        while (after := healthcheck(worker.pid)).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert after.returncode == 0, after.stderr
    finally:
        stop(worker)


def test_the_search_attribute_service_sets_up_a_new_namespace(tmp_path: Path) -> None:
    name = "temporal-search-attributes"
    service = services()[name]
    namespace = f"sora-{uuid.uuid4().hex[:8]}"
    server = DevServer("127.0.0.1", free_port(), None, None, log_path=tmp_path / "temporal.log").start()
    try:
        env = _on_this_machine(
            environment(service, {**operator_env(), "TEMPORAL_NAMESPACE": namespace}),
            service,
            temporal=server.address,
        )
        # entrypoint /bin/sh, command: the script, from the repository folder mounted into the service.
        (script,) = service["command"]
        (mount,) = [m for m in mounts(service) if script.startswith(m.target + "/")]
        host_script = ROOT / mount.source / script.removeprefix(mount.target + "/")
        # The admin-tools image has the `temporal` CLI on its PATH; here it is in the virtualenv.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        for _ in range(2):  # it runs on every `docker compose up`
            done = subprocess.run(
                [*service["entrypoint"], str(host_script)],
                env={**env, "PATH": path},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stdout + done.stderr

        async def missing() -> list[str]:
            client = await Client.connect(server.address, namespace=namespace)
            return await search_attributes.missing(client)

        assert asyncio.run(missing()) == []
    finally:
        server.stop()


def test_the_api_with_the_compose_environment_passes_its_healthcheck(
    worker_env: dict[str, str],
    dev_env: WorkflowEnvironment,
    compose_sim: RunningSimulator,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    service = services()["api"]
    env = _on_this_machine(
        environment(service, {**operator_env(), "API_KEYS": "sk-compose-client"}),
        service,
        temporal=_temporal_target(dev_env),
        simulator_root=compose_sim.root_url,
        postgres_url=postgres_url,  # the catalogue the worker_env fixture migrated
        root=tmp_path,
    )
    command = service["command"]
    assert command[:3] == ["python", "-m", "api"]
    published = command[command.index("--port") + 1]
    port = free_port()
    api, root_url = start_api(_process_env(env), port=port, log_path=tmp_path / "api.log")
    try:
        test = service["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"]
        script = [arg.replace(f":{published}/", f":{port}/") for arg in test[2:]]
        healthy = subprocess.run(
            [sys.executable, *script], env=_process_env(env), capture_output=True, text=True, timeout=30
        )
        listed = httpx.get(
            f"{root_url}/v1/videos", headers={"Authorization": "Bearer sk-compose-client"}, timeout=30
        )
    finally:
        stop(api)

    assert healthy.returncode == 0, healthy.stderr + (tmp_path / "api.log").read_text()
    assert listed.status_code == 200 and listed.json()["object"] == "list"
