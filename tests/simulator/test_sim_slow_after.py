"""``slow`` with ``after: true``: the work is done first and only the answer is held.

This is what lets a crash land between "the server made the job" and "the client heard about it",
and in the middle of a download.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from simulator.testing import RunningSimulator

http = httpx.Client(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _close_http_client() -> Iterator[None]:
    yield
    http.close()


def _auth(sim: RunningSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"}


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_held_create_has_made_its_job_before_it_answers(api_sim: RunningSimulator) -> None:
    api_sim.add_fault("create", "slow", delay=1.0, after=True, count=1)
    answers: list[tuple[float, httpx.Response]] = []
    started = time.monotonic()

    def post() -> None:
        response = http.post(f"{api_sim.base_url}/videos", data={"prompt": "held"}, headers=_auth(api_sim))
        answers.append((time.monotonic() - started, response))

    sender = threading.Thread(target=post)
    sender.start()
    _wait_for(lambda: api_sim.creates("held") == 1)
    answered_before_the_job_existed = bool(answers)
    sender.join(timeout=5)

    assert not answered_before_the_job_existed
    ((answered_at, response),) = answers
    assert answered_at >= 1.0
    assert response.status_code == 200 and response.json()["id"] == api_sim.jobs()[0]["id"]


def test_held_content_sends_half_its_body_pauses_then_completes(api_sim: RunningSimulator) -> None:
    created = http.post(f"{api_sim.base_url}/videos", data={"prompt": "paused"}, headers=_auth(api_sim))
    video_id = created.json()["id"]
    api_sim.force_job(video_id, status="completed")
    full = http.get(f"{api_sim.base_url}/videos/{video_id}/content", headers=_auth(api_sim)).content
    api_sim.add_fault("content", "slow", delay=0.6, after=True, count=1)

    arrivals: list[tuple[float, int]] = []
    started = time.monotonic()
    with http.stream("GET", f"{api_sim.base_url}/videos/{video_id}/content", headers=_auth(api_sim)) as r:
        assert r.status_code == 200
        body = b""
        for chunk in r.iter_raw():
            body += chunk
            arrivals.append((time.monotonic() - started, len(body)))

    assert body == full
    # The pause sits between two arrivals, after some but not all of the body.
    gaps = [(later[0] - earlier[0], earlier[1]) for earlier, later in itertools.pairwise(arrivals)]
    assert any(gap >= 0.5 and 0 < received < len(full) for gap, received in gaps), gaps


def test_after_must_be_a_boolean(api_sim: RunningSimulator) -> None:
    response = http.post(
        f"{api_sim.root_url}/_sim/faults", json={"route": "create", "action": "slow", "after": "yes"}
    )

    assert response.status_code == 400
    assert "'after' must be a boolean" in response.json()["error"]["message"]
