"""Fault rules and CLI fault settings behave as specified, so every failure scenario is reproducible."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from simulator.testing import RunningSimulator, start_simulator

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


# One pooled client for the module: a fresh httpx client per request costs tens of milliseconds.
http = httpx.Client(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _close_http_client() -> Iterator[None]:
    yield
    http.close()


def auth(sim: RunningSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"}


def create(sim: RunningSimulator, prompt: str = "a fault test") -> httpx.Response:
    return http.post(f"{sim.base_url}/videos", data={"prompt": prompt}, headers=auth(sim))


def completed_video(sim: RunningSimulator, prompt: str = "finished") -> str:
    response = create(sim, prompt)
    assert response.status_code == 200
    video_id: str = response.json()["id"]
    sim.force_job(video_id, status="completed")
    return video_id


def test_error_rule_answers_with_the_status_in_an_envelope_and_creates_nothing(
    api_sim: RunningSimulator,
) -> None:
    api_sim.add_fault("create", "error", status=503, count=1)

    failed = create(api_sim)
    succeeded = create(api_sim)

    assert failed.status_code == 503
    assert set(failed.json()["error"]) == {"message", "type", "param", "code"}
    assert succeeded.status_code == 200
    assert api_sim.creates() == 1


def test_error_rule_defaults_to_500(api_sim: RunningSimulator) -> None:
    api_sim.add_fault("retrieve", "error", count=1)
    video_id = create(api_sim).json()["id"]

    response = http.get(f"{api_sim.base_url}/videos/{video_id}", headers=auth(api_sim))

    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"


def test_rate_limit_rule_sends_retry_after_in_whole_seconds_and_milliseconds(
    api_sim: RunningSimulator,
) -> None:
    api_sim.add_fault("list", "rate_limit", count=1, retry_after=1.5)

    response = http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "1500"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_reset_rule_drops_the_connection_without_a_response_and_creates_nothing(
    api_sim: RunningSimulator,
) -> None:
    api_sim.add_fault("create", "reset", count=1)

    with pytest.raises(httpx.TransportError):
        create(api_sim)

    assert api_sim.creates() == 0
    assert create(api_sim).status_code == 200


def test_slow_rule_delays_then_answers_normally(api_sim: RunningSimulator) -> None:
    api_sim.add_fault("list", "slow", delay=0.3, count=1)

    started = time.monotonic()
    response = http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim))

    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200


def test_lose_response_in_error_mode_creates_the_job_but_answers_an_error(api_sim: RunningSimulator) -> None:
    api_sim.add_fault("create", "lose_response", status=502, count=1)

    response = create(api_sim, "lost in error mode")

    assert response.status_code == 502
    assert api_sim.creates("lost in error mode") == 1
    [job] = api_sim.jobs()
    assert job["response_lost"] is True


def test_lose_response_in_reset_mode_creates_the_job_but_drops_the_connection(
    api_sim: RunningSimulator,
) -> None:
    api_sim.add_fault("create", "lose_response", mode="reset", count=1)

    with pytest.raises(httpx.TransportError):
        create(api_sim, "lost in reset mode")

    assert api_sim.creates("lost in reset mode") == 1
    assert api_sim.jobs()[0]["response_lost"] is True


def test_sdk_retry_after_a_lost_response_creates_a_second_billed_job(api_sim: RunningSimulator) -> None:
    api_sim.add_fault("create", "lose_response", status=500, count=1)

    with openai.OpenAI(base_url=api_sim.base_url, api_key=api_sim.api_key, max_retries=1) as client:
        video = client.videos.create(prompt="retried blindly")

    assert api_sim.creates("retried blindly") == 2
    assert video.id == api_sim.jobs()[1]["id"]


def test_truncate_rule_announces_the_full_length_but_sends_about_half(api_sim: RunningSimulator) -> None:
    video_id = completed_video(api_sim)
    url = f"{api_sim.base_url}/videos/{video_id}/content"
    full = http.get(url, headers=auth(api_sim)).content
    api_sim.add_fault("content", "truncate", count=1)

    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("GET", url, headers=auth(api_sim)) as response,
    ):
        assert int(response.headers["content-length"]) == len(full)
        for chunk in response.iter_raw():
            received += chunk

    assert 0 < len(received) < len(full)
    assert abs(len(received) - len(full) // 2) <= 1
    assert bytes(received) == full[: len(received)]


def test_match_prompt_limits_a_rule_to_matching_requests(api_sim: RunningSimulator) -> None:
    api_sim.add_fault("create", "error", status=500, match_prompt="[victim]")

    spared = create(api_sim, "bystander")
    hit = create(api_sim, "the [victim] prompt")
    hit_again = create(api_sim, "another [victim]")

    assert spared.status_code == 200
    assert (hit.status_code, hit_again.status_code) == (500, 500)


def test_match_prompt_on_id_routes_matches_the_addressed_jobs_prompt(api_sim: RunningSimulator) -> None:
    marked = create(api_sim, "watched job").json()["id"]
    other = create(api_sim, "other job").json()["id"]
    api_sim.add_fault("retrieve", "error", status=503, match_prompt="watched")

    assert http.get(f"{api_sim.base_url}/videos/{other}", headers=auth(api_sim)).status_code == 200
    assert http.get(f"{api_sim.base_url}/videos/{marked}", headers=auth(api_sim)).status_code == 503


def test_rules_without_count_last_until_cleared(api_sim: RunningSimulator) -> None:
    api_sim.add_fault("list", "error", status=503)

    statuses = [http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim)).status_code for _ in range(3)]
    api_sim.clear_faults()
    after = http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim)).status_code

    assert statuses == [503, 503, 503]
    assert after == 200


def test_rules_are_consumed_in_order(api_sim: RunningSimulator) -> None:
    api_sim.add_fault("list", "error", status=502, count=1)
    api_sim.add_fault("any", "error", status=503, count=2)

    statuses = [http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim)).status_code for _ in range(4)]

    assert statuses == [502, 503, 503, 200]


def test_an_invalid_fault_rule_is_rejected(api_sim: RunningSimulator) -> None:
    response = http.post(f"{api_sim.root_url}/_sim/faults", json={"route": "create", "action": "explode"})

    assert response.status_code == 400
    assert http.get(f"{api_sim.root_url}/_sim/faults").json() == {"rules": []}


def test_requests_are_counted_per_route_including_failed_ones(api_sim: RunningSimulator) -> None:
    api_sim.add_fault("create", "error", count=1)
    create(api_sim)
    video_id = create(api_sim).json()["id"]
    http.get(f"{api_sim.base_url}/videos/{video_id}", headers=auth(api_sim))
    http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim))

    stats = api_sim.stats()

    assert stats["requests"]["create"] == 2
    assert stats["requests"]["retrieve"] == 1
    assert stats["requests"]["list"] == 1
    assert stats["creates"] == 1


@pytest.fixture(scope="module")
def flaky_servers(sim_media_dir: Path) -> Iterator[tuple[RunningSimulator, RunningSimulator]]:
    args = ["--fail-rate", "0.5", "--fail-code", "503"]
    with (
        start_simulator(seed=3, extra_args=args, data_dir=sim_media_dir) as first,
        start_simulator(seed=3, extra_args=args, data_dir=sim_media_dir) as second,
    ):
        yield first, second


def test_fail_rate_fails_requests_at_random_reproducibly_and_creates_nothing_on_failure(
    flaky_servers: tuple[RunningSimulator, RunningSimulator],
) -> None:
    runs = []
    for sim in flaky_servers:
        statuses = [create(sim, f"flaky {n}").status_code for n in range(20)]
        runs.append(statuses)
        assert sim.creates() == statuses.count(200)

    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}


def test_slow_ms_delays_every_api_response(sim_media_dir: Path) -> None:
    with start_simulator(extra_args=["--slow-ms", "250"], data_dir=sim_media_dir) as sim:
        started = time.monotonic()
        response = http.get(f"{sim.base_url}/videos", headers=auth(sim))
        elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.25
