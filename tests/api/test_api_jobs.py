"""Jobs through the API: tenants, idempotency, cancel, deadline, byte ranges."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from api_support import API_KEY_A, API_KEY_B, ApiStack, migrate, running_api, workflow_id_of
from temporalio.testing import WorkflowEnvironment

from simulator.testing import RunningSimulator
from support import Deployment

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

# The simulator takes a job with this marker 300 s of simulated time (3 s at the tests' scale).
SLOW = "[sim:duration=300]"


def _wait_for(http: httpx.Client, video_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(f"/v1/videos/{video_id}").json()
        if done(body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"{video_id} never got there; last: {body}")


# --- tenants -------------------------------------------------------------------------------------


def test_one_key_never_sees_another_keys_jobs(api_stack: ApiStack) -> None:
    a, b = api_stack.client(API_KEY_A), api_stack.client(API_KEY_B)
    video = a.videos.create_and_poll(prompt="tenant a's private video")

    with pytest.raises(openai.NotFoundError):
        b.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        b.videos.download_content(video.id)
    with pytest.raises(openai.NotFoundError):
        b.videos.delete(video.id)
    assert video.id not in [v.id for v in b.videos.list(limit=100).data]
    assert video.id in [v.id for v in a.videos.list(limit=100).data]
    assert a.videos.retrieve(video.id).status == "completed"


def test_a_jobs_url_works_without_the_key_but_not_with_a_wrong_token(api_stack: ApiStack) -> None:
    video = api_stack.client().videos.create_and_poll(prompt="a url anyone holding it can play")
    url = (video.model_extra or {})["url"]

    with httpx.Client(timeout=30) as anonymous:
        good = anonymous.get(url)
        forged = anonymous.get(url.rpartition("token=")[0] + "token=not-the-token")

    assert good.status_code == 200 and good.content == api_stack.stored_bytes(workflow_id_of(video.id))
    assert forged.status_code == 401


# --- idempotency ---------------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_give_the_same_job(api_stack: ApiStack) -> None:
    client = api_stack.client()
    headers = {"Idempotency-Key": "same-key-same-body"}

    first = client.videos.create(prompt="an idempotent lighthouse", extra_headers=headers)
    second = client.videos.create(prompt="an idempotent lighthouse", extra_headers=headers)
    client.videos.poll(first.id)

    assert second.id == first.id
    assert api_stack.sim.creates("an idempotent lighthouse") == 1


def test_the_same_idempotency_key_with_another_body_is_a_409(api_stack: ApiStack) -> None:
    client = api_stack.client()
    headers = {"Idempotency-Key": "same-key-other-body"}
    client.videos.create(prompt="the first body", extra_headers=headers)

    with pytest.raises(openai.ConflictError) as refused:
        client.videos.create(prompt="another body", extra_headers=headers)

    assert refused.value.code == "idempotency_key_reused" and refused.value.param == "Idempotency-Key"
    assert api_stack.sim.creates("another body") == 0


def test_idempotency_keys_belong_to_their_key(api_stack: ApiStack) -> None:
    headers = {"Idempotency-Key": "shared-by-two-tenants"}

    a = api_stack.client(API_KEY_A).videos.create(prompt="two tenants, one key", extra_headers=headers)
    b = api_stack.client(API_KEY_B).videos.create(prompt="two tenants, one key", extra_headers=headers)

    assert a.id != b.id


def _race(stack: ApiStack, prompt: str, key: str, n: int = 8) -> list[httpx.Response]:
    def post(_: int) -> httpx.Response:
        with stack.http() as http:
            return http.post("/v1/videos", json={"prompt": prompt}, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(post, range(n)))


def test_racing_requests_with_one_idempotency_key_make_one_job_on_sqlite(api_stack: ApiStack) -> None:
    responses = _race(api_stack, "a race on sqlite", "race-sqlite")

    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    api_stack.client().videos.poll(responses[0].json()["id"])
    assert api_stack.sim.creates("a race on sqlite") == 1


@pytest.fixture
def postgres_stack(
    dev_env: WorkflowEnvironment, api_sim: RunningSimulator, postgres_url: str, tmp_path: Path
) -> Iterator[ApiStack]:
    target = dev_env.client.service_client.config.target_host
    migrate(postgres_url)
    deployment = Deployment.configure(target, api_sim, tmp_path, postgres_url)
    deployment.start_worker()
    try:
        with running_api(deployment, tmp_path / "api.log") as api:
            yield ApiStack(deployment, api_sim, api)
    finally:
        deployment.stop_workers()


@pytest.mark.postgres
def test_racing_requests_with_one_idempotency_key_make_one_job_on_postgresql(
    postgres_stack: ApiStack,
) -> None:
    responses = _race(postgres_stack, "a race on postgresql", "race-postgres")

    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    done = postgres_stack.client().videos.poll(responses[0].json()["id"])
    assert done.status == "completed"
    assert postgres_stack.sim.creates("a race on postgresql") == 1


# --- cancel and deadline -------------------------------------------------------------------------


def test_deleting_a_running_job_cancels_it_and_a_second_delete_removes_it(api_stack: ApiStack) -> None:
    client = api_stack.client()
    video = client.videos.create(prompt=f"a job cancelled midway {SLOW}")
    with api_stack.http() as http:
        _wait_for(http, video.id, lambda v: v["status"] == "in_progress")

        first = client.videos.delete(video.id)
        ended = _wait_for(http, video.id, lambda v: v["status"] == "failed")
        second = client.videos.delete(video.id)

    assert first.deleted is False
    assert ended["error"]["code"] == "cancelled" and "DELETE" in ended["error"]["message"]
    assert second.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)


def test_a_job_past_its_deadline_is_failed_with_code_timed_out(api_stack: ApiStack, tmp_path: Path) -> None:
    # The shortest deadline allowed is 10 s; this job would take 30 s.
    with running_api(api_stack.deployment, tmp_path / "api.log", API_DEADLINE_SECONDS="10") as short:
        client = openai.OpenAI(base_url=short.base_url, api_key=API_KEY_A)

        video = client.videos.create_and_poll(prompt="a job that outlives its deadline [sim:duration=3000]")

    assert video.status == "failed"
    assert video.error is not None and video.error.code == "timed_out"


# --- byte ranges ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(api_stack: ApiStack) -> tuple[str, bytes]:
    video = api_stack.client().videos.create_and_poll(prompt="a video to seek in")
    return video.id, api_stack.stored_bytes(workflow_id_of(video.id))


@pytest.mark.parametrize(
    ("range_header", "span"),
    [
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, None)),
        ("bytes=-50", (-50, None)),
        ("bytes=10-10", (10, 11)),
    ],
)
def test_content_honours_a_byte_range(
    api_stack: ApiStack, finished: tuple[str, bytes], range_header: str, span: tuple[int, int | None]
) -> None:
    video_id, stored = finished
    with api_stack.http() as http:
        response = http.get(f"/v1/videos/{video_id}/content", headers={"Range": range_header})

    expected = stored[span[0] : span[1]]
    first = span[0] if span[0] >= 0 else len(stored) + span[0]
    assert response.status_code == 206
    assert response.content == expected
    assert response.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{len(stored)}"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "video/mp4"


def test_content_without_a_range_is_whole_and_says_it_takes_ranges(
    api_stack: ApiStack, finished: tuple[str, bytes]
) -> None:
    video_id, stored = finished
    with api_stack.http() as http:
        response = http.get(f"/v1/videos/{video_id}/content")

    assert response.status_code == 200 and response.content == stored
    assert response.headers["accept-ranges"] == "bytes"
    assert int(response.headers["content-length"]) == len(stored)


def test_a_range_past_the_end_is_a_416(api_stack: ApiStack, finished: tuple[str, bytes]) -> None:
    video_id, stored = finished
    with api_stack.http() as http:
        response = http.get(f"/v1/videos/{video_id}/content", headers={"Range": f"bytes={len(stored)}-"})

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(stored)}"
    assert response.json()["error"]["code"] == "range_not_satisfiable"


def test_content_of_an_unfinished_job_is_a_404(api_stack: ApiStack) -> None:
    video = api_stack.client().videos.create(prompt=f"not finished yet {SLOW}")
    with api_stack.http() as http:
        response = http.get(f"/v1/videos/{video.id}/content")

    assert response.status_code == 404 and response.json()["error"]["code"] == "video_not_ready"


# --- webhooks to the application -------------------------------------------------------------------


async def test_without_an_outbound_webhook_url_no_job_tries_to_notify(
    api_stack: ApiStack, dev_env: WorkflowEnvironment
) -> None:
    video = api_stack.client().videos.create_and_poll(prompt="a quiet harbour, nobody told")

    query = f'WorkflowId = "{workflow_id_of(video.id)}-webhook"'
    assert video.status == "completed"
    assert [w.id async for w in dev_env.client.list_workflows(query)] == []
