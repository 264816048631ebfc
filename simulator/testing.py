"""Test harness: run the simulator in a subprocess and steer it through ``/_sim``.

Example:
    >>> with start_simulator(time_scale=0.01) as sim:  # doctest: +SKIP
    ...     client = openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key)
    ...     sim.add_fault("create", "rate_limit", count=1, retry_after=0.1)
    ...     sim.configure_webhooks(url="http://127.0.0.1:8000/webhooks/openai", secret="whsec_...")
    ...     sim.add_fault("webhook", "duplicate", times=3, match_prompt="twice")

``local_simulator`` runs one in-process on a fake clock instead, for exact lifecycle tests.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from simulator.app import Simulator
from simulator.config import SimConfig
from simulator.filehost import redirect_url
from simulator.process import start_ready, terminate

READY_PREFIX = "simulator listening on "
STARTUP_TIMEOUT_S = 15.0
_CONTROL_TIMEOUT_S = 10.0
_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunningSimulator:
    """A simulator subprocess and the ways to steer it.

    Attributes:
        root_url: ``http://127.0.0.1:PORT``.
        base_url: ``root_url + "/v1"`` (what ``OPENAI_BASE_URL`` is set to).
        api_key: A key it accepts.
        process: The subprocess.
    """

    root_url: str
    base_url: str
    api_key: str
    process: subprocess.Popen[bytes]
    _http: httpx.Client | None = field(default=None, init=False, repr=False)

    def stats(self) -> dict[str, Any]:
        """``GET /_sim/stats``: dialect, time scale, request counts per route, jobs, creates."""
        result: dict[str, Any] = self._call("GET", "/_sim/stats")
        return result

    def jobs(self) -> list[dict[str, Any]]:
        """Every job created so far (including deleted ones and those whose response was lost)."""
        jobs: list[dict[str, Any]] = self.stats()["jobs"]
        return jobs

    def creates(self, prompt_contains: str | None = None) -> int:
        """How many jobs were created (a lost response still counts), optionally by prompt substring."""
        if prompt_contains is None:
            return int(self.stats()["creates"])
        return sum(1 for job in self.jobs() if prompt_contains in job["prompt"])

    def add_fault(self, route: str, action: str, **params: Any) -> None:
        """Add a fault rule (see ``POST /_sim/faults``), e.g. ``add_fault("create", "error", status=503)``."""
        self._call("POST", "/_sim/faults", json={"route": route, "action": action, **params})

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._call("DELETE", "/_sim/faults")

    def force_job(self, video_id: str, **changes: Any) -> None:
        """Force a job's state, e.g. ``force_job(id, status="failed", error_code="moderation_blocked")``."""
        self._call("POST", f"/_sim/jobs/{path_segment(video_id)}", json=changes)

    def reset(self) -> None:
        """Forget jobs, fault rules, counters, webhook events and hosted files (webhook settings stay)."""
        self._call("POST", "/_sim/reset")

    def configure_webhooks(self, **settings: Any) -> dict[str, Any]:
        """Change webhook settings: ``url`` (None turns webhooks off), ``secret``, ``attempts``.

        Returns:
            What ``GET /_sim/webhooks`` answers afterwards.
        """
        result: dict[str, Any] = self._call("POST", "/_sim/webhooks", json=settings)
        return result

    def webhooks(self) -> dict[str, Any]:
        """``GET /_sim/webhooks``: ``{url, secret_set, attempts, stats, events}``."""
        result: dict[str, Any] = self._call("GET", "/_sim/webhooks")
        return result

    def webhook_events(self) -> list[dict[str, Any]]:
        """Every webhook event so far: ids, type, video id, fault, state, attempts, responses."""
        events: list[dict[str, Any]] = self.webhooks()["events"]
        return events

    def put_file(self, name: str, body: bytes, content_type: str) -> str:
        """Host ``body`` at ``/_files/{name}`` with ``content_type``; returns its URL."""
        answer = self._call(
            "PUT", f"/_sim/files/{name}", content=body, headers={"Content-Type": content_type}
        )
        url: str = answer["url"]
        return url

    def file_url(self, name: str, **query: str | int) -> str:
        """URL of a hosted file, e.g. ``file_url("sample.jpg", size="1280x720", bomb=2**29)``."""
        suffix = "?" + urlencode(query) if query else ""
        return f"{self.root_url}/_files/{name}{suffix}"

    def redirect_url(self, target: str, hops: int = 1, status: int = 302) -> str:
        """URL of ``hops`` redirects through this simulator ending at ``target`` (never fetched by it)."""
        return redirect_url(self.root_url, target, hops, status)

    def close(self) -> None:
        """Release the control connection (done automatically when the simulator stops)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def _call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        if self._http is None:
            # One pooled client: building a fresh one per call costs tens of milliseconds.
            self._http = httpx.Client(base_url=self.root_url, timeout=_CONTROL_TIMEOUT_S)
        response = self._http.request(method, path, json=json, content=content, headers=headers)
        if response.is_error:
            raise RuntimeError(
                f"simulator control call {method} {path} failed: {response.status_code} {response.text}"
            )
        return response.json()


def path_segment(value: str) -> str:
    """``value`` escaped as exactly one URL path segment.

    ``quote`` leaves ``.`` and ``..`` alone, which clients then resolve as dot segments; here they
    become ``%2E``.
    """
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


@contextmanager
def start_simulator(
    *,
    dialect: str = "openai",
    time_scale: float = 0.01,
    seed: int = 0,
    api_key: str = "sk-sim-test",
    extra_args: Sequence[str] = (),
    data_dir: Path | None = None,
    host: str = "127.0.0.1",
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    webhook_attempts: int | None = None,
) -> Iterator[RunningSimulator]:
    """Run ``python -m simulator --port 0 ...`` and stop it afterwards.

    Args:
        dialect: ``openai`` or ``gateway``.
        time_scale: Factor applied to realistic durations.
        seed: Seed for jitter and random failures.
        api_key: The key the simulator requires.
        extra_args: More CLI arguments (``--fail-rate``, ``--never-finish`` ...).
        data_dir: Media cache directory (default: the simulator's own temp dir).
        host: Loopback address to bind.
        webhook_url: Loopback URL to deliver signed webhook events to (``--webhook-url``).
        webhook_secret: ``whsec_…`` signing secret (``--webhook-secret``); needed with a URL.
        webhook_attempts: Delivery attempts per event (``--webhook-attempts``).

    Yields:
        The running simulator.

    Raises:
        RuntimeError: When it does not report listening within 15 s.
    """
    command = [
        sys.executable,
        "-m",
        "simulator",
        "--host",
        host,
        "--port",
        "0",
        "--dialect",
        dialect,
        "--time-scale",
        repr(time_scale),
        "--seed",
        str(seed),
        "--api-key",
        api_key,
    ]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    if webhook_url is not None:
        command += ["--webhook-url", webhook_url]
    if webhook_secret is not None:
        command += ["--webhook-secret", webhook_secret]
    if webhook_attempts is not None:
        command += ["--webhook-attempts", str(webhook_attempts)]
    command += list(extra_args)
    process, line = start_ready(command, ready=READY_PREFIX, timeout=STARTUP_TIMEOUT_S)
    running: RunningSimulator | None = None
    try:
        root_url = line.removeprefix(READY_PREFIX).strip()
        running = RunningSimulator(
            root_url=root_url, base_url=root_url + "/v1", api_key=api_key, process=process
        )
        yield running
    finally:
        if running is not None:
            running.close()
        terminate(process)


class FakeClock:
    """A clock that only moves when told to, for in-process lifecycle tests.

    Args:
        now: Starting time (Unix seconds).
    """

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class LocalSimulator:
    """An in-process simulator on a fake clock.

    Attributes:
        http: aiohttp test client, already authenticated (``Authorization: Bearer <api_key>``).
        clock: The simulator's clock.
        simulator: The simulator itself (store, faults, config).
    """

    http: TestClient[web.Request, web.Application]
    clock: FakeClock
    simulator: Simulator


@asynccontextmanager
async def local_simulator(**settings: Any) -> AsyncIterator[LocalSimulator]:
    """Serve a simulator in this process on a fake clock.

    Args:
        **settings: ``SimConfig`` fields; defaults are realistic time (scale 1), key ``sk-local``
            and a temporary data directory unless ``data_dir`` is given.

    Yields:
        The running in-process simulator.
    """
    with tempfile.TemporaryDirectory(prefix="sora-sim-") as scratch:
        config = SimConfig(
            **{"time_scale": 1.0, "api_key": "sk-local", "data_dir": Path(scratch), **settings}
        )
        clock = FakeClock()
        simulator = Simulator(config, clock=clock)
        headers = {"Authorization": f"Bearer {config.api_key or 'sk-local'}"}
        http: TestClient[web.Request, web.Application] = TestClient(
            TestServer(simulator.build_app()), headers=headers
        )
        await http.start_server()
        try:
            yield LocalSimulator(http, clock, simulator)
        finally:
            await http.close()
