"""The README's starter examples, run as written, against a running stack: from the checkout and from elsewhere.

The only substitution is the path of the virtualenv's Python. The stack is what `make up` starts
(a dev server, the simulator, a worker on the default task queue with the default embedded
catalogue), on free ports; the shell the examples run in has the `export` line `make up` prints
for non-default ports.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.devstack import ROOT, DevServer, free_port, start_worker, stop
from simulator.testing import RunningSimulator

pytestmark = pytest.mark.integration

VENV_PYTHON = ".venv/bin/python"


def readme_examples() -> list[list[str]]:
    """The commands of the README's ``sh`` block of starter examples, one argument list per line."""
    text = (ROOT / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```sh\n")[1:]]
    (block,) = [block for block in blocks if "-m starter generate" in block]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_the_readme_examples_are_the_starter_commands_people_need() -> None:
    commands = readme_examples()

    assert all(command[0] == VENV_PYTHON for command in commands)
    expected = ["generate", "generate", "status", "cancel", "list", "spend"]
    assert [command[3] for command in commands] == expected
    assert "assets/sample-reference.jpg" in commands[0]
    assert (ROOT / "assets" / "sample-reference.jpg").is_file()


@pytest.fixture
def shell_env(tmp_path: Path, sim: RunningSimulator) -> Iterator[dict[str, str]]:
    """A fresh stack, and the environment of another shell pointed at it."""
    data_dir = tmp_path / "data"
    server = DevServer("127.0.0.1", free_port(), ui_port=None, db_file=tmp_path / "temporal.db").start()
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "DATABASE_", "TEMPORAL_", "SORA_"))
    }
    shell = {**base, "TEMPORAL_ADDRESS": server.address, "SORA_DATA_DIR": str(data_dir), "COLUMNS": "80"}
    worker = None
    try:
        worker = start_worker(
            {**shell, "OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": sim.api_key},
            log_path=tmp_path / "worker.log",
        )
        yield shell
    finally:
        stop(worker)
        server.stop()


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_the_readme_examples_work_as_written(where: str, shell_env: dict[str, str], tmp_path: Path) -> None:
    cwd = ROOT if where == "checkout" else tmp_path / "elsewhere"
    cwd.mkdir(exist_ok=True)
    outputs = []
    for command in readme_examples():
        done = subprocess.run(
            [sys.executable, *command[1:]],
            cwd=cwd,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (
            f"{shlex.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
        outputs.append(done.stdout)

    generated, started, status, cancelled, listed, spent = outputs
    assert generated.startswith("completed workflow")
    assert "started workflow city-1" in started
    assert "workflow city-1" in status and "job status:" in status
    assert "cancel sent to city-1" in cancelled
    assert "city-1" in listed and "a lighthouse in a storm" in listed
    assert "sora-2" in spent and "today (UTC)" in spent
    deadline = time.monotonic() + 60
    while True:
        shown = subprocess.run(
            [sys.executable, "-m", "starter", "status", "city-1", "--json"],
            cwd=cwd,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if json.loads(shown.stdout)["job_status"] == "cancelled":
            break
        assert time.monotonic() < deadline, shown.stdout
        time.sleep(0.5)
    if where == "elsewhere":
        assert sorted(p.name for p in cwd.iterdir()) == []  # nothing left in the current directory
