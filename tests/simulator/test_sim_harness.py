"""The CLI and the test harness others build on: startup line, loopback only, control calls, cleanup."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simulator.testing import RunningSimulator, start_simulator

LISTENING = re.compile(r"^simulator listening on http://127\.0\.0\.1:(\d+)$")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "simulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def test_the_cli_prints_exactly_one_listening_line_and_serves_there(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    process = run_cli("--host", "127.0.0.1", "--port", "0", "--time-scale", "0.01", env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().rstrip("\n")
        match = LISTENING.match(line)
        assert match, line
        health = httpx.get(f"http://127.0.0.1:{match.group(1)}/_sim/health")
        assert health.json() == {"ok": True, "dialect": "openai"}
    finally:
        process.terminate()
        rest, _ = process.communicate(timeout=10)

    assert process.returncode == 0
    assert rest == b""
    # Its temporary data dir went away with it.
    assert not list(tmp_path.glob("sora-sim-*"))


def test_the_cli_refuses_to_serve_beyond_loopback() -> None:
    process = run_cli("--host", "0.0.0.0", "--port", "0")
    _, stderr = process.communicate(timeout=10)

    assert process.returncode == 2
    assert b"loopback" in stderr


def test_start_simulator_fails_loudly_when_the_simulator_cannot_start() -> None:
    with pytest.raises(RuntimeError, match="failed to start"), start_simulator(time_scale=-1):
        pass


def test_start_simulator_gives_urls_and_key_and_stops_the_process(sim_media_dir: Path) -> None:
    with start_simulator(dialect="gateway", data_dir=sim_media_dir, api_key="sk-custom") as sim:
        assert LISTENING.match(f"simulator listening on {sim.root_url}")
        assert sim.base_url == sim.root_url + "/v1"
        assert sim.api_key == "sk-custom"
        assert sim.stats()["dialect"] == "gateway"
        process = sim.process

    assert process.poll() is not None


def test_stats_describe_requests_and_jobs(api_sim: RunningSimulator) -> None:
    headers = {"Authorization": f"Bearer {api_sim.api_key}", "Idempotency-Key": "k-1"}
    httpx.post(f"{api_sim.base_url}/videos", data={"prompt": "stats please", "seconds": "8"}, headers=headers)

    stats = api_sim.stats()

    assert stats["dialect"] == "openai"
    assert stats["time_scale"] == 0.01
    assert stats["requests"]["create"] == 1
    assert stats["creates"] == 1
    [job] = stats["jobs"]
    assert {
        "id",
        "prompt",
        "model",
        "size",
        "seconds",
        "status",
        "idempotency_key",
        "created_at",
        "deleted",
        "response_lost",
        "has_input_reference",
        "input_reference_size",
    } <= set(job)
    assert (job["prompt"], job["model"], job["size"], job["seconds"]) == (
        "stats please",
        "sora-2",
        "720x1280",
        "8",
    )
    assert (job["idempotency_key"], job["deleted"], job["response_lost"]) == ("k-1", False, False)
    assert (job["has_input_reference"], job["input_reference_size"]) == (False, None)


def test_creates_counts_jobs_optionally_by_prompt_substring(api_sim: RunningSimulator) -> None:
    headers = {"Authorization": f"Bearer {api_sim.api_key}"}
    for prompt in ("cat one", "cat two", "dog"):
        httpx.post(f"{api_sim.base_url}/videos", data={"prompt": prompt}, headers=headers)

    assert api_sim.creates() == 3
    assert api_sim.creates(prompt_contains="cat") == 2
    assert api_sim.creates(prompt_contains="bird") == 0


def test_reset_forgets_jobs_rules_and_counters(api_sim: RunningSimulator) -> None:
    headers = {"Authorization": f"Bearer {api_sim.api_key}"}
    httpx.post(f"{api_sim.base_url}/videos", data={"prompt": "to forget"}, headers=headers)
    api_sim.add_fault("list", "error", status=503)

    api_sim.reset()

    stats = api_sim.stats()
    assert stats["jobs"] == [] and stats["creates"] == 0
    assert set(stats["requests"].values()) == {0}
    assert httpx.get(f"{api_sim.base_url}/videos", headers=headers).status_code == 200


def test_control_errors_surface_as_exceptions(api_sim: RunningSimulator) -> None:
    with pytest.raises(RuntimeError, match="404"):
        api_sim.force_job("video_unknown", status="completed")
    with pytest.raises(RuntimeError, match="400"):
        api_sim.add_fault("nowhere", "error")
