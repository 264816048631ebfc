"""N video jobs with webhooks and without, in one run: how soon a finished video is stored, and at what cost.

Run: ``.venv/bin/python benchmarks/webhooks.py [--jobs 100] ...`` (``make bench`` runs it with no
arguments, a few minutes). Figures are printed, never asserted. Linux only (the load benchmark's
``/proc`` helpers); everything listens on loopback, in a temporary directory.

The stack is the load benchmark's (``benchmarks/load.py``): the dev server as ``make up`` runs it,
the simulator at time scale 0.1 (its poll hint is then 1 s, so the 5 s interval applies), one
``worker.py``; and here also the ``api`` process, which receives the simulator's signed events at
``POST /webhooks/openai``. Two phases, each with N jobs started at once (durations spread over
``--durations``, the same jobs in both):

1. **polling**: the simulator sends no events; jobs check every ``--poll-interval`` seconds.
2. **webhooks**: the simulator signs and delivers ``video.completed`` to the ``api`` process, and
   the jobs (started as the starter starts them with ``OPENAI_WEBHOOK_SECRET`` set) check only
   after an event, or after ``--fallback`` seconds without one.

Figures: done -> stored (the workflow's completion event minus the job's finish time, which is its
creation, from the ``submit_video`` activity and the simulator's whole-second stamp, plus its
duration), status calls per job (``GET /v1/videos/{id}`` requests the simulator counted, divided by
N; and the workflow's status checks, with the most any one job made), and for the webhook phase event -> stored (completion minus the
``remote_event`` signal) and how many jobs were woken by an event.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _loadlib as lib
import load

API_KEY = "sk-bench-webhooks"


@dataclass
class Phase:
    name: str
    n: int
    stored: list[float] = field(default_factory=list)
    after_event: list[float] = field(default_factory=list)
    checks: list[int] = field(default_factory=list)
    signals: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    status_calls: float = math.nan
    wall: float = math.nan
    failures: int = 0
    notes: list[str] = field(default_factory=list)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def start_api(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m api`` on a free loopback port; returns the process and its root URL."""
    with log_path.open("ab") as log:
        process, line = lib.start_ready(
            [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", "0"],
            ready="api ready on ",
            timeout=60,
            env=env,
            cwd=lib.ROOT,
            stderr=log,
            new_session=True,
        )
    load._track(process)
    return process, line.strip().rsplit(" ", 1)[-1]


async def configure_webhooks(sim: load.Simulator, url: str | None, secret: str | None) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{sim.url}/_sim/webhooks", json={"url": url, "secret": secret})
        answer.raise_for_status()


async def start_job(
    client: Any,
    task_queue: str,
    prompt: str,
    workflow_id: str,
    args: argparse.Namespace,
    fallback: float | None,
) -> Any:
    """Start one job as the starter does (by name, with a JSON input: no product types imported)."""
    from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

    request: dict[str, Any] = {"prompt": prompt, "poll_interval_seconds": args.poll_interval}
    if fallback is not None:
        request["webhook_fallback_seconds"] = fallback
    return await client.start_workflow(
        "VideoGenerationWorkflow",
        {"request": request},
        id=workflow_id,
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(SearchAttributeKey.for_keyword("SoraStatus"), "submitting"),
                SearchAttributePair(SearchAttributeKey.for_keyword("SoraModel"), "sora-2"),
                SearchAttributePair(SearchAttributeKey.for_int("SoraProgress"), 0),
            ]
        ),
        static_summary=prompt[:120],
    )


async def run_phase(
    args: argparse.Namespace,
    name: str,
    server: load.Server,
    sim: load.Simulator,
    jobs: list[load.Job],
    tmp: Path,
    webhooks: bool,
) -> Phase:
    from temporalio.client import Client

    phase = Phase(name, len(jobs))
    run = f"{name}-{uuid.uuid4().hex[:6]}"
    task_queue = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    folder = tmp / name
    env = load.worker_env(server, sim, folder, task_queue)
    secret = new_secret() if webhooks else None
    fallback = args.fallback if webhooks else None
    processes: list[subprocess.Popen[bytes]] = []
    try:
        load.migrate_catalogue(env, folder, lib.ROOT)
        processes.append(load._track(load.start_product_worker(env, folder / "worker.log", lib.ROOT)))
        if webhooks:
            assert secret is not None
            api, root = start_api(
                {**env, "API_KEYS": API_KEY, "OPENAI_WEBHOOK_SECRET": secret}, folder / "api.log"
            )
            processes.append(api)
            await configure_webhooks(sim, f"{root}/webhooks/openai", secret)
        else:
            await configure_webhooks(sim, None, None)
        client = await Client.connect(server.dev.address)
        if args.warmup:
            warm = await start_job(
                client, task_queue, f"warm-up {run} [sim:duration=0]", f"warm-{run}", args, fallback
            )
            await asyncio.wait_for(warm.result(), timeout=120)
        before = await sim.stats()
        ids = [f"{run}-{job.index}" for job in jobs]
        t0 = time.time()
        await asyncio.gather(
            *(
                start_job(client, task_queue, job.prompt(run), i, args, fallback)
                for job, i in zip(jobs, ids, strict=True)
            )
        )
        deadline = time.time() + args.durations[1] + args.phase_timeout
        await load.wait_closed(client, task_queue, deadline, len(jobs) + (1 if args.warmup else 0))
        after = await sim.stats()
    finally:
        for process in reversed(processes):
            load._stop(process)
    histories = await load.fetch_all(client, ids)
    stamps = load.whole_seconds_by_prompt(after)
    phase.status_calls = load.requests_delta(before, after, "retrieve") / len(jobs)
    closes = []
    for job, workflow_id in zip(jobs, ids, strict=True):
        history = histories[workflow_id]
        result = history.result if isinstance(history.result, dict) else {}
        if history.close_type != "WORKFLOW_EXECUTION_COMPLETED" or result.get("status") != "completed":
            phase.failures += 1
            phase.notes.append(
                f"{workflow_id}: {history.close_type or 'still running'} {result.get('status')}"
            )
            continue
        assert history.closed is not None
        closes.append(history.closed)
        signals = [
            e.time
            for e in history.events
            if e.type == "WORKFLOW_EXECUTION_SIGNALED" and e.attrs.signal_name == "remote_event"
        ]
        phase.signals.append(len(signals))
        phase.checks.append(len(history.runs_of(load.CHECK_ACTIVITY)))
        phase.events.append(len(history.events))
        if signals:
            phase.after_event.append(history.closed - signals[0])
        submit = history.runs_of(load.SUBMIT_ACTIVITY)
        if not submit:
            continue
        whole = stamps.get(job.prompt(run), ("", None))[1]
        created, _ = load.created_estimate(submit[-1].started, submit[-1].ended, whole)
        phase.stored.append(history.closed - (created + job.seconds))
    phase.wall = (max(closes) - t0) if closes else math.nan
    return phase


def report(phases: Sequence[Phase], args: argparse.Namespace, started: float) -> None:
    print()
    print(
        f"webhooks vs polling, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"poll interval {args.poll_interval:g} s, fallback {args.fallback:g} s, "
        f"jobs {args.durations[0]:g}-{args.durations[1]:g} s, load before {args.load_before}"
    )
    print()
    print(
        "| phase | N | wall s | done → stored p50 / p99 s | event → stored p50 / p99 s | GET /videos/{id} per job "
        "| status checks / job (max) | woken by an event | history events / job | failures |"
    )
    print("|" + "---|" * 10)
    for p in phases:
        woken = sum(1 for s in p.signals if s) if p.signals else 0
        events = f"{lib.mean(p.events):.0f}" if p.events else "—"
        checks = f"{lib.mean(p.checks):.2f} ({max(p.checks)})" if p.checks else "—"
        print(
            f"| {p.name} | {p.n} | {p.wall:.1f} | {lib.p50_p99(p.stored)} | {lib.p50_p99(p.after_event)} "
            f"| {p.status_calls:.2f} | {checks} | {woken} | {events} | {p.failures} |"
        )
    print(
        "\nGET /videos/{id} counts every status request the simulator answered, including the one the "
        "download makes before it fetches the content; status checks are the workflow's own."
    )
    for p in phases:
        for note in p.notes[:5]:
            print(f"  {p.name}: {note}")
    print(f"\ntotal {time.monotonic() - started:.0f} s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks/webhooks.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs", "-n", type=int, default=100, help="jobs started at once per phase (default 100)"
    )
    parser.add_argument(
        "--durations", type=load._range, default=(22.0, 38.0), help="job durations LO-HI s (default 22-38)"
    )
    parser.add_argument("--poll-interval", type=float, default=5.0, help="seconds between checks (default 5)")
    parser.add_argument(
        "--fallback", type=float, default=60.0, help="checks without an event this far apart (default 60)"
    )
    parser.add_argument("--time-scale", type=float, default=0.1, help="simulator time scale (default 0.1)")
    parser.add_argument("--phases", default="polling,webhooks", help="which phases, in order (default both)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    parser.add_argument("--phase-timeout", type=float, default=300.0)
    parser.add_argument(
        "--timeout", type=float, default=1500.0, help="hard limit for the run (default 1500 s)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser


async def run(args: argparse.Namespace, tmp: Path) -> list[Phase]:
    jobs = load.make_jobs(args.jobs, *args.durations, args.time_scale, args.seed)
    sim = load.start_simulator(tmp, args.time_scale, lib.ROOT)
    phases = []
    try:
        await load.warm_simulator(sim)
        server = load.start_server("file", tmp, [])
        try:
            for name in [p.strip() for p in args.phases.split(",") if p.strip()]:
                print(f"{name}: {args.jobs} jobs ...", flush=True)
                phases.append(
                    await run_phase(args, name, server, sim, jobs, tmp, webhooks=name == "webhooks")
                )
        finally:
            assert server.dev.process is not None
            load._stop(server.dev.process)
    finally:
        load._stop(sim.process)
    return phases


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unknown = {p.strip() for p in args.phases.split(",") if p.strip()} - {"polling", "webhooks"}
    if unknown:
        raise SystemExit(f"unknown --phases: {sorted(unknown)}")
    args.load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="sora-webhooks-"))

    def watchdog() -> None:
        print(
            f"\nwebhooks.py: hard timeout of {args.timeout:g} s reached; stopping",
            file=sys.stderr,
            flush=True,
        )
        load._stop_all()
        os._exit(3)

    timer = threading.Timer(args.timeout, watchdog)
    timer.daemon = True
    timer.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        phases = asyncio.run(run(args, tmp))
    finally:
        timer.cancel()
        load._stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    report(phases, args, started)
    return 1 if any(p.failures for p in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
