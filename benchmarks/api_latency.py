"""Latency of ``GET /v1/videos/{id}`` on the ``api`` process at a fixed 200 requests/s, beside a plain
database read of the same job's row.

Starts its own stack on loopback (Temporal dev server, Sora simulator, a worker, the ``api``
process; SQLite unless ``--database-url`` says otherwise), makes one finished job and one job that
keeps running, then for each case sends requests on a fixed open-loop schedule (at most 64 in
flight) for ``--seconds`` and prints p50/p99. A finished job is answered from the database alone;
a running one also asks the workflow's ``progress`` query. Figures are printed, never asserted.

    .venv/bin/python benchmarks/api_latency.py [--rate 200] [--seconds 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # ``python benchmarks/api_latency.py`` puts benchmarks/ first on the path, not the repository.
    sys.path.insert(0, str(ROOT))

from api.store import JobStore  # noqa: E402
from devtools.devstack import DevServer, free_port, start_ready, start_worker, stop  # noqa: E402
from simulator.testing import start_simulator  # noqa: E402
from sora_temporal.db import make_engine  # noqa: E402
from sora_temporal.schema import upgrade  # noqa: E402

KEY = "sk-bench"
MAX_IN_FLIGHT = 64


@dataclass
class Result:
    case: str
    latencies_ms: list[float]
    errors: int
    late: int
    wall: float

    def row(self) -> str:
        done = len(self.latencies_ms)
        rate = done / self.wall if self.wall else math.nan
        return (
            f"| {self.case:<34} | {done:>6} | {rate:>7.1f} | {_pct(self.latencies_ms, 50):>7.2f} "
            f"| {_pct(self.latencies_ms, 99):>7.2f} | {max(self.latencies_ms, default=math.nan):>7.2f} "
            f"| {self.errors:>6} | {self.late:>5} |"
        )


def _pct(values: Sequence[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def _open_loop(
    case: str, call: Callable[[], Awaitable[bool]], *, rate: float, seconds: float
) -> Result:
    """Start ``call`` every 1/rate s for ``seconds`` (skipping a slot when 64 are still in flight)."""
    latencies: list[float] = []
    errors = late = 0
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def one() -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            ok = await call()
        except Exception:
            ok = False
        finally:
            slots.release()
        if ok:
            latencies.append((time.perf_counter() - started) * 1000)
        else:
            errors += 1

    tasks: list[asyncio.Task[None]] = []
    begin = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if slots.locked():
            late += 1
            continue
        await slots.acquire()
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return Result(case, latencies, errors, late, time.perf_counter() - begin)


async def _wait_status(http: httpx.AsyncClient, video_id: str, wanted: str) -> None:
    deadline = time.monotonic() + 120
    while (await http.get(f"/v1/videos/{video_id}")).json()["status"] != wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{video_id} never reached {wanted}")
        await asyncio.sleep(0.2)


async def measure(root_url: str, database_url: str, *, rate: float, seconds: float) -> list[Result]:
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=root_url, headers=headers, limits=limits, timeout=30) as http:
        finished = (
            await http.post("/v1/videos", json={"prompt": "a finished job", "size": "1280x720"})
        ).json()
        running = (
            await http.post("/v1/videos", json={"prompt": "a running job [sim:duration=100000]"})
        ).json()
        await _wait_status(http, finished["id"], "completed")
        await _wait_status(http, running["id"], "in_progress")

        def get(video_id: str) -> Callable[[], Awaitable[bool]]:
            async def call() -> bool:
                return (await http.get(f"/v1/videos/{video_id}")).status_code == 200

            return call

        engine = make_engine(database_url)
        store = JobStore(engine)
        workflow_id = "api-" + finished["id"].removeprefix("video_")

        async def db_read() -> bool:
            return await asyncio.to_thread(store.catalogue_row, workflow_id) is not None

        results = [
            await _open_loop("GET finished job (database)", get(finished["id"]), rate=rate, seconds=seconds),
            await _open_loop(
                "GET running job (database + query)", get(running["id"]), rate=rate, seconds=seconds
            ),
            await _open_loop("plain DB read of the row", db_read, rate=rate, seconds=seconds),
        ]
        engine.dispose()
        await http.delete(f"/v1/videos/{running['id']}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/api_latency.py")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each case runs")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="api-latency-") as scratch:
        root = Path(scratch)
        database_url = args.database_url or f"sqlite:///{root / 'sora.db'}"
        engine = make_engine(database_url)
        upgrade(engine)  # what `make migrate` does before a deployment
        engine.dispose()
        server = DevServer("127.0.0.1", free_port(), None, None).start()
        worker = api = None
        try:
            with start_simulator(time_scale=0.01) as sim:
                env = {
                    "PATH": "/usr/bin:/bin",
                    "TEMPORAL_ADDRESS": server.address,
                    "TEMPORAL_TASK_QUEUE": f"bench-{uuid.uuid4()}",
                    "DATABASE_URL": database_url,
                    "OPENAI_BASE_URL": sim.base_url,
                    "OPENAI_API_KEY": sim.api_key,
                    "STORAGE_BACKEND": "local",
                    "STORAGE_DIR": str(root / "storage"),
                    "DOWNLOAD_DIR": str(root / "downloads"),
                    "API_KEYS": KEY,
                    "API_POLL_INTERVAL_SECONDS": "1",
                    "LOG_LEVEL": "WARNING",
                }
                worker = start_worker(env)
                api, line = start_ready(
                    [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", "0"],
                    ready="api ready on ",
                    timeout=60,
                    env=env,
                    cwd=ROOT,
                    new_session=True,
                )
                root_url = line.rpartition(" ")[2]
                results = asyncio.run(measure(root_url, database_url, rate=args.rate, seconds=args.seconds))
        finally:
            stop(api)
            stop(worker)
            server.stop()
    print(f"\nGET /v1/videos/{{id}} at {args.rate:g} requests/s for {args.seconds:g} s per case, loopback")
    print(
        f"database: {'SQLite' if database_url.startswith('sqlite') else 'PostgreSQL'}; at most {MAX_IN_FLIGHT} in flight"
    )
    print(
        "| case                               |   done |   req/s | p50 ms  | p99 ms  | max ms  | errors |  late |"
    )
    print(
        "|------------------------------------|--------|---------|---------|---------|---------|--------|-------|"
    )
    for result in results:
        print(result.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
