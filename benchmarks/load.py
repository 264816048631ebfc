"""N video jobs at once on this machine: the durable workflow beside two anchors measured in the same run.

Run: ``.venv/bin/python benchmarks/load.py [--jobs 100] [--servers file,wal] ...`` (``make bench`` runs
it with no arguments: N=100 on the stack as ``make up`` runs it, a few minutes). Figures are printed,
never asserted. Linux only (reads ``/proc``); everything listens on loopback, in a temporary
directory, and is stopped at the end or when ``--timeout`` runs out.

What runs, in order:

1. **plain loop** — the seed's algorithm (create, sleep 5 s, GET, repeat; stream ``/content`` to a
   file) with asyncio + httpx in this process, against the same simulator. No Temporal, no upload,
   no database: the floor for detection lag and done -> stored.
2. For each dev-server variant in ``--servers`` (a fresh ``temporal server start-dev`` each, with our
   search attributes):
   - **minimal workflow** — a ``--poll-interval`` timer then one no-op activity, ``--rounds`` times,
     all N started at once, with a local and/or a remote activity (``--minimal``). What the server
     itself allows.
   - **durable** — the real ``VideoGenerationWorkflow``, started as the starter does, run by
     ``--workers`` processes of ``worker.py`` as ``make up`` starts them (SQLite catalogue, local
     storage, the simulator as Sora).

Jobs take ``--durations`` seconds (spread evenly, shuffled): the simulator has no per-job duration
setting, so each prompt carries its ``[sim:duration=D]`` marker, D in realistic seconds that the
simulator multiplies by ``--time-scale`` (0.1 as in ``make up``, which also makes its poll hint 1 s,
so the 5 s interval applies).

How each figure is obtained (the simulator's ``/_sim/stats`` gives request counts and whole-second
creation times, but neither finish times nor per-request times, so those come from the client side
and from workflow histories):

- finish time = creation + D x time scale (exact in the simulator). Creation lies inside the create
  call (plain loop: around the POST; durable: the ``submit_video`` activity's started..completed
  events) and inside the whole second ``/_sim/stats`` reports; the middle of that intersection is
  used, and its half-width is printed as the uncertainty.
- status GET time = when the GET was sent (plain loop), the ``check_video_status`` activity's
  ActivityTaskStarted event (remote) or its local-activity marker's schedule time (local).
- poll gap = time between consecutive status GETs of one job (ideal: the poll interval).
- detection lag = the first GET that saw the job finished, minus the finish time.
- done -> stored = the workflow's completion event (plain loop: the file closed), minus the finish time.
- status calls / job = GET /v1/videos/{id} requests the simulator counted, divided by N.
- CPU-s / job = utime+stime from ``/proc/<pid>/stat`` over the phase, divided by N (server: the dev
  server process; worker: the worker processes, or this process for the plain loop).
- the profile splits each poll gap into the check itself, result -> next timer (workflow tasks,
  saves), the timer firing late, and timer -> next check (workflow task, activity dispatch); the dev
  server's own metrics (``--metrics-port``) give the time its persistence layer (SQLite) was busy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _loadlib as lib

SIMULATOR_KEY = "sk-sim-bench"
SUBMIT_ACTIVITY = "submit_video"
CHECK_ACTIVITY = "check_video_status"
SERVER_VARIANTS = {
    # a SQLite file with the server's default pragmas (how `make up` ran it before issue 14's lever)
    "file": (True, ()),
    # the pragma lever of issue 14, as `make up` runs the dev server now
    "wal": (True, ("journal_mode=wal", "synchronous=normal")),
    # not durable; for comparison only
    "memory": (False, ()),
}

# Every child process, so the watchdog and the exit path can stop them all.
_children: list[subprocess.Popen[bytes]] = []
_children_lock = threading.Lock()


def _track(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    with _children_lock:
        _children.append(process)
    return process


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None:
        return
    lib.terminate(process, timeout=15)
    with _children_lock:
        if process in _children:
            _children.remove(process)


def _stop_all() -> None:
    with _children_lock:
        children = list(reversed(_children))
    for process in children:
        with contextlib.suppress(Exception):
            _stop(process)


# --- jobs --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    index: int
    seconds: float
    """Wall-clock seconds from creation to finish."""
    marker: float
    """The ``[sim:duration=...]`` value (realistic seconds)."""

    def prompt(self, run: str) -> str:
        return f"bench {run} job {self.index}: a lighthouse in a storm [sim:duration={self.marker:.4f}]"


def make_jobs(n: int, lo: float, hi: float, time_scale: float, seed: int) -> list[Job]:
    """Durations spread evenly over [lo, hi], in a shuffled order (seeded, so runs compare)."""
    spans = [lo + (hi - lo) * i / max(n - 1, 1) for i in range(n)]
    random.Random(seed).shuffle(spans)
    return [
        Job(i, round(s / time_scale, 4) * time_scale, round(s / time_scale, 4)) for i, s in enumerate(spans)
    ]


def created_estimate(lo: float, hi: float, whole_second: int | None) -> tuple[float, float]:
    """Creation time from the call that made it and the simulator's whole-second stamp; (mid, half-width)."""
    if whole_second is not None:
        a, b = max(lo, float(whole_second)), min(hi, whole_second + 1.0)
        if a <= b:
            return (a + b) / 2, (b - a) / 2
    return (lo + hi) / 2, (hi - lo) / 2


# --- results -----------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table, plus the profile behind it."""

    run: str
    server: str
    n: int
    wall: float = math.nan
    status_calls: float = math.nan
    gaps: list[float] = field(default_factory=list)
    detection: list[float] = field(default_factory=list)
    stored: list[float] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)
    cpu_server: float = math.nan
    cpu_worker: float = math.nan
    cpu_simulator: float = math.nan
    cpu_driver: float = math.nan
    failures: int = 0
    failure_notes: list[str] = field(default_factory=list)
    created_uncertainty: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    server_profile: dict[str, Any] = field(default_factory=dict)
    server_written_mb: float = math.nan
    machine_busy: float = math.nan
    fsync_before_ms: float = math.nan
    fsync_after_ms: float = math.nan
    ours: float = math.nan
    iowait: float = math.nan
    phase_wall: float = math.nan
    worker_threads: dict[str, float] = field(default_factory=dict)
    """Worker CPU-s over the phase per thread name (``python3``: Python threads; ``tokio-*``: the SDK core)."""
    profile: str = ""
    """``--profile-worker``: the summary of the worker's profile."""

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("gaps", "detection", "stored", "created_uncertainty"):
            values = data.pop(key)
            data[key] = {
                "n": len(values),
                "p50": lib.percentile(values, 50),
                "p99": lib.percentile(values, 99),
            }
        data["events"] = {"mean": lib.mean(self.events), "max": max(self.events, default=0)}
        data["polls"] = {"mean": lib.mean(self.polls), "max": max(self.polls, default=0)}
        for key in ("parts", "latencies"):
            data[key] = {
                name: {
                    "n": len(v),
                    "p50": lib.percentile(v, 50),
                    "p99": lib.percentile(v, 99),
                    "mean": lib.mean(v),
                }
                for name, v in data[key].items()
            }
        return data


# --- the simulator -----------------------------------------------------------------------------------


@dataclass
class Simulator:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def api(self) -> str:
        return f"{self.url}/v1"

    async def stats(self) -> dict[str, Any]:
        import httpx

        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.get(f"{self.url}/_sim/stats")
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data


def start_simulator(tmp: Path, time_scale: float, root: Path) -> Simulator:
    """``python -m simulator`` from ``root`` (the repository, or a clean export of another commit)."""
    command = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", "0"]
    command += ["--time-scale", str(time_scale), "--api-key", SIMULATOR_KEY, "--data-dir", str(tmp / "sim")]
    with (tmp / "simulator.log").open("ab") as log:
        process, line = lib.start_ready(
            command, ready="listening", timeout=30, cwd=root, stderr=log, new_session=True
        )
    _track(process)
    return Simulator(process, line.rsplit(" ", 1)[-1])


async def warm_simulator(sim: Simulator) -> None:
    """Render the shared base media once, so the first phase is not charged for it."""
    import httpx

    headers = {"Authorization": f"Bearer {SIMULATOR_KEY}"}
    async with httpx.AsyncClient(base_url=sim.api, headers=headers, timeout=120) as http:
        made = await http.post(
            "/videos",
            json={
                "prompt": "warm-up [sim:duration=0]",
                "model": "sora-2",
                "seconds": "4",
                "size": "1280x720",
            },
        )
        made.raise_for_status()
        video_id = made.json()["id"]
        for variant in ("video", "thumbnail", "spritesheet"):
            got = await http.get(f"/videos/{video_id}/content", params={"variant": variant})
            got.raise_for_status()


def requests_delta(before: dict[str, Any], after: dict[str, Any], route: str) -> int:
    return int(after["requests"].get(route, 0)) - int(before["requests"].get(route, 0))


def whole_seconds_by_prompt(stats: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {job["prompt"]: (job["id"], int(job["created_at"])) for job in stats["jobs"]}


# --- phase 1: the plain loop --------------------------------------------------------------------------


@dataclass
class PlainRecord:
    job: Job
    create_lo: float = math.nan
    create_hi: float = math.nan
    video_id: str | None = None
    gets: list[tuple[float, str]] = field(default_factory=list)
    stored_at: float | None = None
    error: str | None = None


async def plain_job(
    http: Any, job: Job, run: str, interval: float, out_dir: Path, deadline: float
) -> PlainRecord:
    record = PlainRecord(job)
    try:
        record.create_lo = time.time()
        made = await http.post(
            "/videos", json={"prompt": job.prompt(run), "model": "sora-2", "seconds": "4", "size": "1280x720"}
        )
        record.create_hi = time.time()
        made.raise_for_status()
        record.video_id = made.json()["id"]
        status = made.json()["status"]
        while status not in ("completed", "failed"):
            if time.time() > deadline:
                raise TimeoutError("deadline passed")
            await asyncio.sleep(interval)
            sent = time.time()
            got = await http.get(f"/videos/{record.video_id}")
            got.raise_for_status()
            status = got.json()["status"]
            record.gets.append((sent, status))
        if status != "completed":
            raise RuntimeError(f"job ended {status}")
        with (out_dir / f"{record.video_id}.mp4").open("wb") as file:
            async with http.stream("GET", f"/videos/{record.video_id}/content") as response:
                response.raise_for_status()
                async for chunk in response.aiter_bytes(1024 * 1024):
                    file.write(chunk)
        record.stored_at = time.time()
    except Exception as err:
        record.error = f"{type(err).__name__}: {err}"
    return record


async def run_plain(args: argparse.Namespace, sim: Simulator, jobs: list[Job], tmp: Path) -> Row:
    import httpx

    run = f"plain-{uuid.uuid4().hex[:6]}"
    out_dir = tmp / "plain"
    out_dir.mkdir(exist_ok=True)
    row = Row("plain loop (seed algorithm)", "—", len(jobs))
    meter = lib.CpuMeter({"driver": [os.getpid()], "simulator": [sim.process.pid]})
    before = await sim.stats()
    limits = httpx.Limits(max_connections=len(jobs) + 10, max_keepalive_connections=len(jobs) + 10)
    headers = {"Authorization": f"Bearer {SIMULATOR_KEY}"}
    deadline = time.time() + args.durations[1] + args.phase_timeout
    row.fsync_before_ms = lib.fsync_ms(tmp)
    meter.begin()
    t0 = time.time()
    async with httpx.AsyncClient(base_url=sim.api, headers=headers, timeout=30, limits=limits) as http:
        records = await asyncio.gather(
            *(plain_job(http, job, run, args.poll_interval, out_dir, deadline) for job in jobs)
        )
    meter.end()
    after = await sim.stats()
    stamps = whole_seconds_by_prompt(after)
    row.status_calls = requests_delta(before, after, "retrieve") / len(jobs)
    row.cpu_worker = meter.seconds("driver") / len(jobs)
    row.cpu_simulator = meter.seconds("simulator") / len(jobs)
    ends = []
    for record in records:
        if record.error is not None or record.stored_at is None:
            row.failures += 1
            row.failure_notes.append(record.error or "not stored")
            continue
        created, half = created_estimate(
            record.create_lo, record.create_hi, stamps.get(record.job.prompt(run), ("", None))[1]
        )
        finish = created + record.job.seconds
        row.created_uncertainty.append(half)
        times = [t for t, _ in record.gets]
        row.gaps += [b - a for a, b in itertools.pairwise(times)]
        first_done = next(t for t, status in record.gets if status == "completed")
        row.detection.append(first_done - finish)
        row.stored.append(record.stored_at - finish)
        row.polls.append(len(record.gets))
        ends.append(record.stored_at)
    row.wall = (max(ends) - t0) if ends else math.nan
    _machine(row, meter, tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    return row


def _machine(row: Row, meter: lib.CpuMeter, tmp: Path) -> None:
    row.fsync_after_ms = lib.fsync_ms(tmp)
    row.machine_busy = meter.machine_busy_cores()
    row.ours = meter.ours_cores()
    row.iowait = meter.iowait_cores()
    row.phase_wall = meter.wall


# --- the dev server ----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    dev: Any
    metrics_url: str

    @property
    def pid(self) -> int:
        assert self.dev.process is not None
        return int(self.dev.process.pid)


def start_server(name: str, tmp: Path, extra_pragmas: Sequence[str]) -> Server:
    durable, pragmas = SERVER_VARIANTS[name]
    pragmas = (*pragmas, *extra_pragmas) if durable else pragmas
    metrics_port = lib.free_port()
    extra = ["--metrics-port", str(metrics_port)]
    for pragma in pragmas:
        extra += ["--sqlite-pragma", pragma]
    folder = tmp / f"server-{name}"
    dev = lib.DevServer(
        "127.0.0.1",
        lib.free_port(),
        None,  # headless: nobody browses the Web UI during a benchmark
        folder / "temporal.db" if durable else None,
        log_path=folder / "temporal.log",
        extra_args=extra,
    ).start()
    assert dev.process is not None
    _track(dev.process)
    label = name if not extra_pragmas or not durable else f"{name}+{','.join(extra_pragmas)}"
    return Server(label, dev, f"http://127.0.0.1:{metrics_port}/metrics")


async def wait_closed(client: Any, task_queue: str, deadline: float, expected: int) -> None:
    """Until no workflow on the task queue runs (one visibility count every 2 s: light on the server)."""
    query = f'TaskQueue = "{task_queue}" AND ExecutionStatus = "Running"'
    await asyncio.sleep(2)
    while time.time() < deadline:
        running = (await client.count_workflows(query)).count
        if running == 0:
            total = (await client.count_workflows(f'TaskQueue = "{task_queue}"')).count
            if total >= expected:
                return
        await asyncio.sleep(2)


async def fetch_all(client: Any, workflow_ids: Sequence[str]) -> dict[str, lib.History]:
    gate = asyncio.Semaphore(16)

    async def one(workflow_id: str) -> tuple[str, lib.History]:
        async with gate:
            return workflow_id, await lib.fetch_history(client, workflow_id)

    return dict(await asyncio.gather(*(one(w) for w in workflow_ids)))


def save_histories(args: argparse.Namespace, row: Row, histories: dict[str, lib.History]) -> None:
    """``--save-histories DIR``: one JSON line per workflow with (event id, time, type) of every event."""
    if args.save_histories is None:
        return
    args.save_histories.mkdir(parents=True, exist_ok=True)
    name = f"{row.run}-{row.server}".replace(" ", "_").replace(",", "").replace("/", "_")
    with (args.save_histories / f"{name}.jsonl").open("w") as out:
        for workflow_id, history in histories.items():
            events = [(e.id, round(e.time, 4), e.type) for e in history.events]
            out.write(json.dumps({"workflow_id": workflow_id, "events": events}) + "\n")


def _profile(row: Row, histories: Sequence[lib.History], check_name: str, before: Any, after: Any) -> None:
    parts: dict[str, list[float]] = {
        "check": [],
        "result -> timer": [],
        "timer late": [],
        "timer -> check": [],
    }
    for history in histories:
        for part in lib.gap_parts(history.runs_of(check_name), history.timers):
            parts["check"].append(part.check)
            parts["result -> timer"].append(part.to_timer)
            parts["timer late"].append(part.timer_lag)
            parts["timer -> check"].append(part.to_check)
    row.parts = parts
    row.latencies = lib.task_latencies(histories)
    row.server_profile = lib.ServerProfile.between(before, after).to_json()


# --- phase 2: the minimal workflow -------------------------------------------------------------------


def minimal_worker_command(address: str, task_queue: str, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-minimal-worker", address, task_queue]
    for flag in ("workflow_task_pollers", "activity_task_pollers", "max_concurrent", "max_cached_workflows"):
        value = getattr(args, flag)
        if value is not None:
            command += [f"--{flag.replace('_', '-')}", str(value)]
    return command


async def run_minimal(args: argparse.Namespace, server: Server, local: bool, tmp: Path) -> Row:
    import _minimal
    from temporalio.client import Client

    n = args.jobs
    kind = "local" if local else "remote"
    row = Row(f"minimal workflow, {kind} activity", server.name, n)
    task_queue = f"bench-minimal-{kind}-{uuid.uuid4().hex[:8]}"
    with (tmp / f"minimal-worker-{kind}.log").open("ab") as log:
        worker, _ = lib.start_ready(
            minimal_worker_command(server.dev.address, task_queue, args),
            ready="worker ready",
            timeout=60,
            cwd=lib.ROOT,
            stderr=log,
            new_session=True,
        )
    _track(worker)
    try:
        client = await Client.connect(server.dev.address)
        if args.warmup:
            await client.execute_workflow(
                _minimal.WORKFLOW_NAME,
                _minimal.MinimalInput(rounds=1, interval_seconds=0.1, local=local),
                id=f"warm-{uuid.uuid4().hex}",
                task_queue=task_queue,
            )
        meter = lib.CpuMeter({"server": [server.pid], "worker": [worker.pid], "driver": [os.getpid()]})
        metrics_before = lib.scrape(server.metrics_url)
        shape = _minimal.MinimalInput(rounds=args.rounds, interval_seconds=args.poll_interval, local=local)
        ids = [f"minimal-{kind}-{i}-{uuid.uuid4().hex[:8]}" for i in range(n)]
        row.fsync_before_ms = lib.fsync_ms(tmp)
        meter.begin()
        t0 = time.time()
        await asyncio.gather(
            *(client.start_workflow(_minimal.WORKFLOW_NAME, shape, id=i, task_queue=task_queue) for i in ids)
        )
        deadline = time.time() + args.rounds * args.poll_interval + args.phase_timeout
        await wait_closed(client, task_queue, deadline, n + (1 if args.warmup else 0))
        meter.end()
        metrics_after = lib.scrape(server.metrics_url)
    finally:
        _stop(worker)
    histories = await fetch_all(client, ids)
    save_histories(args, row, histories)
    row.cpu_server = meter.seconds("server") / n
    row.cpu_worker = meter.seconds("worker") / n
    row.cpu_driver = meter.seconds("driver") / n
    row.server_written_mb = meter.written_mb("server")
    closes = []
    for workflow_id, history in histories.items():
        if history.close_type != "WORKFLOW_EXECUTION_COMPLETED":
            row.failures += 1
            row.failure_notes.append(f"{workflow_id}: {history.close_type or 'still running'}")
            continue
        runs = history.runs_of(_minimal.ACTIVITY_NAME)
        starts = [run.started for run in runs]
        row.gaps += [b - a for a, b in itertools.pairwise(starts)]
        row.events.append(len(history.events))
        row.polls.append(len(runs))
        assert history.closed is not None
        closes.append(history.closed)
    row.status_calls = lib.mean(row.polls)
    row.wall = (max(closes) - t0) if closes else math.nan
    _profile(row, list(histories.values()), _minimal.ACTIVITY_NAME, metrics_before, metrics_after)
    _machine(row, meter, tmp)
    return row


async def serve_minimal_worker(argv: Sequence[str]) -> None:
    """The minimal workflow's worker process (``load.py --serve-minimal-worker ADDRESS TASK_QUEUE``)."""
    import _minimal
    from temporalio.client import Client
    from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

    parser = argparse.ArgumentParser()
    parser.add_argument("--serve-minimal-worker", nargs=2, metavar=("ADDRESS", "TASK_QUEUE"))
    _worker_flags(parser)
    args = parser.parse_args(argv)
    address, task_queue = args.serve_minimal_worker
    options: dict[str, Any] = {}
    if args.workflow_task_pollers:
        options["workflow_task_poller_behavior"] = PollerBehaviorSimpleMaximum(args.workflow_task_pollers)
    if args.activity_task_pollers:
        options["activity_task_poller_behavior"] = PollerBehaviorSimpleMaximum(args.activity_task_pollers)
    if args.max_concurrent:
        options |= {
            "max_concurrent_workflow_tasks": args.max_concurrent,
            "max_concurrent_activities": args.max_concurrent,
            "max_concurrent_local_activities": args.max_concurrent,
        }
    if args.max_cached_workflows:
        options["max_cached_workflows"] = args.max_cached_workflows
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[_minimal.MinimalWorkflow],
        activities=[_minimal.noop],
        **options,
    )
    async with worker:
        print("worker ready", flush=True)
        await stop.wait()


def _worker_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("minimal workflow's worker tuning (defaults: the SDK's, as worker.py)")
    group.add_argument("--workflow-task-pollers", type=int, default=None)
    group.add_argument("--activity-task-pollers", type=int, default=None)
    group.add_argument(
        "--max-concurrent", type=int, default=None, help="workflow tasks, activities, local activities"
    )
    group.add_argument("--max-cached-workflows", type=int, default=None)


# --- phase 3: the durable workflow -------------------------------------------------------------------


def worker_env(
    server: Server, sim: Simulator, folder: Path, task_queue: str, extra: Sequence[str] = ()
) -> dict[str, str]:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": server.dev.address,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "DATABASE_URL": f"sqlite:///{folder / 'sora.db'}",
        "STORAGE_BACKEND": "local",
        "STORAGE_DIR": str(folder / "storage"),
        "DOWNLOAD_DIR": str(folder / "downloads"),
        "OPENAI_BASE_URL": sim.api,
        "OPENAI_API_KEY": SIMULATOR_KEY,
    }
    for secret in ("BLOB_READ_WRITE_TOKEN", "OPENAI_AUTH_STYLE"):
        env.pop(secret, None)
    for item in extra:  # --worker-env NAME=VALUE: a lever of the worker's own settings (WORKER_*, LOG_LEVEL)
        name, _, value = item.partition("=")
        env[name] = value
    return env


async def start_video(
    client: Any, task_queue: str, prompt: str, workflow_id: str, args: argparse.Namespace
) -> Any:
    """Start one job as the starter does (its search attributes included).

    By workflow name with a JSON input, so this process does not import the product's types: the
    workflow's input shape is a contract that running workflows already pin down.
    """
    from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(SearchAttributeKey.for_keyword("SoraStatus"), "submitting"),
            SearchAttributePair(SearchAttributeKey.for_keyword("SoraModel"), "sora-2"),
            SearchAttributePair(SearchAttributeKey.for_int("SoraProgress"), 0),
        ]
    )
    return await client.start_workflow(
        "VideoGenerationWorkflow",
        {"request": {"prompt": prompt, "poll_interval_seconds": args.poll_interval}},
        id=workflow_id,
        task_queue=task_queue,
        search_attributes=attributes,
        static_summary=prompt[:120],
    )


def start_product_worker(
    env: dict[str, str],
    log_path: Path,
    code_root: Path,
    profile: Path | None = None,
) -> subprocess.Popen[bytes]:
    """``worker.py`` as ``make up`` starts it (from ``--code-root`` when that is another checkout).

    With ``profile``, under cProfile in every thread (``_profiled.py``), written there when it stops.
    """
    if code_root.resolve() == lib.ROOT and profile is None:
        return lib.start_worker(env, log_path=log_path)
    command = [sys.executable, str(code_root / "worker.py")]
    if profile is not None:
        command = [
            sys.executable,
            str(Path(__file__).resolve().parent / "_profiled.py"),
            str(profile),
            command[1],
        ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process, _ = lib.start_ready(
            command,
            ready="worker ready",
            timeout=60,
            env=env,
            cwd=code_root,
            stderr=log,
            new_session=True,
        )
    return process


def migrate_catalogue(env: dict[str, str], folder: Path, code_root: Path) -> None:
    """Bring the catalogue to the newest schema, as an operator runs `make migrate` before the workers."""
    if not (code_root / "sora_temporal" / "schema.py").exists():
        return  # the layout before migrations: the worker creates its tables
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "migrate.log").open("ab") as log:
        subprocess.run(
            [sys.executable, "-m", "sora_temporal.schema", "upgrade"],
            env=env,
            cwd=code_root,
            stdout=log,
            stderr=log,
            timeout=120,
            check=True,
        )


async def run_durable(
    args: argparse.Namespace, server: Server, sim: Simulator, jobs: list[Job], tmp: Path
) -> Row:
    from temporalio.client import Client

    n = len(jobs)
    run = f"durable-{uuid.uuid4().hex[:6]}"
    row = Row(f"durable workflow, {args.workers} worker{'s' if args.workers > 1 else ''}", server.name, n)
    task_queue = f"bench-durable-{uuid.uuid4().hex[:8]}"
    folder = tmp / f"durable-{server.name.split('+')[0]}"
    env = worker_env(server, sim, folder, task_queue, args.worker_env)
    workers = []
    profiles = (
        [profile_path(args.profile_worker, k) for k in range(args.workers)] if args.profile_worker else []
    )
    threads_before: dict[int, dict[int, tuple[str, float]]] = {}
    threads_after: dict[int, dict[int, tuple[str, float]]] = {}
    try:
        migrate_catalogue(env, folder, args.code_root)
        for k in range(args.workers):
            profile = profiles[k] if profiles else None
            if profile is not None:
                profile.parent.mkdir(parents=True, exist_ok=True)
                profile.unlink(missing_ok=True)
            workers.append(
                _track(start_product_worker(env, folder / f"worker-{k}.log", args.code_root, profile))
            )
        client = await Client.connect(server.dev.address)
        if args.warmup:
            handle = await start_video(client, task_queue, "warm-up [sim:duration=0]", f"warm-{run}", args)
            await asyncio.wait_for(handle.result(), timeout=120)
        meter = lib.CpuMeter(
            {
                "server": [server.pid],
                "worker": [w.pid for w in workers],
                "simulator": [sim.process.pid],
                "driver": [os.getpid()],
            }
        )
        metrics_before = lib.scrape(server.metrics_url)
        stats_before = await sim.stats()
        ids = [f"{run}-{job.index}" for job in jobs]
        row.fsync_before_ms = lib.fsync_ms(tmp)
        threads_before = {w.pid: lib.thread_cpu(w.pid) for w in workers}
        if profiles:
            for worker in workers:
                worker.send_signal(signal.SIGUSR1)  # _profiled.py: the profile's window starts
        meter.begin()
        t0 = time.time()
        await asyncio.gather(
            *(
                start_video(client, task_queue, job.prompt(run), i, args)
                for job, i in zip(jobs, ids, strict=True)
            )
        )
        deadline = time.time() + args.durations[1] + args.phase_timeout
        await wait_closed(client, task_queue, deadline, n + (1 if args.warmup else 0))
        meter.end()
        threads_after = {w.pid: lib.thread_cpu(w.pid) for w in workers}
        metrics_after = lib.scrape(server.metrics_url)
        stats_after = await sim.stats()
    finally:
        for worker in workers:
            _stop(worker)
    for pid, after in threads_after.items():
        for name, seconds in lib.thread_cpu_by_name(threads_before.get(pid, {}), after).items():
            row.worker_threads[name] = row.worker_threads.get(name, 0.0) + seconds
    if profiles:
        row.profile = lib.profile_summary(profiles, cpu_seconds=meter.seconds("worker"))
    histories = await fetch_all(client, ids)
    save_histories(args, row, histories)
    stamps = whole_seconds_by_prompt(stats_after)
    row.status_calls = requests_delta(stats_before, stats_after, "retrieve") / n
    creates = requests_delta(stats_before, stats_after, "create")
    if creates != n:
        row.failure_notes.append(f"{creates} creates for {n} jobs")
    row.cpu_server = meter.seconds("server") / n
    row.cpu_worker = meter.seconds("worker") / n
    row.cpu_simulator = meter.seconds("simulator") / n
    row.cpu_driver = meter.seconds("driver") / n
    row.server_written_mb = meter.written_mb("server")
    closes = []
    for job, workflow_id in zip(jobs, ids, strict=True):
        history = histories[workflow_id]
        result = history.result if isinstance(history.result, dict) else {}
        if history.close_type != "WORKFLOW_EXECUTION_COMPLETED" or result.get("status") != "completed":
            row.failures += 1
            row.failure_notes.append(
                f"{workflow_id}: {history.close_type or 'still running'} {result.get('status')}"
            )
            continue
        assert history.closed is not None
        closes.append(history.closed)
        row.events.append(len(history.events))
        submit = history.runs_of(SUBMIT_ACTIVITY)
        checks = history.runs_of(CHECK_ACTIVITY)
        row.polls.append(len(checks))
        starts = [c.started for c in checks]
        row.gaps += [b - a for a, b in itertools.pairwise(starts)]
        if not submit:
            continue
        whole = stamps.get(job.prompt(run), ("", None))[1]
        created, half = created_estimate(submit[-1].started, submit[-1].ended, whole)
        row.created_uncertainty.append(half)
        finish = created + job.seconds
        seen = next(
            (c for c in checks if isinstance(c.result, dict) and c.result.get("status") == "completed"), None
        )
        if seen is not None:
            row.detection.append(seen.started - finish)
        row.stored.append(history.closed - finish)
    row.wall = (max(closes) - t0) if closes else math.nan
    _profile(row, list(histories.values()), CHECK_ACTIVITY, metrics_before, metrics_after)
    _machine(row, meter, tmp)
    return row


def profile_path(base: Path, k: int) -> Path:
    """``--profile-worker FILE``: worker 0 writes FILE, worker k writes FILE.k."""
    base = base.resolve()
    return base if k == 0 else base.with_name(f"{base.name}.{k}")


# --- output ------------------------------------------------------------------------------------------


def _num(value: float, digits: int = 2) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def main_table(rows: Sequence[Row]) -> str:
    header = (
        "| run | server | N | wall s | status calls / job | poll gap p50 / p99 s | detection lag p50 / p99 s "
        "| done → stored p50 / p99 s | history events / job | server CPU-s / job | worker CPU-s / job | failures |"
    )
    lines = [header, "|" + "---|" * 12]
    for r in rows:
        events = f"{lib.mean(r.events):.0f}" if r.events else "—"
        lines.append(
            f"| {r.run} | {r.server} | {r.n} | {_num(r.wall, 1)} | {_num(r.status_calls, 1)} | {lib.p50_p99(r.gaps)} "
            f"| {lib.p50_p99(r.detection)} | {lib.p50_p99(r.stored)} | {events} | {_num(r.cpu_server, 3)} "
            f"| {_num(r.cpu_worker, 3)} | {r.failures} |"
        )
    return "\n".join(lines)


def profile_table(rows: Sequence[Row]) -> str:
    header = (
        "| run | server | check p50 / p99 | result → timer p50 / p99 | timer late p50 / p99 | timer → check p50 / p99 "
        "| WFT sched→start p50 / p99 | WFT start→complete p50 / p99 | activity sched→start p50 / p99 |"
    )
    lines = [header, "|" + "---|" * 9]
    for r in rows:
        if not r.parts:
            continue
        act = {
            k: v
            for k, v in r.latencies.items()
            if k.startswith("activity") and k.endswith("scheduled->started")
        }
        merged = [x for values in act.values() for x in values]
        lines.append(
            f"| {r.run} | {r.server} | {lib.p50_p99(r.parts['check'], 3)} | {lib.p50_p99(r.parts['result -> timer'], 3)} "
            f"| {lib.p50_p99(r.parts['timer late'], 3)} | {lib.p50_p99(r.parts['timer -> check'], 3)} "
            f"| {lib.p50_p99(r.latencies.get('workflow task scheduled->started', []), 3)} "
            f"| {lib.p50_p99(r.latencies.get('workflow task started->completed', []), 3)} | {lib.p50_p99(merged, 3)} |"
        )
    return "\n".join(lines)


def events_per_poll(row: Row) -> tuple[float, float]:
    """Least-squares fit events = fixed + per_poll x polls over the jobs; (fixed, per_poll)."""
    pairs = list(zip(row.polls, row.events, strict=False))
    if len(pairs) < 2:
        return math.nan, math.nan
    mx = lib.mean([p for p, _ in pairs])
    my = lib.mean([e for _, e in pairs])
    var = sum((p - mx) ** 2 for p, _ in pairs)
    if not var:
        return math.nan, math.nan
    slope = sum((p - mx) * (e - my) for p, e in pairs) / var
    return my - slope * mx, slope


def activity_table(rows: Sequence[Row]) -> str:
    lines = [
        "| run | server | events / job (max) | events per poll; 5-min job (60 polls) | activity | runs / job "
        "| sched→start p50 / p99 | start→complete p50 / p99 |",
        "|" + "---|" * 8,
    ]
    for r in rows:
        if not r.events:
            continue
        fixed, per_poll = events_per_poll(r)
        history = f"{lib.mean(r.events):.0f} ({max(r.events)})"
        fit = f"{per_poll:.1f}; {fixed + 60 * per_poll:.0f}" if not math.isnan(per_poll) else "—"
        names = sorted({k.split(" ")[1] for k in r.latencies if k.startswith("activity ")})
        if not names:
            lines.append(f"| {r.run} | {r.server} | {history} | {fit} | (local only) | | | |")
        for name in names:
            queued = r.latencies.get(f"activity {name} scheduled->started", [])
            ran = r.latencies.get(f"activity {name} started->completed", [])
            lines.append(
                f"| {r.run} | {r.server} | {history} | {fit} | {name} | {len(ran) / r.n:.1f} "
                f"| {lib.p50_p99(queued, 3)} | {lib.p50_p99(ran, 3)} |"
            )
            history = fit = ""
    return "\n".join(lines)


def machine_table(rows: Sequence[Row]) -> str:
    header = (
        "| run | server | phase s | persistence time s (share of phase) | top persistence ops: calls, mean ms | server disk MB "
        "| simulator CPU-s / job | driver CPU-s / job | machine busy cores (ours / others) | fsync ms before / after |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        db = top = "—"
        if r.server_profile:
            seconds = r.server_profile["persistence_seconds"]
            calls = r.server_profile["persistence_calls"]
            vis = sum(r.server_profile["visibility_seconds"].values())
            busy = sum(seconds.values()) + vis
            db = f"{busy:.1f} ({busy / r.phase_wall:.0%})"
            ranked = sorted(seconds, key=lambda op: -seconds[op])[:3]
            top = "; ".join(
                f"{op} {calls.get(op, 0):.0f}, {1000 * seconds[op] / max(calls.get(op, 1), 1):.1f}"
                for op in ranked
            )
            if vis:
                vcalls = sum(r.server_profile["visibility_calls"].values())
                top += f"; visibility {vcalls:.0f}, {1000 * vis / max(vcalls, 1):.1f}"
        others = r.machine_busy - r.ours
        lines.append(
            f"| {r.run} | {r.server} | {_num(r.phase_wall, 1)} | {db} | {top} | {_num(r.server_written_mb, 1)} "
            f"| {_num(r.cpu_simulator, 3)} | {_num(r.cpu_driver, 3)} | {_num(r.machine_busy)} ({_num(r.ours)} / {_num(others)}) "
            f"| {_num(r.fsync_before_ms, 1)} / {_num(r.fsync_after_ms, 1)} |"
        )
    return "\n".join(lines)


def print_report(rows: Sequence[Row], args: argparse.Namespace, started: float) -> None:
    print()
    print(
        f"load benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"N={args.jobs}, durations {args.durations[0]:g}-{args.durations[1]:g} s, poll interval {args.poll_interval:g} s, "
        f"time scale {args.time_scale:g}, workers {args.workers}, load average before {args.load_before}"
    )
    print()
    print(main_table(rows))
    print()
    print("Where each poll gap went (seconds; interval excluded) and task dispatch latencies from history:")
    print()
    print(profile_table(rows))
    print()
    print("History size and remote activities (local activities run inside workflow tasks):")
    print()
    print(activity_table(rows))
    print()
    print("Dev server internals (its metrics) and the machine (from /proc):")
    print()
    print(machine_table(rows))
    uncertain = [x for r in rows for x in r.created_uncertainty]
    if uncertain:
        print(
            f"\nfinish-time uncertainty (half-width of the creation window): p50 {lib.percentile(uncertain, 50):.3f} s, "
            f"max {max(uncertain):.3f} s"
        )
    for r in rows:
        if r.worker_threads:
            split = ", ".join(
                f"{name} {seconds:.1f}"
                for name, seconds in sorted(r.worker_threads.items(), key=lambda kv: -kv[1])
            )
            print(
                f"\n{r.run} / {r.server}: worker CPU-s by thread name over the phase ({split}); "
                f"dev server {r.cpu_server * r.n:.1f} CPU-s = {r.cpu_server * r.n / r.phase_wall:.2f} cores, "
                f"workers {r.cpu_worker * r.n / r.phase_wall:.2f} cores over {r.phase_wall:.1f} s"
            )
        if r.profile:
            print(
                f"\nWorker profile ({r.run} / {r.server}, from the phase's start to the worker's stop):\n\n{r.profile}"
            )
    for r in rows:
        if r.failure_notes:
            print(f"\n{r.run} / {r.server}: " + "; ".join(r.failure_notes[:5]))
    print(f"\ntotal {time.monotonic() - started:.0f} s")


# --- main --------------------------------------------------------------------------------------------


def _range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition("-")
    low, high = float(lo), float(hi or lo)
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError("expected LO-HI seconds, 0 < LO <= HI")
    return low, high


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/load.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--jobs", "-n", type=int, default=100, help="jobs started at once (default 100)")
    parser.add_argument(
        "--durations", type=_range, default=(22.0, 38.0), help="job durations LO-HI s (default 22-38)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker.py processes for the durable run (default 1)"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=5.0, help="seconds between status checks (default 5)"
    )
    parser.add_argument(
        "--rounds", type=int, default=6, help="minimal workflow: timer+activity rounds (default 6)"
    )
    parser.add_argument(
        "--servers",
        default="wal",
        help="comma-separated dev-server variants: file (default pragmas), wal (file + journal_mode=wal, "
        "synchronous=normal, as make up runs it), memory (no --db-filename) (default: wal)",
    )
    parser.add_argument(
        "--sqlite-pragma",
        action="append",
        default=[],
        metavar="PRAGMA=VALUE",
        help="extra pragma for the file-backed variants, repeatable (passed to start-dev)",
    )
    parser.add_argument("--in-memory", action="store_true", help="shorthand for --servers memory")
    parser.add_argument(
        "--minimal",
        default="local,remote",
        help="minimal workflow's activity kinds: local, remote, both (default), none",
    )
    parser.add_argument(
        "--anchors-only", action="store_true", help="plain loop and minimal workflow; no durable run"
    )
    parser.add_argument("--no-plain", action="store_true", help="skip the plain loop")
    parser.add_argument("--no-durable", action="store_true", help="skip the durable workflow")
    parser.add_argument(
        "--time-scale", type=float, default=0.1, help="simulator time scale (default 0.1, as make up)"
    )
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--no-warmup", dest="warmup", action="store_false", help="skip the one warm-up job per phase"
    )
    parser.add_argument(
        "--phase-timeout", type=float, default=300.0, help="extra seconds a phase may take (default 300)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="hard limit for the whole run (default 1800 s)"
    )
    parser.add_argument(
        "--code-root",
        type=Path,
        default=lib.ROOT,
        help="run the worker, the simulator and the catalogue migration from this checkout, e.g. a commit "
        "exported with `git archive HEAD | tar -x -C DIR`, so a working tree being edited does not "
        "change the code under test (default: this repository)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument(
        "--save-histories",
        type=Path,
        default=None,
        help="write every workflow's event timeline to DIR/*.jsonl",
    )
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=None,
        metavar="CORES",
        help="before each phase, wait (up to --quiet-wait s) until other processes use fewer cores than this",
    )
    parser.add_argument("--quiet-wait", type=float, default=300.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    parser.add_argument(
        "--profile-worker",
        type=Path,
        default=None,
        metavar="FILE",
        help="profile every Python thread of the durable run's worker.py with cProfile on each thread's CPU "
        "clock (benchmarks/_profiled.py) over the phase, and write the pstats to FILE (worker k>0: FILE.k) "
        "when it stops; a summary is printed. It slows the worker 4-5x: read shares, not that run's timings",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the durable run's worker.py (its WORKER_* tuning, LOG_LEVEL ...), repeatable",
    )
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the temporary directory goes")
    _worker_flags(parser)
    return parser


async def wait_quiet(args: argparse.Namespace) -> None:
    """``--quiet-below``: let other people's work on this shared machine pass before measuring."""
    if args.quiet_below is None:
        return
    give_up = time.monotonic() + args.quiet_wait
    while True:
        before = lib.SystemCpu.read()
        await asyncio.sleep(3)
        after = lib.SystemCpu.read()
        busy = (os.cpu_count() or 1) * (after.busy - before.busy) / max(after.total - before.total, 1)
        if busy < args.quiet_below or time.monotonic() > give_up:
            print(f"  machine busy {busy:.2f} cores before the phase", flush=True)
            return


async def run(args: argparse.Namespace, tmp: Path) -> list[Row]:
    jobs = make_jobs(args.jobs, *args.durations, args.time_scale, args.seed)
    rows: list[Row] = []
    sim = start_simulator(tmp, args.time_scale, args.code_root)
    try:
        await warm_simulator(sim)
        if not args.no_plain:
            print(f"plain loop: {args.jobs} jobs ...", flush=True)
            await wait_quiet(args)
            rows.append(await run_plain(args, sim, jobs, tmp))
        for variant in args.server_list if args.minimal_kinds or not args.no_durable else []:
            server = start_server(variant, tmp, args.sqlite_pragma)
            try:
                for kind in args.minimal_kinds:
                    print(
                        f"minimal workflow ({kind}) on {server.name}: {args.jobs} workflows ...", flush=True
                    )
                    await wait_quiet(args)
                    rows.append(await run_minimal(args, server, kind == "local", tmp))
                if not args.no_durable:
                    print(f"durable workflow on {server.name}: {args.jobs} jobs ...", flush=True)
                    await wait_quiet(args)
                    rows.append(await run_durable(args, server, sim, jobs, tmp))
            finally:
                assert server.dev.process is not None
                _stop(server.dev.process)
    finally:
        _stop(sim.process)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--serve-minimal-worker" in argv:
        asyncio.run(serve_minimal_worker(argv))
        return 0
    args = build_parser().parse_args(argv)
    args.server_list = (
        ["memory"] if args.in_memory else [s.strip() for s in args.servers.split(",") if s.strip()]
    )
    unknown = set(args.server_list) - set(SERVER_VARIANTS)
    if unknown:
        raise SystemExit(f"unknown --servers: {sorted(unknown)}")
    kinds = args.minimal.replace("both", "local,remote")
    args.minimal_kinds = [] if kinds == "none" else [k.strip() for k in kinds.split(",") if k.strip()]
    if args.anchors_only:
        args.no_durable = True
    args.load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="sora-load-", dir=args.tmp_dir))

    def watchdog() -> None:
        print(
            f"\nload.py: hard timeout of {args.timeout:g} s reached; stopping everything",
            file=sys.stderr,
            flush=True,
        )
        _stop_all()
        os._exit(3)

    timer = threading.Timer(args.timeout, watchdog)
    timer.daemon = True
    timer.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        rows = asyncio.run(run(args, tmp))
    finally:
        timer.cancel()
        _stop_all()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_report(rows, args, started)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "cores": os.cpu_count(),
                    "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                    "rows": [r.summary() for r in rows],
                },
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
