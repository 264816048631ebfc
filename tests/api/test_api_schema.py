"""The ``api`` process checks the schema at start-up as the worker does: ``api_jobs`` comes from migrations.

An out-of-date database is refused with what to run; only the embedded SQLite default is upgraded
by the process itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from devtools.devstack import ROOT, free_port, start_api, stop
from sora_temporal import schema
from sora_temporal.db import make_engine

KEY = "sk-schema-test"


def _env(**extra: str) -> dict[str, str]:
    kept = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SORA_", "API_", "TEMPORAL_"))
    }
    return {**kept, "API_KEYS": KEY, **extra}


def test_an_out_of_date_database_is_refused_with_what_to_run(postgres_url: str, tmp_path: Path) -> None:
    env = _env(DATABASE_URL=postgres_url, SORA_DATA_DIR=str(tmp_path), TEMPORAL_ADDRESS="127.0.0.1:1")

    done = subprocess.run(
        [sys.executable, "-m", "api", "--port", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 3, done.stdout + done.stderr
    assert "refusing to start" in done.stderr and "run `make migrate`" in done.stderr
    engine = make_engine(postgres_url)
    try:
        assert schema.read_state(engine).tables == frozenset()  # nothing was created behind our back
    finally:
        engine.dispose()


@pytest.mark.integration
def test_the_embedded_default_catalogue_is_upgraded_by_the_api_itself(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    target = dev_env.client.service_client.config.target_host
    env = _env(SORA_DATA_DIR=str(tmp_path), TEMPORAL_ADDRESS=target)

    api, root_url = start_api(env, port=free_port(), log_path=tmp_path / "api.log")
    try:
        listed = httpx.get(f"{root_url}/v1/videos", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    finally:
        stop(api)

    assert listed.status_code == 200, (tmp_path / "api.log").read_text()
    engine = make_engine(f"sqlite:///{tmp_path / 'sora.db'}")
    try:
        state = schema.read_state(engine)
    finally:
        engine.dispose()
    assert state.up_to_date and {"videos", "api_jobs"} <= state.tables
