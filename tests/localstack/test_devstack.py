"""``make up`` / ``make demo`` (``python -m devtools.devstack``): ports, failures, signals, progress.

Each test runs the real stack (dev server, simulator, worker, api process) on free ports with its own
data directory, as a separate process, and checks what a person would see and what is left running.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devtools.devstack import ROOT, free_port, port_open

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    """A ``devstack`` process and what it printed so far."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str | None]
    data_dir: Path
    ports: dict[str, int]
    output: str = ""

    def wait_for(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"devstack exited before printing {text!r}:\n{self.output}")
            self.output += line
        return self.output

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout=timeout)
        while (line := self.lines.get(timeout=10)) is not None:
            self.output += line
        return code

    def state(self) -> dict[str, object]:
        return dict(json.loads((self.data_dir / "devstack.json").read_text()))


def _ports() -> dict[str, int]:
    return {"temporal": free_port(), "ui": free_port(), "simulator": free_port(), "api": free_port()}


def start_devstack(
    command: str, data_dir: Path, ports: dict[str, int], *extra: str, env: dict[str, str] | None = None
) -> Stack:
    child_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "DATABASE_", "TEMPORAL_", "SORA_", "API_"))
    }
    child_env |= {"SORA_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.devstack",
            command,
            "--temporal-port",
            str(ports["temporal"]),
            "--ui-port",
            str(ports["ui"]),
            "--simulator-port",
            str(ports["simulator"]),
            "--api-port",
            str(ports["api"]),
            *extra,
        ],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return Stack(process, lines, data_dir, ports)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Stack]:
    # A port found free can be taken by another test process before the stack binds it: then the
    # stack refuses to start, and is started again on other ports.
    for attempt in range(3):
        stack = start_devstack("up", tmp_path / f"state{attempt or ''}", _ports(), "--time-scale", "0.02")
        try:
            stack.wait_for("Ctrl-C (or closing this terminal) stops everything")
            break
        except AssertionError:
            _stop(stack)
            if "address already in use" not in stack.output or attempt == 2:
                raise
    try:
        yield stack
    finally:
        _stop(stack)


def _stop(stack: Stack) -> None:
    if stack.process.poll() is None:
        stack.process.kill()
        stack.process.wait(timeout=10)
        for pid in _children(stack):
            _kill(pid)


def _children(stack: Stack) -> list[int]:
    try:
        children = stack.state()["children"]
    except (OSError, KeyError):
        return []
    assert isinstance(children, dict)
    return [int(pid) for pid in children.values()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_stops_every_child_and_frees_every_port(running: Stack, signum: signal.Signals) -> None:
    children = _children(running)
    assert len(children) == 4 and all(_alive(pid) for pid in children)

    running.process.send_signal(signum)
    code = running.finish()

    assert code == 128 + signum
    assert [pid for pid in children if _alive(pid)] == []
    assert [name for name, port in running.ports.items() if port_open("127.0.0.1", port)] == []
    assert not (running.data_dir / "devstack.json").exists()
    assert "Traceback" not in running.output


def test_up_twice_says_what_is_already_running_and_on_which_ports(running: Stack) -> None:
    second = start_devstack("up", running.data_dir, _ports())
    code = second.finish()

    assert code == 1
    assert f"already running (pid {running.process.pid}" in second.output
    assert f"127.0.0.1:{running.ports['temporal']}" in second.output
    assert f"http://localhost:{running.ports['ui']}" in second.output
    assert f"http://127.0.0.1:{running.ports['simulator']}/v1" in second.output
    assert f"http://127.0.0.1:{running.ports['api']}/v1" in second.output
    assert _api_key(running) in second.output
    assert "Traceback" not in second.output
    assert running.process.poll() is None  # the first one is untouched


def _api_key(stack: Stack) -> str:
    """The demo key ``make up`` printed beside the api process's URL."""
    found = re.search(
        rf"http://127\.0\.0\.1:{stack.ports['api']}/v1  \(key: (sk-demo-[0-9a-f]+)\)", stack.output
    )
    assert found, stack.output
    return found[1]


def test_up_starts_the_api_process_with_a_demo_key_it_prints(running: Stack) -> None:
    root = f"http://127.0.0.1:{running.ports['api']}"
    key = _api_key(running)

    health = httpx.get(f"{root}/healthz", timeout=30)
    listed = httpx.get(f"{root}/v1/videos", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    refused = httpx.get(f"{root}/v1/videos", headers={"Authorization": "Bearer sk-guess"}, timeout=30)

    assert health.status_code == 200
    assert listed.status_code == 200 and listed.json()["object"] == "list"
    assert refused.status_code == 401
    assert running.state()["api_key"] == key
    assert (running.data_dir / "devstack.json").stat().st_mode & 0o077 == 0


def test_up_prints_the_exports_a_second_shell_needs_for_non_default_ports(running: Stack) -> None:
    assert f"export TEMPORAL_ADDRESS=127.0.0.1:{running.ports['temporal']}" in running.output
    assert f"TEMPORAL_UI_URL=http://localhost:{running.ports['ui']}" in running.output


def test_a_busy_web_ui_port_is_named_with_the_setting_that_changes_it(tmp_path: Path) -> None:
    ports = _ports()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["ui"]))
        taken.listen()
        stack = start_devstack("demo", tmp_path / "state", ports)
        code = stack.finish()

    assert code == 1
    assert f"port {ports['ui']} (the Temporal Web UI) is already in use" in stack.output
    assert "--ui-port or TEMPORAL_UI_PORT" in stack.output
    assert "Traceback" not in stack.output
    assert not port_open("127.0.0.1", ports["temporal"])


def test_a_child_that_fails_to_start_is_reported_with_its_log_and_the_rest_is_stopped(tmp_path: Path) -> None:
    ports = _ports()
    # A database nobody migrated: the worker refuses to start, and says why in its log.
    stack = start_devstack(
        "up", tmp_path / "state", ports, env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    )
    code = stack.finish(timeout=120)

    assert code == 1
    assert "the worker failed to start" in stack.output
    assert "last lines of" in stack.output and "run `make migrate`" in stack.output
    assert "Traceback" not in stack.output
    assert [name for name, port in ports.items() if port_open("127.0.0.1", port)] == []


def test_demo_shows_progress_while_generating_and_says_how_to_keep_the_stack(tmp_path: Path) -> None:
    stack = start_devstack(
        "demo", tmp_path / "state", _ports(), "--time-scale", "0.05", "--poll-interval", "1"
    )
    code = stack.finish(timeout=180)

    assert code == 0, stack.output
    progress = [line for line in stack.output.splitlines() if line.startswith("[") and "%" in line]
    assert any("in_progress" in line for line in progress), stack.output
    assert "status:       completed" in stack.output
    assert "`make up` starts the same stack and keeps it running" in stack.output
    assert f"http://localhost:{stack.ports['ui']}" in stack.output.split("`make up`")[-1]
    assert f"http://127.0.0.1:{stack.ports['api']}/" in stack.output.split("`make up`")[-1]
    assert [name for name, port in stack.ports.items() if port_open("127.0.0.1", port)] == []
