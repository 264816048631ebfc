"""The starter against a real dev server and worker: status, cancel and Ctrl-C, as people use them."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from support import Deployment

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def starter(deployment: Deployment, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starter", *args],
        cwd=cwd,
        env={**deployment.env, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=90,
    )


async def _until_done(dev_env: WorkflowEnvironment, workflow_id: str) -> None:
    handle = dev_env.client.get_workflow_handle(workflow_id)
    deadline = time.monotonic() + 60
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert time.monotonic() < deadline, f"{workflow_id} still runs"
        time.sleep(0.3)


async def test_status_of_a_cancelled_job_labels_both_statuses_and_says_it_may_run_remotely(
    deployment: Deployment, dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    workflow_id = f"cancel-{uuid.uuid4().hex[:8]}"
    started = starter(
        deployment, "generate", "a job to cancel [sim:never]", "--no-wait", "--id", workflow_id, cwd=tmp_path
    )
    assert started.returncode == 0, started.stderr
    time.sleep(2)  # let it reach the API, so a remote job exists

    cancelled = starter(deployment, "cancel", workflow_id, "--reason", "wrong prompt", "--json", cwd=tmp_path)
    await _until_done(dev_env, workflow_id)
    text = starter(deployment, "status", workflow_id, cwd=tmp_path)
    as_json = starter(deployment, "status", workflow_id, "--json", cwd=tmp_path)

    assert json.loads(cancelled.stdout) == {"workflow_id": workflow_id, "cancel_sent": True}
    lines = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in text.stdout.splitlines()[1:]
    }
    assert lines["job status"] == "cancelled"
    temporal = lines["Temporal status"]
    assert temporal.split()[0] == "CANCELED" and "(" in temporal  # labelled and explained
    assert lines["remote_may_be_running"].startswith("yes")
    report = json.loads(as_json.stdout)
    assert report["job_status"] == "cancelled" and report["remote_may_be_running"] is True
    assert report["temporal_status"] == "CANCELED"


async def test_status_of_a_completed_job_prints_the_whole_stored_url_at_80_columns(
    deployment: Deployment, tmp_path: Path
) -> None:
    workflow_id = f"done-{uuid.uuid4().hex[:8]}-with-a-long-name-to-fold"
    done = starter(
        deployment, "generate", "a quiet harbour", "--poll-interval", "1", "--id", workflow_id, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr

    shown = starter(deployment, "status", workflow_id, cwd=tmp_path)

    row = deployment.catalog().get(workflow_id)
    assert row is not None and row.blob_url
    assert row.blob_url in shown.stdout and row.blob_url in done.stdout
    assert "job status:" in shown.stdout and "completed" in shown.stdout


async def test_ctrl_c_while_watching_says_the_job_keeps_running_and_how_to_follow_it(
    deployment: Deployment, dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    workflow_id = f"ctrl-c-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        [sys.executable, "-m", "starter", "generate", "a long one [sim:never]", "--id", workflow_id],
        cwd=tmp_path,
        env=deployment.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()  # type: ignore[union-attr]
    seen = []
    while not any("queued" in line or "in_progress" in line for line in seen):  # it is watching
        seen.append(lines.get(timeout=30))

    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=30)
    time.sleep(0.2)
    rest = "".join(seen)
    while not lines.empty():
        rest += lines.get()

    assert code == 130
    assert f"workflow {workflow_id} is not cancelled" in rest and "keeps running" in rest
    assert f"-m starter status {workflow_id}" in rest
    handle = dev_env.client.get_workflow_handle(workflow_id)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await handle.cancel()
