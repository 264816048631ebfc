"""Job lifecycle read lazily from the clock: timing, progress, outcomes, expiry and steering."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from simulator.config import SimConfig
from simulator.testing import LocalSimulator, RunningSimulator

LocalSimFactory = Callable[..., Awaitable[LocalSimulator]]


async def create(sim: LocalSimulator, prompt: str = "a calm sea", **fields: str) -> dict[str, Any]:
    response = await sim.http.post("/v1/videos", data={"prompt": prompt, **fields})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def retrieve(sim: LocalSimulator, video_id: str) -> dict[str, Any]:
    response = await sim.http.get(f"/v1/videos/{video_id}")
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def finish_time(sim: LocalSimulator, video_id: str, step: float = 0.5, limit: float = 3600) -> float:
    """Realistic seconds from creation until the job is final."""
    waited = 0.0
    while (await retrieve(sim, video_id))["status"] not in ("completed", "failed"):
        sim.clock.advance(step)
        waited += step
        assert waited < limit, "job never finished"
    return waited


async def test_a_job_is_queued_then_in_progress_with_rising_progress_then_completed(
    local_sim: LocalSimFactory,
) -> None:
    sim = await local_sim()
    video = await create(sim)
    seen: list[tuple[str, int]] = []
    while video["status"] != "completed":
        seen.append((video["status"], video["progress"]))
        sim.clock.advance(2)
        video = await retrieve(sim, video["id"])

    statuses = [status for status, _ in seen]
    assert statuses[0] == "queued"
    assert "in_progress" in statuses
    assert statuses.index("in_progress") > statuses.index("queued")
    running = [progress for status, progress in seen if status == "in_progress"]
    assert running == sorted(running) and running[-1] > running[0]
    assert max(running) <= 99
    assert video["progress"] == 100
    assert video["completed_at"] is not None


async def test_completion_takes_realistic_time_and_pro_takes_about_twice_as_long(
    local_sim: LocalSimFactory,
) -> None:
    sim = await local_sim()
    standard = await create(sim, model="sora-2", seconds="4")
    pro = await create(sim, model="sora-2-pro", seconds="4")

    standard_seconds = await finish_time(sim, standard["id"])
    pro_seconds = await finish_time(sim, pro["id"]) + standard_seconds

    # sora-2: ~30 s + 6 s per clip-second with jitter, plus a few seconds of queue.
    assert 40 <= standard_seconds <= 80
    assert 1.5 <= pro_seconds / standard_seconds <= 2.8


async def test_longer_clips_take_longer(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    short = await create(sim, seconds="4")
    long = await create(sim, seconds="12")

    short_seconds = await finish_time(sim, short["id"])
    long_seconds = short_seconds + await finish_time(sim, long["id"])

    assert long_seconds > short_seconds + 20


async def test_the_same_seed_gives_the_same_schedule_and_another_seed_does_not(
    local_sim: LocalSimFactory,
) -> None:
    durations = []
    for seed in (7, 7, 8):
        sim = await local_sim(seed=seed)
        video = await create(sim)
        durations.append(await finish_time(sim, video["id"], step=0.25))

    assert durations[0] == durations[1]
    assert durations[0] != durations[2]


async def test_completed_content_expires_an_hour_after_completion(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    video = await create(sim)
    await finish_time(sim, video["id"])
    video = await retrieve(sim, video["id"])

    assert video["expires_at"] - video["completed_at"] in (3599, 3600, 3601)
    assert (await sim.http.get(f"/v1/videos/{video['id']}/content")).status == 200
    sim.clock.advance(3601)
    expired = await sim.http.get(f"/v1/videos/{video['id']}/content")
    assert expired.status == 404
    assert "expired" in (await expired.json())["error"]["message"]


async def test_expire_after_overrides_the_content_lifetime(local_sim: LocalSimFactory) -> None:
    sim = await local_sim(expire_after=60)
    video = await create(sim)
    await finish_time(sim, video["id"])
    video = await retrieve(sim, video["id"])

    assert video["expires_at"] - video["completed_at"] in (59, 60, 61)


def test_the_scaled_content_lifetime_is_never_below_one_second() -> None:
    assert SimConfig(time_scale=0.0001).content_lifetime == 1.0
    assert SimConfig(time_scale=0.01).content_lifetime == 36.0


async def test_content_before_completion_is_not_found_and_says_not_ready(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    video = await create(sim)

    response = await sim.http.get(f"/v1/videos/{video['id']}/content")

    assert response.status == 404
    assert "not ready" in (await response.json())["error"]["message"]


async def test_status_responses_carry_a_scaled_poll_hint(local_sim: LocalSimFactory) -> None:
    realistic = await local_sim()
    fast = await local_sim(time_scale=0.01)
    fastest = await local_sim(time_scale=0.0001)

    hints = []
    for sim in (realistic, fast, fastest):
        response = await sim.http.post("/v1/videos", data={"prompt": "hint"})
        hints.append(int(response.headers["openai-poll-after-ms"]))

    assert hints == [10_000, 100, 20]


async def test_duration_marker_sets_the_exact_realistic_duration(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    video = await create(sim, "a quick one [sim:duration=100]")

    sim.clock.advance(99.9)
    assert (await retrieve(sim, video["id"]))["status"] == "in_progress"
    sim.clock.advance(0.1)
    done = await retrieve(sim, video["id"])
    assert done["status"] == "completed"
    assert done["completed_at"] == video["created_at"] + 100


async def test_fail_marker_ends_failed_with_internal_error(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    video = await create(sim, "doomed [sim:fail]")
    await finish_time(sim, video["id"])

    failed = await retrieve(sim, video["id"])

    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "internal_error"
    assert failed["error"]["message"]
    assert failed["progress"] < 100
    assert failed["expires_at"] is None


async def test_fail_marker_with_a_code_uses_that_code(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    video = await create(sim, "blocked [sim:fail:moderation_blocked]")
    await finish_time(sim, video["id"])

    failed = await retrieve(sim, video["id"])

    assert failed["error"]["code"] == "moderation_blocked"
    response = await sim.http.get(f"/v1/videos/{video['id']}/content")
    assert response.status == 404


async def test_never_marker_keeps_a_job_in_progress(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    video = await create(sim, "endless [sim:never]")

    sim.clock.advance(86_400)
    still = await retrieve(sim, video["id"])

    assert still["status"] == "in_progress"
    assert still["progress"] == 99


async def test_never_finish_setting_keeps_every_job_in_progress(local_sim: LocalSimFactory) -> None:
    sim = await local_sim(never_finish=True)
    first = await create(sim, "one")
    second = await create(sim, "two", model="sora-2-pro")

    sim.clock.advance(86_400)

    for video in (first, second):
        assert (await retrieve(sim, video["id"]))["status"] == "in_progress"


async def test_expire_marker_completes_with_content_already_expired(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    video = await create(sim, "gone at once [sim:expire]")
    await finish_time(sim, video["id"])

    done = await retrieve(sim, video["id"])
    response = await sim.http.get(f"/v1/videos/{video['id']}/content")

    assert done["status"] == "completed"
    assert done["expires_at"] == done["completed_at"]
    assert response.status == 404
    assert "expired" in (await response.json())["error"]["message"]


async def test_delete_is_refused_while_the_job_is_running(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    video = await create(sim)

    refused = await sim.http.delete(f"/v1/videos/{video['id']}")
    await finish_time(sim, video["id"])
    accepted = await sim.http.delete(f"/v1/videos/{video['id']}")

    assert refused.status == 400
    error = (await refused.json())["error"]
    assert error["code"] == "invalid_request"
    assert "still" in error["message"]
    assert accepted.status == 200
    assert await accepted.json() == {"id": video["id"], "deleted": True, "object": "video.deleted"}


async def test_a_failed_job_can_be_deleted(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    video = await create(sim, "[sim:fail]")
    await finish_time(sim, video["id"])

    response = await sim.http.delete(f"/v1/videos/{video['id']}")

    assert response.status == 200
    assert (await sim.http.get(f"/v1/videos/{video['id']}")).status == 404


async def test_force_job_completes_fails_and_expires_jobs_on_demand(local_sim: LocalSimFactory) -> None:
    sim = await local_sim()
    to_complete = await create(sim, "[sim:never]")
    to_fail = await create(sim)
    to_expire = await create(sim)

    for video_id, change in (
        (to_complete["id"], {"status": "completed"}),
        (to_fail["id"], {"status": "failed", "error_code": "moderation_blocked", "error_message": "nope"}),
        (to_expire["id"], {"status": "completed", "expire": True}),
    ):
        assert (await sim.http.post(f"/_sim/jobs/{video_id}", json=change)).status == 200

    completed = await retrieve(sim, to_complete["id"])
    failed = await retrieve(sim, to_fail["id"])
    assert completed["status"] == "completed" and completed["progress"] == 100
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "moderation_blocked", "message": "nope"}
    assert (await sim.http.get(f"/v1/videos/{to_expire['id']}/content")).status == 404


def test_a_four_second_clip_completes_well_under_a_second_at_time_scale_001(
    api_sim: RunningSimulator,
) -> None:
    headers = {"Authorization": f"Bearer {api_sim.api_key}"}
    started = time.monotonic()
    video = httpx.post(
        f"{api_sim.base_url}/videos", data={"prompt": "fast", "seconds": "4"}, headers=headers
    ).json()
    while video["status"] != "completed":
        time.sleep(0.02)
        video = httpx.get(f"{api_sim.base_url}/videos/{video['id']}", headers=headers).json()

    assert time.monotonic() - started < 1.0
