"""Clients of the API still get their video when the worker dies or the API restarts mid-job."""

from __future__ import annotations

import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from api_support import ApiStack, workflow_id_of
from openai.types import Video

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SLOW = "[sim:duration=400]"


def _create_and_poll_in_background(
    stack: ApiStack, pool: ThreadPoolExecutor, prompt: str
) -> tuple[str, Future[Video]]:
    # Generous retries: the API is away for a moment while it restarts.
    client = stack.client(max_retries=10)
    video = client.videos.create(prompt=prompt)
    return video.id, pool.submit(client.videos.poll, video.id, poll_interval_ms=200)


def _wait_until_in_progress(stack: ApiStack, video_id: str) -> None:
    with stack.http() as http:
        deadline = time.monotonic() + 60
        while http.get(f"/v1/videos/{video_id}").json()["status"] != "in_progress":
            assert time.monotonic() < deadline, "the job never started running"
            time.sleep(0.1)


def test_a_worker_killed_mid_job_is_replaced_and_the_client_gets_its_video(api_stack: ApiStack) -> None:
    prompt = f"a worker dies under this job {SLOW}"
    with ThreadPoolExecutor(max_workers=1) as pool:
        video_id, polled = _create_and_poll_in_background(api_stack, pool, prompt)
        _wait_until_in_progress(api_stack, video_id)

        for worker in api_stack.deployment.workers:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        api_stack.deployment.start_worker()
        video = polled.result(timeout=120)

    assert video.status == "completed"
    assert api_stack.client().videos.download_content(video.id).read() == api_stack.stored_bytes(
        workflow_id_of(video.id)
    )
    assert api_stack.sim.creates(prompt) == 1


def test_the_api_restarted_mid_job_loses_nothing(api_stack: ApiStack) -> None:
    prompt = f"the api restarts under this job {SLOW}"
    with ThreadPoolExecutor(max_workers=1) as pool:
        video_id, polled = _create_and_poll_in_background(api_stack, pool, prompt)
        _wait_until_in_progress(api_stack, video_id)

        api_stack.api.kill()
        api_stack.api.start()
        video = polled.result(timeout=120)

    assert video.status == "completed" and video.id == video_id
    assert api_stack.sim.creates(prompt) == 1
    assert video_id in [v.id for v in api_stack.client().videos.list(limit=100).data]
