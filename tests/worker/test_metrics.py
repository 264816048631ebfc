"""``METRICS_PORT``: one scrape of a worker process serves the service's metrics and the Temporal SDK's."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from devtools.devstack import free_port
from sora_temporal.types import JobStatus, VideoRequest
from starter import start_video
from support import Deployment, job_result

pytestmark = pytest.mark.integration

_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)")


def _samples(text: str) -> dict[str, dict[str, float]]:
    """``{metric name: {label text: value}}`` from the Prometheus text format."""
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            found.setdefault(match.group(1), {})[match.group(2) or ""] = float(match.group(3))
    return found


def _value(samples: dict[str, dict[str, float]], name: str, **labels: str) -> float:
    for text, value in samples.get(name, {}).items():
        if all(f'{key}="{wanted}"' in text for key, wanted in labels.items()):
            return value
    raise AssertionError(f"no {name} with {labels} in {sorted(samples)}")


async def test_a_scrape_serves_the_services_metrics_and_the_temporal_sdks(
    deploy: Callable[..., Deployment], database_url: str, dev_env: WorkflowEnvironment
) -> None:
    port = free_port()
    d = deploy(database_url, METRICS_PORT=str(port))
    d.start_worker()
    handle = await start_video(
        dev_env.client,
        d.settings,
        VideoRequest(prompt="metrics: a quiet harbour", poll_interval_seconds=1),
        f"metrics-{uuid.uuid4().hex[:8]}",
    )
    result = await job_result(handle)
    assert result.status is JobStatus.COMPLETED

    async with httpx.AsyncClient() as http:
        answer = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=10)

    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = _samples(answer.text)
    assert _value(samples, "sora_jobs", status="completed") == 1
    assert _value(samples, "sora_jobs", status="failed") == 0
    assert _value(samples, "sora_jobs_in_flight") == 0
    assert _value(samples, "sora_jobs_submitted_total", model="sora-2") == 1
    assert _value(samples, "sora_video_seconds_submitted_total", model="sora-2") == 4
    assert _value(samples, "sora_jobs_finished_total", status="completed") >= 1
    assert _value(samples, "sora_status_check_seconds_count", outcome="ok") >= 1
    assert _value(samples, "sora_stored_bytes_total", backend="local", variant="video") == result.byte_size
    temporal = sorted(name for name in samples if name.startswith("temporal_"))
    assert any("activity" in name for name in temporal), temporal
    assert any("workflow" in name for name in temporal), temporal


def test_metrics_are_off_unless_a_port_is_given(deployment: Deployment) -> None:
    assert "METRICS_PORT" not in deployment.env
    log = (deployment.tmp_path / "worker.log").read_text()

    assert "metrics on" not in log
