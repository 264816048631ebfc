"""The worker refuses to start when it cannot work as configured, and says why (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from devtools.devstack import ROOT, start_worker, stop
from simulator.testing import RunningSimulator
from sora_temporal import schema
from sora_temporal.db import make_engine
from worker import EXIT_REFUSED


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "DATABASE_"))}
    env.pop("BLOB_READ_WRITE_TOKEN", None)
    return {
        **env,
        "SORA_DATA_DIR": str(tmp_path / "state"),
        "TEMPORAL_TASK_QUEUE": f"tq-{uuid.uuid4()}",
        **values,
    }


def _run_worker(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "worker.py")],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_a_videos_endpoint_the_worker_refuses_and_lists_the_supported_ones(tmp_path: Path) -> None:
    key = f"sk-proj-{uuid.uuid4().hex}"
    # Temporal is never contacted: the refusal comes first.
    env = _env(tmp_path, OPENAI_API_KEY=key, TEMPORAL_ADDRESS="127.0.0.1:1")

    done = _run_worker(env, tmp_path)

    assert done.returncode == EXIT_REFUSED
    assert "refusing to start" in done.stderr and "OPENAI_BASE_URL is not set" in done.stderr
    assert "https://<resource>.openai.azure.com/openai/v1" in done.stderr
    assert "LiteLLM" in done.stderr and "simulator" in done.stderr
    assert "Traceback" not in done.stderr
    assert key not in done.stdout + done.stderr


def test_a_database_that_is_not_migrated_is_refused_with_what_to_run(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    env = _env(
        tmp_path,
        OPENAI_BASE_URL=sim.base_url,
        OPENAI_API_KEY=sim.api_key,
        DATABASE_URL=f"sqlite:///{tmp_path / 'elsewhere.db'}",
        TEMPORAL_ADDRESS="127.0.0.1:1",
    )

    done = _run_worker(env, tmp_path)

    assert done.returncode == EXIT_REFUSED
    assert "has no tables yet; run `make migrate`" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_out_of_date_postgresql_catalogue_is_refused(
    tmp_path: Path, sim: RunningSimulator, postgres_url: str
) -> None:
    engine = make_engine(postgres_url)
    try:
        schema.upgrade(engine, "0001")
    finally:
        engine.dispose()
    env = _env(
        tmp_path,
        OPENAI_BASE_URL=sim.base_url,
        OPENAI_API_KEY=sim.api_key,
        DATABASE_URL=postgres_url,
        TEMPORAL_ADDRESS="127.0.0.1:1",
    )

    done = _run_worker(env, tmp_path)

    assert done.returncode == EXIT_REFUSED
    assert f"is at revision 0001, this code needs {schema.head_revision()}" in done.stderr
    assert "make migrate" in done.stderr


@pytest.mark.integration
def test_the_embedded_default_catalogue_is_created_and_upgraded_by_the_worker_itself(
    tmp_path: Path, sim: RunningSimulator, dev_env: WorkflowEnvironment
) -> None:
    env = _env(
        tmp_path,
        OPENAI_BASE_URL=sim.base_url,
        OPENAI_API_KEY=sim.api_key,
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
    )

    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'state' / 'sora.db'}")
        try:
            assert schema.read_state(engine).up_to_date
        finally:
            engine.dispose()
    finally:
        stop(worker)


def test_an_unusable_setting_is_refused_without_a_traceback(tmp_path: Path) -> None:
    done = _run_worker(_env(tmp_path, LOG_FORMAT="xml"), tmp_path)

    assert done.returncode == EXIT_REFUSED
    assert "bad configuration: LOG_FORMAT must be 'text' or 'json'" in done.stderr
    assert "Traceback" not in done.stderr
