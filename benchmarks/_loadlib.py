"""Helpers of ``benchmarks/load.py``: the stack's processes, CPU from ``/proc``, server metrics,
workflow-history timing and percentiles.

Not a benchmark by itself: ``make bench`` runs every ``benchmarks/*.py``, so running this file only
says so. Linux only (``/proc``).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # ``python benchmarks/load.py`` puts benchmarks/ first on the path, not the repository.
    sys.path.insert(0, str(ROOT))

# The dev-stack helpers moved from sora_temporal/ and simulator/ to devtools/ (issue 8); take them
# from wherever they are.
try:
    from devtools.devstack import DevServer, free_port, start_worker, venv_binary
except ImportError:  # pragma: no cover - the layout before issue 8
    from sora_temporal.devstack import DevServer, free_port, start_worker, venv_binary  # type: ignore[no-redef]
try:
    from devtools.process import start_ready, terminate
except ImportError:  # pragma: no cover - the layout before issue 8
    from simulator.process import start_ready, terminate  # type: ignore[no-redef]

__all__ = [
    "ROOT",
    "DevServer",
    "free_port",
    "start_ready",
    "start_worker",
    "terminate",
    "venv_binary",
]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# --- statistics -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (numpy's default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def p50_p99(values: Sequence[float], digits: int = 2) -> str:
    """``"p50 / p99"`` or ``"—"``."""
    if not values:
        return "—"
    return f"{percentile(values, 50):.{digits}f} / {percentile(values, 99):.{digits}f}"


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


# --- CPU and I/O from /proc -----------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (its threads included), or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after it are plain.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_write_bytes(pid: int) -> int | None:
    """Bytes this process caused to be written to storage (``/proc/<pid>/io`` write_bytes)."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class SystemCpu:
    """Aggregate jiffies of the whole machine (``/proc/stat`` first line)."""

    busy: int
    iowait: int
    total: int

    @classmethod
    def read(cls) -> SystemCpu:
        parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        user, nice, system, idle, iowait, irq, softirq, steal = (parts + [0] * 8)[:8]
        busy = user + nice + system + irq + softirq + steal
        return cls(busy=busy, iowait=iowait, total=busy + idle + iowait)


@dataclass
class CpuMeter:
    """CPU seconds of named process groups over an interval, and the machine's busy cores.

    Args:
        groups: Name -> pids; a pid that exits keeps the CPU it had when last read.
    """

    groups: dict[str, list[int]]
    start: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    writes_start: dict[int, int] = field(default_factory=dict)
    writes_last: dict[int, int] = field(default_factory=dict)
    system_start: SystemCpu | None = None
    system_end: SystemCpu | None = None
    t0: float = 0.0
    t1: float = 0.0

    def begin(self) -> None:
        self.t0 = time.monotonic()
        self.system_start = SystemCpu.read()
        self.start = {}
        for pids in self.groups.values():
            for pid in pids:
                self.start[pid] = process_cpu_seconds(pid) or 0.0
                self.writes_start[pid] = process_write_bytes(pid) or 0
        self.last = dict(self.start)
        self.writes_last = dict(self.writes_start)

    def sample(self) -> None:
        """Remember the latest readings (so a process that dies later is still counted)."""
        for pid in self.start:
            cpu = process_cpu_seconds(pid)
            if cpu is not None:
                self.last[pid] = cpu
            written = process_write_bytes(pid)
            if written is not None:
                self.writes_last[pid] = written

    def end(self) -> None:
        self.sample()
        self.system_end = SystemCpu.read()
        self.t1 = time.monotonic()

    def seconds(self, group: str) -> float:
        return sum(self.last[p] - self.start[p] for p in self.groups.get(group, []))

    def written_mb(self, group: str) -> float:
        return sum(self.writes_last[p] - self.writes_start[p] for p in self.groups.get(group, [])) / 1e6

    @property
    def wall(self) -> float:
        return self.t1 - self.t0

    def machine_busy_cores(self) -> float:
        """Average busy cores of the whole machine (every process, other engineers' included)."""
        assert self.system_start and self.system_end
        total = self.system_end.total - self.system_start.total
        busy = self.system_end.busy - self.system_start.busy
        return (os.cpu_count() or 1) * busy / total if total else math.nan

    def iowait_cores(self) -> float:
        assert self.system_start and self.system_end
        total = self.system_end.total - self.system_start.total
        wait = self.system_end.iowait - self.system_start.iowait
        return (os.cpu_count() or 1) * wait / total if total else math.nan

    def ours_cores(self) -> float:
        return sum(self.seconds(g) for g in self.groups) / self.wall if self.wall else math.nan


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Thread id -> (thread name, user + system CPU seconds) of every thread of ``pid`` now."""
    out: dict[int, tuple[str, float]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
            raw = (task / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return out


def thread_cpu_by_name(
    before: Mapping[int, tuple[str, float]], after: Mapping[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds per thread name between two :func:`thread_cpu` readings (threads gone by then are missed)."""
    out: dict[str, float] = defaultdict(float)
    for tid, (name, cpu) in after.items():
        out[name] += cpu - before.get(tid, (name, 0.0))[1]
    return dict(out)


def fsync_ms(folder: Path, rounds: int = 15) -> float:
    """Median time of writing 4 KiB and fsync-ing it in ``folder``: how contended the disk is right now."""
    path = folder / f".fsync-probe-{os.getpid()}"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            os.pwrite(fd, os.urandom(4096), 0)
            os.fsync(fd)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return percentile(times, 50)


# --- the dev server's Prometheus metrics -------------------------------------------------------------

MetricKey = tuple[str, tuple[tuple[str, str], ...]]


def scrape(url: str, timeout: float = 10.0) -> dict[MetricKey, float]:
    """Counters, gauges and histogram sums/counts from a Prometheus text endpoint (buckets skipped)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode()
    out: dict[MetricKey, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "_bucket{" in line:
            continue
        name_labels, _, value = line.rpartition(" ")
        name, _, labels = name_labels.partition("{")
        pairs: list[tuple[str, str]] = []
        for item in _split_labels(labels.rstrip("}")):
            key, _, raw = item.partition("=")
            pairs.append((key, raw.strip('"')))
        try:
            out[(name, tuple(sorted(pairs)))] = float(value)
        except ValueError:
            continue
    return out


def _split_labels(labels: str) -> Iterable[str]:
    current, quoted = "", False
    for char in labels:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            if current:
                yield current
            current = ""
        else:
            current += char
    if current:
        yield current


def metric_delta(
    before: Mapping[MetricKey, float], after: Mapping[MetricKey, float], name: str, by: str
) -> dict[str, float]:
    """Increase of metric ``name`` between two scrapes, summed per value of label ``by``."""
    out: dict[str, float] = defaultdict(float)
    for key, value in after.items():
        if key[0] != name:
            continue
        label = dict(key[1]).get(by, "")
        out[label] += value - before.get(key, 0.0)
    return {k: v for k, v in out.items() if v}


@dataclass
class ServerProfile:
    """What the dev server spent its time on during a phase (from its own metrics)."""

    persistence_seconds: dict[str, float]
    persistence_calls: dict[str, float]
    visibility_seconds: dict[str, float]
    visibility_calls: dict[str, float]
    task_queue_seconds: dict[str, float]
    task_queue_count: dict[str, float]

    @classmethod
    def between(cls, before: Mapping[MetricKey, float], after: Mapping[MetricKey, float]) -> ServerProfile:
        return cls(
            persistence_seconds=metric_delta(before, after, "persistence_latency_sum", "operation"),
            persistence_calls=metric_delta(before, after, "persistence_latency_count", "operation"),
            visibility_seconds=metric_delta(before, after, "visibility_persistence_latency_sum", "operation"),
            visibility_calls=metric_delta(before, after, "visibility_persistence_latency_count", "operation"),
            task_queue_seconds=metric_delta(before, after, "task_latency_queue_sum", "operation"),
            task_queue_count=metric_delta(before, after, "task_latency_queue_count", "operation"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "persistence_seconds": self.persistence_seconds,
            "persistence_calls": self.persistence_calls,
            "visibility_seconds": self.visibility_seconds,
            "visibility_calls": self.visibility_calls,
            "task_queue_seconds": self.task_queue_seconds,
            "task_queue_count": self.task_queue_count,
        }


# --- the worker's profile (load.py --profile-worker) -------------------------------------------------

# Where a function's own time is charged, by its file (first match wins); built-ins by their name.
PROFILE_AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("workflow sandbox (temporalio.worker.workflow_sandbox)", ("temporalio/worker/workflow_sandbox/",)),
    ("workflow activations (temporalio.worker._workflow*)", ("temporalio/worker/_workflow",)),
    ("data conversion (temporalio.converter, json)", ("temporalio/converter", "/json/", "_json.")),
    ("activity worker (temporalio.worker._activity)", ("temporalio/worker/_activity",)),
    ("SDK bridge, protobuf", ("temporalio/bridge/", "google/protobuf", "temporal_sdk_bridge", "upb")),
    ("the profiler itself", ("_profiled.py", "cProfile.py", "_lsprof")),
    ("other temporalio", ("temporalio/",)),
    ("SQLAlchemy, sqlite3", ("sqlalchemy/", "sqlite3")),
    (
        "HTTP (httpx, httpcore, h11, anyio, ssl, socket)",
        ("httpx/", "httpcore/", "h11/", "anyio/", "ssl", "socket"),
    ),
    ("logging", ("logging/",)),
    (
        "asyncio, selectors, threads",
        ("asyncio/", "selectors", "select.", "threading.py", "concurrent/", "queue.py", "_thread"),
    ),
    ("our code (workflows, activities, sora_temporal)", ("/workflows/", "/activities/", "/sora_temporal/")),
    (
        "module imports (importlib)",
        ("importlib", "<frozen", "_imp.", "builtins.exec", "builtins.compile", "marshal"),
    ),
    (
        "dataclasses, typing, inspect, enum",
        ("dataclasses.py", "typing.py", "inspect.py", "enum.py", "typing_extensions", "types.py"),
    ),
    ("file and OS calls", ("posix.", "os.py", "shutil", "io.", "_io", "pathlib", "tempfile")),
)


def _area(key: tuple[str, int, str]) -> str:
    file, _, func = key
    where = f"{file} {func}" if file == "~" else file
    for label, needles in PROFILE_AREAS:
        if any(n in where for n in needles):
            return label
    return "other (stdlib, third-party)"


def _where(key: tuple[str, int, str]) -> str:
    file, line, func = key
    if file == "~":
        return func
    parts = Path(file).parts
    short = "/".join(parts[-3:]) if "site-packages" in parts or "lib" in parts else "/".join(parts[-2:])
    return f"{short}:{line}({func})"


def profile_summary(paths: Sequence[Path], *, top: int = 25, cpu_seconds: float | None = None) -> str:
    """Own CPU time per area and the top functions of the worker's profile(s), as Markdown tables.

    Args:
        paths: ``pstats`` files (one per profiled worker process); merged.
        top: Rows of the two top-function tables.
        cpu_seconds: The processes' CPU seconds over the phase from ``/proc``, to show what the
            profile saw of it (the Rust core's threads are not in it).
    """
    import pstats

    existing = [str(p) for p in paths if p.exists()]
    if not existing:
        return "no profile was written (did the worker stop before SIGKILL?)"
    stats = pstats.Stats(existing[0])
    for path in existing[1:]:
        stats.add(path)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in raw.values()) or math.nan
    areas: dict[str, float] = defaultdict(float)
    for key, (_, _, tt, _, _) in raw.items():
        areas[_area(key)] += tt
    lines = [f"profiled CPU: {total:.1f} s in Python threads"]
    if cpu_seconds is not None:
        lines[0] += f"; the process used {cpu_seconds:.1f} CPU-s over the phase (/proc)"
    lines += ["", "| area (own time) | CPU-s | share |", "|---|---|---|"]
    for label, seconds in sorted(areas.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {seconds:.1f} | {seconds / total:.1%} |")
    by_cum = sorted(raw.items(), key=lambda kv: -kv[1][3])
    lines += [
        "",
        f"Top {top} by cumulative time:",
        "",
        "| function | calls (or samples) | cumulative s | share | own s |",
        "|---|---|---|---|---|",
    ]
    for key, (_, nc, tt, ct, _) in by_cum[:top]:
        lines.append(f"| `{_where(key)}` | {nc} | {ct:.1f} | {ct / total:.1%} | {tt:.1f} |")
    by_own = sorted(raw.items(), key=lambda kv: -kv[1][2])
    lines += [
        "",
        f"Top {top} by own time:",
        "",
        "| function | calls (or samples) | own s | share | area |",
        "|---|---|---|---|---|",
    ]
    for key, (_, nc, tt, _, _) in by_own[:top]:
        lines.append(f"| `{_where(key)}` | {nc} | {tt:.1f} | {tt / total:.1%} | {_area(key)} |")
    return "\n".join(lines)


# --- workflow histories ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """The parts of a history event the benchmark reads."""

    id: int
    time: float
    type: str
    attrs: Any


def event_time(proto_time: Any) -> float:
    return float(proto_time.seconds) + proto_time.nanos / 1e9


def payload_json(payloads: Any) -> Any:
    """The first JSON payload of a ``Payloads`` message, or None."""
    if payloads is None or not payloads.payloads:
        return None
    try:
        return json.loads(payloads.payloads[0].data)
    except ValueError:
        return None


@dataclass
class ActivityRun:
    """One activity execution as seen in history (remote, or local through its marker)."""

    name: str
    local: bool
    scheduled: float
    started: float
    ended: float
    result: Any


@dataclass
class TimerRun:
    started: float
    fired: float | None
    duration: float


@dataclass
class WorkflowTask:
    scheduled: float
    started: float | None
    completed: float | None


@dataclass
class History:
    """A workflow's events across its continue-as-new chain, read into timings."""

    events: list[Event]
    activities: list[ActivityRun]
    timers: list[TimerRun]
    workflow_tasks: list[WorkflowTask]
    started: float
    closed: float | None
    close_type: str | None
    result: Any

    @classmethod
    def parse(cls, events: Sequence[Event]) -> History:
        activities: list[ActivityRun] = []
        timers: dict[str, TimerRun] = {}
        timer_list: list[TimerRun] = []
        tasks: dict[int, WorkflowTask] = {}
        scheduled: dict[int, tuple[str, float]] = {}
        started_at: dict[int, float] = {}
        closed = close_type = result = None
        for e in events:
            a = e.attrs
            if e.type == "ACTIVITY_TASK_SCHEDULED":
                scheduled[e.id] = (a.activity_type.name, e.time)
            elif e.type == "ACTIVITY_TASK_STARTED":
                started_at[a.scheduled_event_id] = e.time
            elif e.type in ("ACTIVITY_TASK_COMPLETED", "ACTIVITY_TASK_FAILED", "ACTIVITY_TASK_TIMED_OUT"):
                name, at = scheduled.get(a.scheduled_event_id, ("?", e.time))
                value = payload_json(a.result) if e.type == "ACTIVITY_TASK_COMPLETED" else None
                activities.append(
                    ActivityRun(name, False, at, started_at.get(a.scheduled_event_id, e.time), e.time, value)
                )
            elif e.type == "MARKER_RECORDED" and a.marker_name == "core_local_activity":
                data = payload_json(a.details.get("data"))
                if isinstance(data, dict):
                    sched = data.get("original_schedule_time") or data.get("complete_time") or {}
                    at = float(sched.get("seconds", 0)) + sched.get("nanos", 0) / 1e9 if sched else e.time
                    value = payload_json(a.details.get("result"))
                    activities.append(
                        ActivityRun(str(data.get("activity_type")), True, at, at, e.time, value)
                    )
            elif e.type == "TIMER_STARTED":
                timeout = a.start_to_fire_timeout
                run = TimerRun(e.time, None, timeout.seconds + timeout.nanos / 1e9)
                timers[a.timer_id] = run
                timer_list.append(run)
            elif e.type == "TIMER_FIRED":
                if a.timer_id in timers:
                    timers[a.timer_id].fired = e.time
            elif e.type == "WORKFLOW_TASK_SCHEDULED":
                tasks[e.id] = WorkflowTask(e.time, None, None)
            elif e.type == "WORKFLOW_TASK_STARTED":
                if a.scheduled_event_id in tasks:
                    tasks[a.scheduled_event_id].started = e.time
            elif e.type == "WORKFLOW_TASK_COMPLETED":
                if a.scheduled_event_id in tasks:
                    tasks[a.scheduled_event_id].completed = e.time
            elif e.type.startswith("WORKFLOW_EXECUTION_") and e.type not in (
                "WORKFLOW_EXECUTION_STARTED",
                "WORKFLOW_EXECUTION_SIGNALED",
                "WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
                "WORKFLOW_EXECUTION_CANCEL_REQUESTED",
                "WORKFLOW_EXECUTION_OPTIONS_UPDATED",
            ):
                closed, close_type = e.time, e.type
                if e.type == "WORKFLOW_EXECUTION_COMPLETED":
                    result = payload_json(a.result)
        return cls(
            events=list(events),
            activities=activities,
            timers=timer_list,
            workflow_tasks=list(tasks.values()),
            started=events[0].time if events else math.nan,
            closed=closed,
            close_type=close_type,
            result=result,
        )

    def runs_of(self, name: str) -> list[ActivityRun]:
        return [run for run in self.activities if run.name == name]


async def fetch_history(client: Any, workflow_id: str) -> History:
    """Every event of the workflow's latest run and the runs it continued from, oldest first."""
    from temporalio.api.enums.v1 import EventType

    runs: list[list[Event]] = []
    run_id: str | None = None
    for _ in range(100):
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        events: list[Event] = []
        async for raw in handle.fetch_history_events():
            kind = EventType.Name(raw.event_type).removeprefix("EVENT_TYPE_")
            attrs = getattr(raw, raw.WhichOneof("attributes")) if raw.WhichOneof("attributes") else None
            events.append(Event(raw.event_id, event_time(raw.event_time), kind, attrs))
        runs.append(events)
        first = events[0].attrs if events else None
        previous = getattr(first, "continued_execution_run_id", "") if first is not None else ""
        if not previous:
            break
        run_id = previous
    return History.parse([e for run in reversed(runs) for e in run])


@dataclass
class GapParts:
    """One poll gap split into where its time went (seconds).

    ``check`` is the status check itself (start to its result recorded), ``to_timer`` from the
    result to the next timer's start (workflow tasks, saves), ``timer_lag`` the timer firing late,
    ``to_check`` from the timer firing to the next check starting (workflow task, activity dispatch).
    """

    gap: float
    check: float
    to_timer: float
    timer_lag: float
    to_check: float


def gap_parts(checks: Sequence[ActivityRun], timers: Sequence[TimerRun]) -> list[GapParts]:
    """Decompose the gaps between consecutive checks using the timer that lies between them."""
    out: list[GapParts] = []
    ordered = sorted(timers, key=lambda t: t.started)
    for before, after in itertools.pairwise(checks):
        timer = next(
            (
                t
                for t in ordered
                if t.started >= before.ended - 1e-6 and t.fired and t.fired <= after.started + 1e-6
            ),
            None,
        )
        if timer is None or timer.fired is None:
            continue
        out.append(
            GapParts(
                gap=after.started - before.started,
                check=before.ended - before.started,
                to_timer=timer.started - before.ended,
                timer_lag=timer.fired - timer.started - timer.duration,
                to_check=after.started - timer.fired,
            )
        )
    return out


def task_latencies(histories: Iterable[History]) -> dict[str, list[float]]:
    """Workflow-task and activity scheduled->started and started->completed times, timer lateness."""
    out: dict[str, list[float]] = defaultdict(list)
    for history in histories:
        for task in history.workflow_tasks:
            if task.started is not None:
                out["workflow task scheduled->started"].append(task.started - task.scheduled)
                if task.completed is not None:
                    out["workflow task started->completed"].append(task.completed - task.started)
        for run in history.activities:
            if not run.local:
                out[f"activity {run.name} scheduled->started"].append(run.started - run.scheduled)
                out[f"activity {run.name} started->completed"].append(run.ended - run.started)
        for timer in history.timers:
            if timer.fired is not None:
                out["timer fired late by"].append(timer.fired - timer.started - timer.duration)
    return dict(out)


def run_command(command: Sequence[str], timeout: float = 30.0) -> str:
    """Output of a short command, or the error text."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    return (done.stdout or done.stderr).strip()


if __name__ == "__main__":
    print("helper of benchmarks/load.py; nothing to measure on its own")
